"""The built-in outbox as its account sees it: messages sent through outbox mailboxes, newest
first, and one of them by id (another account's id, or one sent over SMTP, is not found)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, or_, select

from pixeltrail.platform.errors import NotFound
from pixeltrail.platform.paging import check_limit, decode_cursor, encode_cursor
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import campaigns, contacts, mailboxes, messages
from pixeltrail.tracking.tokens import message_id_error

_m = messages.c


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    recipient: str
    campaign_id: str
    campaign_name: str
    sent_at_ms: int
    mailbox_id: str
    status: MessageStatus  # sent, or bounced once its bounce came back


# A bounced message was sent all the same: the outbox still shows it.
_KEPT = (MessageStatus.SENT, MessageStatus.BOUNCED)


def _query(account_id: str) -> Select[Any]:
    return (
        select(
            _m.id,
            contacts.c.email,
            campaigns.c.id,
            campaigns.c.name,
            _m.sent_at_ms,
            _m.mailbox_id,
            _m.status,
        )
        .select_from(messages)
        .join(mailboxes, mailboxes.c.id == _m.mailbox_id)
        .join(contacts, contacts.c.id == _m.contact_id)
        .join(campaigns, campaigns.c.id == _m.campaign_id)
        .where(
            _m.account_id == account_id,
            mailboxes.c.account_id == account_id,
            mailboxes.c.smtp_url_encrypted.is_(None),
            _m.status.in_(_KEPT),
            _m.sent_at_ms.is_not(None),
        )
    )


def _message(row: Any) -> OutboxMessage:
    message_id, email, campaign_id, campaign_name, sent_at_ms, mailbox_id, status = row
    return OutboxMessage(
        message_id,
        email,
        campaign_id,
        campaign_name,
        sent_at_ms,
        mailbox_id,
        MessageStatus(status),
    )


def list_outbox(
    conn: Connection, account_id: str, cursor: str | None = None, limit: int | None = None
) -> tuple[list[OutboxMessage], str | None]:
    """A page of the account's outbox, newest first, and the cursor of the next page."""
    size = check_limit(limit)
    query = _query(account_id)
    if cursor:
        before_ms, before_id = decode_cursor(cursor)
        query = query.where(
            or_(_m.sent_at_ms < before_ms, and_(_m.sent_at_ms == before_ms, _m.id < before_id))
        )
    rows = conn.execute(query.order_by(_m.sent_at_ms.desc(), _m.id.desc()).limit(size + 1)).all()
    found = [_message(row) for row in rows[:size]]
    following = encode_cursor(found[-1].sent_at_ms, found[-1].id) if len(rows) > size else None
    return found, following


def get_outbox_message(conn: Connection, account_id: str, message_id: str) -> OutboxMessage:
    """One message of the account's outbox; NotFound for anything else, malformed ids included
    (so an id can name a file of the outbox only once it is known to be one of ours)."""
    if message_id_error(message_id) is not None:
        raise NotFound("no such message")
    row = conn.execute(_query(account_id).where(_m.id == message_id)).first()
    if row is None:
        raise NotFound("no such message")
    return _message(row)
