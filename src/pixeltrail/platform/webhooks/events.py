"""What becomes a webhook: an account's events, queued as one delivery per subscribed endpoint.

Queueing happens in the caller's transaction, so an event and its deliveries commit together.
A delivery's id is derived from the endpoint and the event's key: queueing the same event
twice (a replayed spool segment, a retried send) never makes a second delivery, and the id,
sent as `webhook-id`, is the same on every attempt.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Insert, select
from sqlalchemy.dialects import postgresql, sqlite

from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.platform.webhooks.status import DeliveryStatus
from pixeltrail.store.message_context import MessageContext
from pixeltrail.store.schema import contacts, messages, webhook_deliveries, webhook_endpoints
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, Event

MESSAGE_SENT = "message.sent"
MESSAGE_OPENED = "message.opened"
MESSAGE_CLICKED = "message.clicked"
CONTACT_UNSUBSCRIBED = "contact.unsubscribed"
# Read from the mailbox's INBOX and matched to the message they answer.
MESSAGE_REPLIED = "message.replied"
MESSAGE_AUTO_REPLIED = "message.auto_replied"
MESSAGE_BOUNCED = "message.bounced"
EVENT_TYPES = (
    MESSAGE_SENT,
    MESSAGE_OPENED,
    MESSAGE_CLICKED,
    CONTACT_UNSUBSCRIBED,
    MESSAGE_REPLIED,
    MESSAGE_AUTO_REPLIED,
    MESSAGE_BOUNCED,
)
# Sent to one endpoint on request (POST /webhooks/{id}/test), whatever it subscribes to.
WEBHOOK_TEST = "webhook.test"

# Opens and clicks wait this long after they happened before they are sent: a honeypot click
# up to 10 s later can still turn them into a scanner's, and then they are not sent at all.
SETTLE_MS = 15_000
_CHUNK = 500


def iso(ms: int) -> str:
    """UTC, milliseconds, Z: how webhook payloads and the delivery log write times."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class WebhookEvent:
    """Something that happened in an account, as endpoints receive it in `data`."""

    account_id: str
    type: str
    data: dict[str, Any]
    at_ms: int
    # Idempotency: one key never makes two deliveries to the same endpoint.
    key: str = field(default_factory=lambda: new_id("whe"))
    # Not sent before this time (opens and clicks settle first).
    not_before_ms: int = 0

    def payload(self) -> dict[str, Any]:
        """The body, in the Standard Webhooks shape."""
        return {"type": self.type, "timestamp": iso(self.at_ms), "data": self.data}


def delivery_id(endpoint_id: str, key: str) -> str:
    """`whd_` and 16 base32 characters derived from the endpoint and the event key."""
    digest = hashlib.sha256(f"{endpoint_id}\x00{key}".encode()).digest()[:10]
    return f"whd_{base64.b32encode(digest).decode().lower()}"


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _insert_ignoring_duplicates(conn: Connection) -> Insert:
    key = [webhook_deliveries.c.id]
    if conn.dialect.name == "postgresql":
        return postgresql.insert(webhook_deliveries).on_conflict_do_nothing(index_elements=key)
    return sqlite.insert(webhook_deliveries).on_conflict_do_nothing(index_elements=key)


def subscribers(
    conn: Connection, account_ids: Collection[str], types: Collection[str]
) -> dict[tuple[str, str], list[str]]:
    """Endpoint ids by (account id, event type), for enabled endpoints subscribed to `types`."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for chunk in _chunks(sorted(set(account_ids))):
        query = select(
            webhook_endpoints.c.id, webhook_endpoints.c.account_id, webhook_endpoints.c.event_types
        ).where(
            webhook_endpoints.c.account_id.in_(chunk), webhook_endpoints.c.disabled_at_ms.is_(None)
        )
        for row in conn.execute(query.order_by(webhook_endpoints.c.id)):
            for event_type in row.event_types or ():
                if event_type in types:
                    found[row.account_id, event_type].append(row.id)
    return found


def enqueue_many(
    conn: Connection,
    events: Iterable[WebhookEvent],
    endpoints: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> int:
    """Queue each event for every endpoint of its account subscribed to its type.

    One query for the endpoints (unless given, from `subscribers`), one batched insert;
    returns how many deliveries were new.
    """
    events = list(events)
    if not events:
        return 0
    unknown = {e.type for e in events} - set(EVENT_TYPES)
    if unknown:
        raise ValueError(f"unknown webhook event type(s): {sorted(unknown)}")
    if endpoints is None:
        endpoints = subscribers(conn, {e.account_id for e in events}, {e.type for e in events})
    if not endpoints:
        return 0
    created = now_ms()
    rows = [
        delivery_row(endpoint_id, event, created)
        for event in events
        for endpoint_id in endpoints.get((event.account_id, event.type), ())
    ]
    return insert_deliveries(conn, rows)


def delivery_row(endpoint_id: str, event: WebhookEvent, created_ms: int) -> dict[str, Any]:
    return {
        "id": delivery_id(endpoint_id, event.key),
        "endpoint_id": endpoint_id,
        "account_id": event.account_id,
        "event_type": event.type,
        "payload": event.payload(),
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at_ms": max(created_ms, event.not_before_ms),
        "last_status_code": None,
        "last_error": None,
        "created_at_ms": created_ms,
        "delivered_at_ms": None,
    }


def insert_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    statement = _insert_ignoring_duplicates(conn).returning(webhook_deliveries.c.id)
    # RETURNING lists only the rows inserted: rowcount of an executemany is not reliable.
    return sum(len(conn.execute(statement, list(chunk)).all()) for chunk in _chunks(rows))


def enqueue(
    conn: Connection,
    account_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    at_ms: int | None = None,
    key: str | None = None,
) -> int:
    """Queue one event of an account; returns how many endpoints will receive it."""
    at_ms = now_ms() if at_ms is None else at_ms
    key = new_id("whe") if key is None else key
    return enqueue_many(conn, [WebhookEvent(account_id, event_type, data, at_ms, key)])


# ---- the call sites ------------------------------------------------------------------------


def enqueue_message_sent(conn: Connection, message_id: str, sent_at_ms: int | None = None) -> int:
    """`message.sent` for a message the sender has just handed to the mail server.

    Call it in the transaction that marks the message sent. Idempotent per message.
    """
    account_id = conn.execute(
        select(messages.c.account_id).where(messages.c.id == message_id)
    ).scalar()
    if account_id is None:
        raise ValueError(f"no message {message_id}")
    return enqueue_messages_sent(conn, [(message_id, account_id)], sent_at_ms)


def enqueue_messages_sent(
    conn: Connection,
    sent: Sequence[tuple[str, str]],
    sent_at_ms: int | None = None,
    endpoints: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> int:
    """`message.sent` for many (message id, account id) at once. The endpoints are looked up
    first (unless given, from `subscribers`), and the messages only for accounts that have
    one (most sends concern none)."""
    if endpoints is None:
        endpoints = subscribers(conn, {account_id for _, account_id in sent}, {MESSAGE_SENT})
    if not endpoints:
        return 0
    wanted = [m for m, account_id in sent if (account_id, MESSAGE_SENT) in endpoints]
    events = []
    for chunk in _chunks(wanted):
        rows = conn.execute(
            select(messages, contacts.c.email)
            .join(contacts, contacts.c.id == messages.c.contact_id)
            .where(messages.c.id.in_(chunk))
        )
        for row in rows:
            at_ms = sent_at_ms or row.sent_at_ms or now_ms()
            data = {
                "message_id": row.id,
                "campaign_id": row.campaign_id,
                "step_id": row.step_id,
                "contact_id": row.contact_id,
                "email": row.email,
                "mailbox_id": row.mailbox_id,
                "at": iso(at_ms),
            }
            key = f"sent:{row.id}"
            events.append(WebhookEvent(row.account_id, MESSAGE_SENT, data, at_ms, key))
    return enqueue_many(conn, events, endpoints)


def enqueue_contact_unsubscribed(
    conn: Connection,
    account_id: str,
    email: str,
    *,
    contact_id: str | None = None,
    message_id: str | None = None,
    at_ms: int | None = None,
) -> int:
    """`contact.unsubscribed` for an address that has just been suppressed as unsubscribed.

    Call it only when the suppression is new (not for a second click on the link).
    `message_id` is the message whose link was used, if any; its campaign is looked up.
    """
    at_ms = now_ms() if at_ms is None else at_ms
    campaign_id = None
    if message_id is not None:
        campaign_id = conn.execute(
            select(messages.c.campaign_id).where(
                messages.c.id == message_id, messages.c.account_id == account_id
            )
        ).scalar_one_or_none()
    if contact_id is None:
        contact_id = conn.execute(
            select(contacts.c.id).where(
                contacts.c.account_id == account_id, contacts.c.email == email
            )
        ).scalar_one_or_none()
    data = {
        "contact_id": contact_id,
        "email": email,
        "message_id": message_id,
        "campaign_id": campaign_id,
        "at": iso(at_ms),
    }
    key = f"unsubscribed:{email}:{at_ms}"
    return enqueue_many(conn, [WebhookEvent(account_id, CONTACT_UNSUBSCRIBED, data, at_ms, key)])


def enqueue_engagement(
    conn: Connection, new_events: Sequence[Event], contexts: Mapping[str, MessageContext]
) -> int:
    """`message.opened` / `message.clicked` for newly recorded events counted as a person's.

    Only messages this instance sent (those in `contexts`) and only opens and clicks counted
    as a person's (human, proxied open): a scanner's click or an Apple MPP prefetch is never
    sent. Costs one query when no endpoint listens; two and one insert when one does.
    """
    counted = [
        e
        for e in new_events
        if e.classification in COUNTED_AS_OPEN and e.hit.message_id in contexts
    ]
    if not counted:
        return 0
    types = {MESSAGE_OPENED if e.hit.kind == "open" else MESSAGE_CLICKED for e in counted}
    accounts = {contexts[e.hit.message_id].account_id for e in counted}
    endpoints = subscribers(conn, accounts, types)
    if not endpoints:
        return 0
    details = _message_details(conn, {e.hit.message_id for e in counted})
    webhook_events = []
    for event in counted:
        hit = event.hit
        campaign_id, contact_id, email = details.get(hit.message_id, (None, None, None))
        data: dict[str, Any] = {
            "event_id": hit.id,
            "message_id": hit.message_id,
            "campaign_id": campaign_id,
            "contact_id": contact_id,
            "email": email,
        }
        if hit.kind == "click":
            data |= {"link": hit.link, "destination": hit.destination}
        data |= {
            "classification": event.classification,
            "reason": event.reason,
            "at": iso(hit.at_ms),
        }
        event_type = MESSAGE_OPENED if hit.kind == "open" else MESSAGE_CLICKED
        account_id = contexts[hit.message_id].account_id
        webhook_events.append(
            WebhookEvent(account_id, event_type, data, hit.at_ms, hit.id, hit.at_ms + SETTLE_MS)
        )
    return enqueue_many(conn, webhook_events, endpoints)


def _message_details(
    conn: Connection, message_ids: Collection[str]
) -> dict[str, tuple[str, str, str]]:
    found: dict[str, tuple[str, str, str]] = {}
    for chunk in _chunks(sorted(message_ids)):
        query = (
            select(messages.c.id, messages.c.campaign_id, messages.c.contact_id, contacts.c.email)
            .join(contacts, contacts.c.id == messages.c.contact_id)
            .where(messages.c.id.in_(chunk))
        )
        for row in conn.execute(query):
            found[row.id] = (row.campaign_id, row.contact_id, row.email)
    return found
