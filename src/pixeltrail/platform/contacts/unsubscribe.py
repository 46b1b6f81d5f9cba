"""Unsubscribing: the reader of a message leaves every sequence of its account, for good."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from pixeltrail.platform.campaigns.status import EnrollmentStatus
from pixeltrail.platform.contacts.bounces import end_sequences
from pixeltrail.platform.contacts.suppressions import suppress
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.webhooks.events import enqueue_contact_unsubscribed
from pixeltrail.store.schema import contacts, messages, suppressions


@dataclass(frozen=True)
class Recipient:
    account_id: str
    contact_id: str
    email: str
    already: bool


def recipient_of(conn: Connection, message_id: str) -> Recipient | None:
    row = conn.execute(
        select(messages.c.account_id, contacts.c.id, contacts.c.email)
        .join(contacts, contacts.c.id == messages.c.contact_id)
        .where(messages.c.id == message_id)
    ).first()
    if row is None:
        return None
    reason = conn.execute(
        select(suppressions.c.reason).where(
            suppressions.c.account_id == row.account_id, suppressions.c.email == row.email
        )
    ).scalar()
    return Recipient(row.account_id, row.id, row.email, reason == "unsubscribed")


def unsubscribe(conn: Connection, message_id: str) -> Recipient | None:
    """Suppress the message's recipient (reason: unsubscribed); idempotent. None if unknown."""
    recipient = recipient_of(conn, message_id)
    if recipient is None:
        return None
    if not recipient.already:
        # Through the suppression list's own rule: an unsubscribe outranks manual and bounced.
        suppress(conn, recipient.account_id, recipient.email, "unsubscribed")
        at = now_ms()
        enqueue_contact_unsubscribed(
            conn,
            recipient.account_id,
            recipient.email,
            contact_id=recipient.contact_id,
            message_id=message_id,
            at_ms=at,
        )
    end_sequences(
        conn, recipient.account_id, recipient.email, EnrollmentStatus.UNSUBSCRIBED, "unsubscribed"
    )
    return recipient


def masked(email: str) -> str:
    """j***@example.com: enough for the reader to recognise, not for a passer-by to harvest."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
