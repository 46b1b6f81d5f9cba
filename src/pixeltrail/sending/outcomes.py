"""What became of claimed messages, recorded many at a time: sent, retried, failed, bounced."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, bindparam, select, update

from pixeltrail.platform.campaigns.status import EnrollmentStatus
from pixeltrail.platform.contacts.bounces import bounce_address
from pixeltrail.platform.webhooks.events import enqueue_messages_sent
from pixeltrail.sending.claims import Claimed
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import contacts, enrollments, messages

MAX_ATTEMPTS = 8
BACKOFF_MS = (60_000, 5 * 60_000, 15 * 60_000, 30 * 60_000, 60 * 60_000, 2 * 3600_000)


# Built once (the worker records sent messages every few messages).
_SENT = (
    update(messages)
    .where(messages.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=MessageStatus.SENT,
        sent_at_ms=bindparam("now"),
        error=None,
        link_count=bindparam("links"),
        destination_count=bindparam("destinations"),
    )
)


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed message: sent, retry (temporary), failed, or cancelled."""

    status: MessageStatus | Literal["retry"]
    error: str | None = None
    bounced: bool = False
    link_count: int = 0
    destination_count: int = 0


def record_outcomes(
    conn: Connection,
    done: Sequence[tuple[Claimed, Outcome]],
    now: int,
    endpoints: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> None:
    """Record `done` in the caller's transaction; sent messages in one statement per link count
    (and destination count).

    `endpoints`: the webhook subscribers, as `subscribers` gives them, if already looked up.
    """
    sent: dict[tuple[int, int], list[str]] = defaultdict(list)
    accounts: list[tuple[str, str]] = []
    for claimed, outcome in done:
        if outcome.status == MessageStatus.SENT:
            sent[outcome.link_count, outcome.destination_count].append(claimed.id)
            accounts.append((claimed.id, claimed.account_id))
        else:
            _record_unsent(conn, claimed, outcome, now)
    for (links, destinations), ids in sent.items():
        conn.execute(_SENT, {"ids": ids, "now": now, "links": links, "destinations": destinations})
    if accounts:
        enqueue_messages_sent(conn, accounts, sent_at_ms=now, endpoints=endpoints)


def _record_unsent(conn: Connection, m: Claimed, outcome: Outcome, now: int) -> None:
    where = messages.c.id == m.id
    if outcome.status == "retry" and m.attempts < MAX_ATTEMPTS:
        delay = BACKOFF_MS[min(m.attempts - 1, len(BACKOFF_MS) - 1)]
        conn.execute(
            update(messages)
            .where(where)
            .values(status=MessageStatus.SCHEDULED, send_at_ms=now + delay, error=outcome.error)
        )
        return
    cancelled = outcome.status == MessageStatus.CANCELLED
    final = MessageStatus.CANCELLED if cancelled else MessageStatus.FAILED
    conn.execute(update(messages).where(where).values(status=final, error=outcome.error))
    if outcome.bounced:
        _bounce(conn, m)
    _stop_enrollment(conn, m)


def _stop_enrollment(conn: Connection, m: Claimed) -> None:
    conn.execute(
        update(enrollments)
        .where(
            enrollments.c.campaign_id == m.campaign_id,
            enrollments.c.contact_id == m.contact_id,
            enrollments.c.status == EnrollmentStatus.ACTIVE,
        )
        .values(status=EnrollmentStatus.STOPPED)
    )


def _bounce(conn: Connection, m: Claimed) -> None:
    """A permanent refusal: the address is suppressed and leaves every sequence (`bounced`)."""
    email = conn.execute(select(contacts.c.email).where(contacts.c.id == m.contact_id)).scalar_one()
    bounce_address(conn, m.account_id, email)
