"""What came back, as reports show it: replies per contact, who replied or read, and where
each contact's sequence stands.

Only inbound messages of kind `reply` count as replies: auto-replies (out of office) never do,
bounces are counted by the suppression list (platform/reports/summary.py). A reply proves the
message was read, so a contact who replied is **read** even without a human open (the pixel
blocked, images off): `read_by_reply` says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, and_, exists, func, select

from pixeltrail.inbound.classify import InboundKind
from pixeltrail.platform.campaigns.status import EnrollmentStatus
from pixeltrail.store.schema import enrollments, inbound_messages, report_contacts
from pixeltrail.store.typed_rows import typed_rows

_i = inbound_messages.c
# A sequence ended as `stopped` (before the reason was kept) takes the reason of the address's
# suppression when it has one of these; otherwise it stays `stopped`.
_STOPPED_BY = {"bounced": EnrollmentStatus.BOUNCED, "unsubscribed": EnrollmentStatus.UNSUBSCRIBED}


class Reply(NamedTuple):
    contact_id: str
    message_id: str | None  # ours it answers
    received_at_ms: int
    from_email: str
    subject: str
    text: str


def replies_of(campaign_id: str) -> Select[Any]:
    """The campaign's replies (contact known), oldest first: the columns of Reply."""
    return (
        select(*(_i[name] for name in Reply._fields))
        .where(
            _i.campaign_id == campaign_id,
            _i.kind == InboundKind.REPLY,
            _i.contact_id.is_not(None),
        )
        .order_by(_i.received_at_ms, _i.id)
    )


def contact_replies(
    conn: Connection, campaign_id: str, ids: Sequence[str]
) -> dict[str, list[Reply]]:
    """These contacts' replies to the campaign, oldest first."""
    found: dict[str, list[Reply]] = defaultdict(list)
    query = replies_of(campaign_id).where(_i.contact_id.in_(ids))
    for reply in typed_rows(Reply, conn.execute(query)):
        found[reply.contact_id].append(reply)
    return found


def reply_totals(campaign_id: str) -> Any:
    """A subquery: per contact, first reply (first_reply_ms) and how many (replies)."""
    return (
        select(
            _i.contact_id,
            func.min(_i.received_at_ms).label("first_reply_ms"),
            func.count().label("replies"),
        )
        .where(
            _i.campaign_id == campaign_id,
            _i.kind == InboundKind.REPLY,
            _i.contact_id.is_not(None),
        )
        .group_by(_i.contact_id)
        .subquery()
    )


def sequence_status(enrolled: str | None, suppressed: str | None) -> str | None:
    """What a report says of a contact's sequence: its enrollment status, an older `stopped`
    named by the suppression's reason when there is one; None when the contact was taken out
    of the campaign."""
    if enrolled == EnrollmentStatus.STOPPED and suppressed in _STOPPED_BY:
        return _STOPPED_BY[suppressed]
    return enrolled


def enrollment_statuses(conn: Connection, campaign_id: str, ids: Sequence[str]) -> dict[str, str]:
    e = enrollments.c
    query = select(e.contact_id, e.status).where(
        e.campaign_id == campaign_id, e.contact_id.in_(ids)
    )
    return dict(conn.execute(query).all())


def replied_and_read(conn: Connection, campaign_id: str, human_openers: int) -> tuple[int, int]:
    """People who replied, and people who read (opened as humans or replied)."""
    rc = report_contacts.c
    opened = exists().where(
        rc.campaign_id == campaign_id, rc.contact_id == _i.contact_id, rc.opens > 0
    )
    replied = and_(
        _i.campaign_id == campaign_id, _i.kind == InboundKind.REPLY, _i.contact_id.is_not(None)
    )
    count = func.count(func.distinct(_i.contact_id))
    repliers = conn.execute(select(count).where(replied)).scalar_one()
    unopened = conn.execute(select(count).where(replied, ~opened)).scalar_one()
    return int(repliers), human_openers + int(unopened)
