"""Per-contact campaign reports: pages of contacts (by contact id) and the CSV export.

A campaign's contacts here are those with at least one sent message of the campaign. Counts
and first/last opens come from the report aggregates; the lists of clicks and of machine
events from the events themselves, oldest first, at most LIST_LIMIT of each per contact (the
counts are always complete). Definitions: see platform/reports/summary.py.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, TextIO

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, not_, select

from pixeltrail.platform.contacts.contacts import SUPPRESSED, with_suppression
from pixeltrail.platform.paging import check_limit, decode_cursor, encode_cursor
from pixeltrail.platform.reports.replies import (
    Reply,
    contact_replies,
    enrollment_statuses,
    reply_totals,
    sequence_status,
)
from pixeltrail.platform.reports.summary import WENT_OUT, campaign_of, iso_utc
from pixeltrail.store.schema import (
    contacts,
    enrollments,
    events,
    messages,
    report_contact_links,
    report_contacts,
)
from pixeltrail.store.typed_rows import typed_rows
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, Classification

LIST_LIMIT = 100
CHUNK = 1000
# OWASP's CSV injection advice: a cell starting with one of these (or a full-width form) could
# run as a formula in a spreadsheet, so it gets a leading '.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
CSV_COLUMNS = (
    "contact_id",
    "email",
    "suppressed",
    "first_opened_at",
    "last_opened_at",
    "open_count",
    "proxy_open_count",
    "click_count",
    "clicked_links",
    "machine_open_count",
    "machine_click_count",
    "replied_at",
    "reply_count",
    "read_by_reply",
    "sequence_status",
)

_m, _rl, _e = messages.c, report_contact_links.c, events.c
# report_contacts columns, in the order the CSV reads them
_COUNTS = (
    "opens",
    "proxy_opens",
    "machine_opens",
    "first_open_ms",
    "last_open_ms",
    "clicks",
    "machine_clicks",
)


class Person(NamedTuple):
    id: str  # the contact's
    email: str
    suppressed: str | None  # the reason, if any


class _Counts(NamedTuple):
    """A contact's report_contacts row."""

    contact_id: str
    opens: int
    proxy_opens: int
    machine_opens: int
    first_open_ms: int | None
    last_open_ms: int | None
    clicks: int
    machine_clicks: int


class _Event(NamedTuple):
    message_id: str
    kind: str
    at_ms: int
    link: int | None
    destination: str | None
    classification: str
    reason: str
    user_agent: str


class _CsvRow(NamedTuple):
    """A recipient with its counts, None where it has no report_contacts row yet."""

    id: str
    email: str
    suppressed: str | None
    opens: int | None
    proxy_opens: int | None
    machine_opens: int | None
    first_open_ms: int | None
    last_open_ms: int | None
    clicks: int | None
    machine_clicks: int | None
    first_reply_ms: int | None
    replies: int | None
    enrolled: str | None


def escape_cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


def _recipients(campaign_id: str) -> Select[Any]:
    """Ids of the contacts with a sent message of the campaign, in order."""
    return (
        select(_m.contact_id)
        .where(_m.campaign_id == campaign_id, _m.status.in_(WENT_OUT))
        .group_by(_m.contact_id)
        .order_by(_m.contact_id)
    )


def _people(conn: Connection, ids: Sequence[str]) -> list[Person]:
    """These contacts with their suppression, if any, in the order given."""
    query = select(contacts.c.id, contacts.c.email, SUPPRESSED).select_from(
        with_suppression(contacts)
    )
    rows = conn.execute(query.where(contacts.c.id.in_(ids)))
    found = {person.id: person for person in typed_rows(Person, rows)}
    return [found[i] for i in ids if i in found]


def _mine(table: Table, campaign_id: str, ids: Sequence[str]) -> ColumnElement[bool]:
    return and_(table.c.campaign_id == campaign_id, table.c.contact_id.in_(ids))


def _counts(conn: Connection, campaign_id: str, ids: Sequence[str]) -> dict[str, _Counts]:
    query = select(*(report_contacts.c[name] for name in _Counts._fields)).where(
        _mine(report_contacts, campaign_id, ids)
    )
    return {row.contact_id: row for row in typed_rows(_Counts, conn.execute(query))}


def _events(
    conn: Connection, campaign_id: str, ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Clicks and machine events of these contacts' messages (human opens are left out)."""
    owners: dict[str, str] = dict(
        conn.execute(
            select(_m.id, _m.contact_id).where(
                _m.campaign_id == campaign_id, _m.contact_id.in_(ids)
            )
        ).all()
    )
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    message_ids = sorted(owners)
    counted = and_(_e.kind == "open", _e.classification.in_(sorted(COUNTED_AS_OPEN)))
    for start in range(0, len(message_ids), CHUNK):
        query = (
            select(*(events.c[name] for name in _Event._fields))
            .where(_e.message_id.in_(message_ids[start : start + CHUNK]), not_(counted))
            .order_by(_e.at_ms, _e.id)
        )
        for row in typed_rows(_Event, conn.execute(query)):
            found[owners[row.message_id]].append(
                {
                    "message_id": row.message_id,
                    "kind": row.kind,
                    "at": iso_utc(row.at_ms),
                    "link": row.link,
                    "destination": row.destination,
                    "classification": row.classification,
                    "reason": row.reason,
                    "user_agent": row.user_agent,
                }
            )
    return found


def _row(person: Person, counts: _Counts | None) -> dict[str, Any]:
    contact_id, email, suppressed = person
    return {
        "contact_id": contact_id,
        "email": email,
        "suppressed": suppressed,
        "first_opened_at": iso_utc(counts.first_open_ms) if counts else None,
        "last_opened_at": iso_utc(counts.last_open_ms) if counts else None,
        "open_count": int(counts.opens) if counts else 0,
        "proxy_open_count": int(counts.proxy_opens) if counts else 0,
        "click_count": int(counts.clicks) if counts else 0,
        "machine_open_count": int(counts.machine_opens) if counts else 0,
        "machine_click_count": int(counts.machine_clicks) if counts else 0,
    }


def _reply(reply: Reply) -> dict[str, Any]:
    return {
        "message_id": reply.message_id,
        "at": iso_utc(reply.received_at_ms),
        "from_email": reply.from_email,
        "subject": reply.subject,
        "text": reply.text,
    }


def _with_replies(row: dict[str, Any], replies: list[Reply], enrolled: str | None) -> None:
    row["replied_at"] = iso_utc(replies[0].received_at_ms) if replies else None
    row["reply_count"] = len(replies)
    row["read_by_reply"] = bool(replies) and row["open_count"] == 0
    row["sequence_status"] = sequence_status(enrolled, row["suppressed"])
    row["replies"] = [_reply(reply) for reply in replies[:LIST_LIMIT]]


def _rows(conn: Connection, campaign_id: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    people = _people(conn, ids)
    counts = _counts(conn, campaign_id, ids)
    found = _events(conn, campaign_id, ids)
    replies = contact_replies(conn, campaign_id, ids)
    enrolled = enrollment_statuses(conn, campaign_id, ids)
    rows = []
    for person in people:
        row = _row(person, counts.get(person.id))
        _with_replies(row, replies.get(person.id, []), enrolled.get(person.id))
        mine = found.get(person.id, [])
        human = Classification.HUMAN
        clicks = [e for e in mine if e["kind"] == "click" and e["classification"] == human]
        keys = ("message_id", "link", "destination", "at")
        row["clicks"] = [{k: e[k] for k in keys} for e in clicks[:LIST_LIMIT]]
        row["machine_events"] = [e for e in mine if e["classification"] != human][:LIST_LIMIT]
        rows.append(row)
    return rows


def contacts_page(
    conn: Connection,
    account_id: str,
    campaign_id: str,
    cursor: str | None = None,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of per-contact rows (by contact id) and the cursor of the next, if any."""
    campaign_of(conn, account_id, campaign_id)
    size = check_limit(limit)
    query = _recipients(campaign_id).limit(size + 1)
    if cursor:
        query = query.where(_m.contact_id > decode_cursor(cursor)[1])
    ids = list(conn.execute(query).scalars())
    following = encode_cursor(0, ids[size - 1]) if len(ids) > size else None
    return _rows(conn, campaign_id, ids[:size]), following


def _chunks_of_recipients(conn: Connection, campaign_id: str) -> list[list[str]]:
    ids = list(conn.execute(_recipients(campaign_id)).scalars())
    return [ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK)]


def all_contact_rows(
    conn: Connection, account_id: str, campaign_id: str
) -> Iterator[dict[str, Any]]:
    """Every per-contact row of the campaign, by contact id (for the CLI's --json)."""
    campaign_of(conn, account_id, campaign_id)
    for ids in _chunks_of_recipients(conn, campaign_id):
        yield from _rows(conn, campaign_id, ids)


def _csv_cell(value: Any) -> Any:
    return escape_cell(value) if isinstance(value, str) else ("" if value is None else value)


def write_contacts_csv(conn: Connection, account_id: str, campaign_id: str, out: TextIO) -> int:
    """The per-contact CSV (counts, no event lists) to `out`; returns how many contacts."""
    campaign_of(conn, account_id, campaign_id)
    links: dict[str, set[str]] = defaultdict(set)
    for contact_id, destination in conn.execute(
        select(_rl.contact_id, _rl.destination).where(
            _rl.campaign_id == campaign_id, _rl.clicks > 0
        )
    ):
        links[contact_id].add(destination or "")
    recipients = _recipients(campaign_id).order_by(None).subquery()
    rc, en, replied = report_contacts.c, enrollments.c, reply_totals(campaign_id)
    joined = (
        with_suppression(recipients.join(contacts, contacts.c.id == recipients.c.contact_id))
        .outerjoin(
            report_contacts, and_(rc.campaign_id == campaign_id, rc.contact_id == contacts.c.id)
        )
        .outerjoin(replied, replied.c.contact_id == contacts.c.id)
        .outerjoin(enrollments, and_(en.campaign_id == campaign_id, en.contact_id == contacts.c.id))
    )
    columns = (contacts.c.id, contacts.c.email, SUPPRESSED, *(rc[f] for f in _COUNTS))
    replies = (replied.c.first_reply_ms, replied.c.replies, en.status.label("enrolled"))
    query = select(*columns, *replies).select_from(joined).order_by(contacts.c.id)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    written = 0
    for row in typed_rows(_CsvRow, conn.execute(query)):
        cells = (
            row.id, row.email, row.suppressed, iso_utc(row.first_open_ms),
            iso_utc(row.last_open_ms), row.opens or 0, row.proxy_opens or 0, row.clicks or 0,
            " ".join(sorted(links.get(row.id, ()))), row.machine_opens or 0,
            row.machine_clicks or 0, iso_utc(row.first_reply_ms), row.replies or 0,
            "yes" if row.replies and not row.opens else "no",
            sequence_status(row.enrolled, row.suppressed),
        )  # fmt: skip
        writer.writerow(_csv_cell(cell) for cell in cells)
        written += 1
    return written
