"""A campaign's report per step of its sequence: who was sent it, opened, clicked, replied,
bounced or unsubscribed at each step (people only, as in platform/reports/summary.py).

- **sent**: messages of the step that went out (`sent` or `bounced`).
- **opened** / **clicked**: distinct contacts with a human open (`human`, `proxy_open`) or a
  human click on their message of the step: the report aggregates (per contact, not per step)
  say who opened or clicked at all, the events of their messages at which step.
- **replied**: distinct contacts with a reply to their message of the step; a reply matched
  without naming one of our messages counts at the contact's last message made before it.
- **bounced** / **unsubscribed**: the contacts the summary counts, each at the step of its
  bounced message, else of its last message of the campaign made at or before the address was
  suppressed; so the steps add up to the summary's numbers.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, exists, func, null, select

from pixeltrail.inbound.classify import InboundKind
from pixeltrail.platform.reports.summary import WENT_OUT, campaign_of
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import (
    campaign_steps,
    contacts,
    events,
    inbound_messages,
    messages,
    report_contacts,
    suppressions,
)
from pixeltrail.store.typed_rows import typed_rows
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, Classification

_m, _s, _e, _i = messages.c, campaign_steps.c, events.c, inbound_messages.c
COLUMNS = ("sent", "opened", "clicked", "replied", "bounced", "unsubscribed")


class _Made(NamedTuple):
    """A message of the campaign: whose, when made, at which step, what became of it."""

    id: str
    contact_id: str
    created_at_ms: int
    position: int
    status: str


class _Came(NamedTuple):
    """Something that ends at one step: a contact, when, and our message if it names one."""

    contact_id: str
    at_ms: int
    message_id: str | None


def _positions(conn: Connection, campaign_id: str) -> list[int]:
    query = select(_s.position).where(_s.campaign_id == campaign_id).order_by(_s.position)
    return list(conn.execute(query).scalars())


def _sent(conn: Connection, campaign_id: str) -> dict[int, int]:
    query = (
        select(_s.position, func.count())
        .join(campaign_steps, _s.id == _m.step_id)
        .where(_m.campaign_id == campaign_id, _m.status.in_(WENT_OUT))
        .group_by(_s.position)
    )
    return dict(conn.execute(query).all())


def _engaged(
    conn: Connection, campaign_id: str, kind: str, counted: Iterable[str], total: str
) -> dict[int, int]:
    """Per step, distinct contacts with an event of this kind classified as one of `counted`.
    Only the messages of contacts whose report_contacts `total` is above 0 are looked at (one
    probe of events(message_id, at_ms) each, stopping at the first such event)."""
    rc = report_contacts.c
    engaged = exists().where(
        _e.message_id == _m.id, _e.kind == kind, _e.classification.in_(sorted(counted))
    )
    active = select(rc.contact_id).where(rc.campaign_id == campaign_id, rc[total] > 0)
    query = (
        select(_s.position, func.count(func.distinct(_m.contact_id)))
        .select_from(messages)
        .join(campaign_steps, _s.id == _m.step_id)
        .where(
            _m.campaign_id == campaign_id,
            _m.contact_id.in_(active.scalar_subquery()),
            _m.status.in_(WENT_OUT),
            engaged,
        )
        .group_by(_s.position)
    )
    return dict(conn.execute(query).all())


def _made(conn: Connection, campaign_id: str, contact_ids: set[str]) -> list[_Made]:
    query = (
        select(_m.id, _m.contact_id, _m.created_at_ms, _s.position, _m.status)
        .join(campaign_steps, _s.id == _m.step_id)
        .where(_m.campaign_id == campaign_id, _m.contact_id.in_(sorted(contact_ids)))
        .order_by(_m.created_at_ms, _s.position)
    )
    return list(typed_rows(_Made, conn.execute(query)))


def _replies(conn: Connection, campaign_id: str) -> list[_Came]:
    query = select(_i.contact_id, _i.received_at_ms.label("at_ms"), _i.message_id).where(
        _i.campaign_id == campaign_id,
        _i.kind == InboundKind.REPLY,
        _i.contact_id.is_not(None),
    )
    return list(typed_rows(_Came, conn.execute(query)))


def _suppressed(conn: Connection, account_id: str, campaign_id: str, reason: str) -> list[_Came]:
    """The contacts the summary counts with this suppression reason (one row each)."""
    query = (
        select(
            contacts.c.id.label("contact_id"),
            suppressions.c.created_at_ms.label("at_ms"),
            null().label("message_id"),
        )
        .select_from(suppressions)
        .join(
            contacts,
            and_(
                contacts.c.account_id == suppressions.c.account_id,
                contacts.c.email == suppressions.c.email,
            ),
        )
        .join(
            messages,
            and_(
                _m.campaign_id == campaign_id,
                _m.contact_id == contacts.c.id,
                _m.created_at_ms <= suppressions.c.created_at_ms,
            ),
        )
        .where(suppressions.c.account_id == account_id, suppressions.c.reason == reason)
        .distinct()
    )
    return list(typed_rows(_Came, conn.execute(query)))


def _step_of(came: _Came, made: list[_Made], prefer_bounced: bool) -> int | None:
    """The step `came` belongs to: its message's, a bounced message's, else the contact's last
    message made at or before it (its first message when none was)."""
    if not made:
        return None
    if came.message_id is not None:
        named = [m.position for m in made if m.id == came.message_id]
        if named:
            return named[0]
    if prefer_bounced:
        bounced = [m.position for m in made if m.status == MessageStatus.BOUNCED]
        if bounced:
            return bounced[0]
    index = bisect_right([m.created_at_ms for m in made], came.at_ms)
    return made[max(index - 1, 0)].position


def _per_step(
    conn: Connection, campaign_id: str, came: list[_Came], prefer_bounced: bool = False
) -> dict[int, int]:
    by_contact: dict[str, list[_Made]] = defaultdict(list)
    for made in _made(conn, campaign_id, {c.contact_id for c in came}):
        by_contact[made.contact_id].append(made)
    people: dict[int, set[str]] = defaultdict(set)
    for one in came:
        step = _step_of(one, by_contact[one.contact_id], prefer_bounced)
        if step is not None:
            people[step].add(one.contact_id)
    return {step: len(who) for step, who in people.items()}


def step_report(conn: Connection, account_id: str, campaign_id: str) -> list[dict[str, Any]]:
    """One row per step of the campaign, by position; NotFound unless it is this account's."""
    campaign_of(conn, account_id, campaign_id)
    human = (Classification.HUMAN,)
    counts = dict(
        zip(
            COLUMNS,
            (
                _sent(conn, campaign_id),
                _engaged(conn, campaign_id, "open", COUNTED_AS_OPEN, "opens"),
                _engaged(conn, campaign_id, "click", human, "clicks"),
                _per_step(conn, campaign_id, _replies(conn, campaign_id)),
                _per_step(
                    conn,
                    campaign_id,
                    _suppressed(conn, account_id, campaign_id, "bounced"),
                    prefer_bounced=True,
                ),
                _per_step(
                    conn, campaign_id, _suppressed(conn, account_id, campaign_id, "unsubscribed")
                ),
            ),
            strict=True,
        )
    )
    return [
        {"step": position, **{name: counts[name].get(position, 0) for name in COLUMNS}}
        for position in _positions(conn, campaign_id)
    ]
