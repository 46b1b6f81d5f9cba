"""Recording a message read from a mailbox's INBOX, once, and doing what it means: a reply ends
the contact's sequence, a bounce suppresses the address, an auto-reply changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pixeltrail.inbound import FailedRecipient, Inbound, InboundKind
from pixeltrail.platform.campaigns.status import EnrollmentStatus
from pixeltrail.platform.contacts.bounces import bounce_address
from pixeltrail.platform.ids import new_id
from pixeltrail.platform.inbox.matches import Match, find_match
from pixeltrail.platform.webhooks.events import (
    MESSAGE_AUTO_REPLIED,
    MESSAGE_BOUNCED,
    MESSAGE_REPLIED,
    WebhookEvent,
    enqueue_many,
    iso,
)
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import campaigns, enrollments, inbound_messages, messages

_MAX_FROM = 320
_MAX_SUBJECT = 1000
_MAX_DIAGNOSTIC = 1000
_MAX_REASON = 1000


def record_inbound(
    conn: Connection,
    account_id: str,
    mailbox_id: str,
    uid_validity: int,
    uid: int,
    inbound: Inbound,
    received_at_ms: int,
    now: int,
) -> str | None:
    """Record one INBOX message and apply what it means (reply → enrollment `replied` when the
    campaign stops on replies; bounce → message `bounced`, address suppressed `bounced`, its
    sequences `bounced`; auto-reply recorded only; webhooks queued). Idempotent: None when
    (mailbox_id, uid_validity, uid) is already recorded. Returns the inbound_messages id.
    The caller owns the transaction (the reader writes its last_uid in the same one)."""
    match = find_match(conn, account_id, mailbox_id, inbound)
    failed = _failed_recipient(inbound, match) if inbound.kind == InboundKind.BOUNCE else None
    row_id = new_id("inb")
    values: dict[str, Any] = {
        "id": row_id,
        "account_id": account_id,
        "mailbox_id": mailbox_id,
        "uid_validity": uid_validity,
        "uid": uid,
        "kind": inbound.kind,
        "reason": _clip(inbound.reason, _MAX_REASON),
        "message_id": match.message_id if match else None,
        "campaign_id": match.campaign_id if match else None,
        "contact_id": match.contact_id if match else None,
        "matched_by": match.matched_by if match else None,
        "from_email": _clip(inbound.sender, _MAX_FROM),
        "subject": _clip(inbound.subject, _MAX_SUBJECT),
        "text": _clean(inbound.text),
        "status_code": _clip(failed.status, 16) if failed and failed.status else None,
        "diagnostic": _clip(failed.diagnostic, _MAX_DIAGNOSTIC)
        if failed and failed.diagnostic
        else None,
        "received_at_ms": received_at_ms,
        "created_at_ms": now,
    }
    if not _insert_once(conn, values):
        return None
    if match is not None:
        _apply(conn, account_id, row_id, inbound, match, failed, values)
    return row_id


def _insert_once(conn: Connection, values: dict[str, Any]) -> bool:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    key = ["mailbox_id", "uid_validity", "uid"]
    statement = (
        dialect.insert(inbound_messages)
        .values(**values)
        .on_conflict_do_nothing(index_elements=key)
        .returning(inbound_messages.c.id)
    )
    return conn.execute(statement).first() is not None


def _apply(
    conn: Connection,
    account_id: str,
    row_id: str,
    inbound: Inbound,
    match: Match,
    failed: FailedRecipient | None,
    values: dict[str, Any],
) -> None:
    if inbound.kind == InboundKind.REPLY:
        _stop_on_reply(conn, match)
        _webhook(conn, account_id, MESSAGE_REPLIED, row_id, match, values)
    elif inbound.kind == InboundKind.AUTO_REPLY:
        _webhook(conn, account_id, MESSAGE_AUTO_REPLIED, row_id, match, values)
    elif inbound.kind == InboundKind.BOUNCE:
        _bounce(conn, account_id, match, failed)
        _webhook(conn, account_id, MESSAGE_BOUNCED, row_id, match, values)


def _stop_on_reply(conn: Connection, match: Match) -> None:
    """When the campaign stops on replies: the enrollment ends `replied` and its messages still
    waiting for their time are cancelled."""
    stops = conn.execute(
        select(campaigns.c.stop_on_reply).where(campaigns.c.id == match.campaign_id)
    ).scalar()
    if not stops:
        return
    ended = conn.execute(
        update(enrollments)
        .where(
            enrollments.c.campaign_id == match.campaign_id,
            enrollments.c.contact_id == match.contact_id,
            enrollments.c.status == EnrollmentStatus.ACTIVE,
        )
        .values(status=EnrollmentStatus.REPLIED)
    ).rowcount
    if not ended:
        return
    conn.execute(
        update(messages)
        .where(
            messages.c.campaign_id == match.campaign_id,
            messages.c.contact_id == match.contact_id,
            # A claimed message is in a worker's hands already: it goes out (as after an
            # unsubscribe), never both cancelled here and sent there.
            messages.c.status == MessageStatus.SCHEDULED,
        )
        .values(status=MessageStatus.CANCELLED, error="not sent: the contact replied")
    )


def _bounce(
    conn: Connection, account_id: str, match: Match, failed: FailedRecipient | None
) -> None:
    """The message bounced (with the server's words as its error), its address is suppressed."""
    error = "bounced"
    if failed is not None:
        words = " ".join(part for part in (failed.status, failed.diagnostic) if part)
        error = _clip(f"bounced: {words}" if words else error, _MAX_DIAGNOSTIC)
    conn.execute(
        update(messages)
        .where(
            messages.c.id == match.message_id,
            messages.c.status.in_((MessageStatus.SENT, MessageStatus.BOUNCED)),
        )
        .values(status=MessageStatus.BOUNCED, error=error)
    )
    bounce_address(conn, account_id, match.email)
    # A sequence whose last message bounced did not reach its contact: not `finished`.
    conn.execute(
        update(enrollments)
        .where(
            enrollments.c.campaign_id == match.campaign_id,
            enrollments.c.contact_id == match.contact_id,
            enrollments.c.status == EnrollmentStatus.FINISHED,
        )
        .values(status=EnrollmentStatus.BOUNCED)
    )


def _failed_recipient(inbound: Inbound, match: Match | None) -> FailedRecipient | None:
    """The report's line for the matched message's address, else its first failed recipient."""
    if match is not None:
        for recipient in inbound.recipients:
            if recipient.address.strip().lower() == match.email.lower():
                return recipient
    return inbound.recipients[0] if inbound.recipients else None


def _webhook(
    conn: Connection,
    account_id: str,
    event_type: str,
    row_id: str,
    match: Match,
    values: dict[str, Any],
) -> None:
    at_ms = int(values["received_at_ms"])
    data: dict[str, Any] = {
        "inbound_id": row_id,
        "message_id": match.message_id,
        "campaign_id": match.campaign_id,
        "contact_id": match.contact_id,
        "email": match.email,
        "matched_by": str(match.matched_by),
        "from_email": values["from_email"],
        "subject": values["subject"],
    }
    if event_type == MESSAGE_BOUNCED:
        data |= {"status_code": values["status_code"], "diagnostic": values["diagnostic"]}
    else:
        data["text"] = values["text"]
    data["at"] = iso(at_ms)
    event = WebhookEvent(account_id, event_type, data, at_ms, f"inbound:{row_id}")
    enqueue_many(conn, [event])


def _clean(text: str) -> str:
    """PostgreSQL text holds no NUL character; lone surrogates cannot be stored either."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _clip(text: str, limit: int) -> str:
    return _clean(text)[:limit]
