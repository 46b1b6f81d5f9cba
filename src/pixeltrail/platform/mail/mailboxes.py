"""Mailboxes: who sends (an SMTP server or the built-in outbox), from which address, how many a day.

The whole SMTP URL is stored encrypted (it holds the password) with `secretbox`; a mailbox
without one (`smtp_url_encrypted` NULL) is the built-in outbox, which keeps messages for
viewing instead of sending them, so a new instance works with no mail server. The password is
only ever decrypted for the sender (`mailbox_endpoint`); records show the URL masked. A mail
server on this host or an internal network is refused when saved (mail_servers.py) unless the
instance sets PIXELTRAIL_MAIL_ALLOW_LOCAL=1; the sender checks again when it connects.

A mailbox may also name an IMAP URL (imap_urls.py), stored encrypted the same way: the reader
(receiving/) reads its INBOX; how that went (the last error, when it last looked) is kept in
mailbox_inboxes and shown with the mailbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, delete, insert, select, update

from pixeltrail.config import Settings
from pixeltrail.platform.contacts.addresses import normalize_email
from pixeltrail.platform.errors import Conflict, Invalid, NotFound
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.platform.mail.imap_urls import ImapEndpoint, parse_imap_url
from pixeltrail.platform.mail.servers import check_mail_server
from pixeltrail.platform.mail.smtp_urls import SmtpEndpoint, parse_smtp_url
from pixeltrail.platform.paging import page
from pixeltrail.platform.secretbox import SecretBox, SecretUnreadable
from pixeltrail.store.schema import (
    campaigns,
    inbound_messages,
    mailbox_inboxes,
    mailboxes,
    messages,
)

# A new mailbox sends at most this many a day (all its campaigns together): a pace that keeps
# a fresh sending address out of spam folders. Raise it once the address has a reputation.
DEFAULT_DAILY_LIMIT = 200
MAX_DAILY_LIMIT = 100_000


@dataclass(frozen=True)
class Mailbox:
    id: str
    name: str
    from_email: str
    from_name: str
    kind: Literal["smtp", "outbox"]
    smtp_url_masked: str | None
    smtp_url_error: str | None
    daily_limit: int
    created_at_ms: int
    imap_url_masked: str | None = None
    imap_url_error: str | None = None
    imap_checked_at_ms: int | None = None

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "from_email": self.from_email,
            "from_name": self.from_name,
            "kind": self.kind,
            "smtp_url": self.smtp_url_masked,
            "smtp_url_error": self.smtp_url_error,
            "imap_url": self.imap_url_masked,
            "imap_url_error": self.imap_url_error,
            "imap_checked_at": _iso(self.imap_checked_at_ms),
            "daily_limit": self.daily_limit,
            "created_at": _iso(self.created_at_ms),
        }


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.key_ring())


def plain_text(value: Any, field: str, max_length: int = 200, *, required: bool = True) -> str:
    """A one-line string: no control characters (a name may end up in a mail header)."""
    if not isinstance(value, str):
        raise Invalid(f"{field} is a string", field)
    text: str = value.strip()
    if required and not text:
        raise Invalid(f"{field} cannot be empty", field)
    if len(text) > max_length:
        raise Invalid(f"{field} has at most {max_length} characters", field)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise Invalid(f"{field} cannot contain line breaks or control characters", field)
    return text


def _daily_limit(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DAILY_LIMIT:
        raise Invalid(f"daily_limit is a whole number from 1 to {MAX_DAILY_LIMIT}", "daily_limit")
    return int(value)


def _encrypted_url(value: Any, settings: Settings) -> str | None:
    """What to store for an smtp_url input: None for the outbox, else the encrypted URL.

    Invalid when the URL is malformed or names a mail server the instance may not reach.
    """
    if value is None:
        return None
    endpoint = parse_smtp_url(value)
    check_mail_server(endpoint.host, endpoint.port, settings.mail_allow_local, "smtp_url")
    return secret_box(settings).encrypt(endpoint.url())


def _encrypted_imap_url(value: Any, settings: Settings) -> str | None:
    """What to store for an imap_url input: None when the INBOX is not read, else the encrypted
    URL. Invalid when the URL is malformed or names a mail server the instance may not reach."""
    if value is None:
        return None
    endpoint = parse_imap_url(value, settings.mail_allow_local)
    check_mail_server(endpoint.host, endpoint.port, settings.mail_allow_local, "imap_url")
    return secret_box(settings).encrypt(endpoint.url())


def _mailbox(row: Row[Any], box: SecretBox) -> Mailbox:
    masked = error = None
    if row.smtp_url_encrypted is not None:
        try:
            masked = parse_smtp_url(box.decrypt(row.smtp_url_encrypted)).url(masked=True)
        except SecretUnreadable as exc:
            error = str(exc)
    imap_masked, imap_error = None, None
    if row.imap_url_encrypted is not None:
        imap_error = row.inbox_error
        try:
            imap_masked = parse_imap_url(box.decrypt(row.imap_url_encrypted), True).url(masked=True)
        except SecretUnreadable as exc:
            imap_error = str(exc)
    return Mailbox(
        id=row.id,
        name=row.name,
        from_email=row.from_email,
        from_name=row.from_name,
        kind="outbox" if row.smtp_url_encrypted is None else "smtp",
        smtp_url_masked=masked,
        smtp_url_error=error,
        daily_limit=row.daily_limit,
        created_at_ms=row.created_at_ms,
        imap_url_masked=imap_masked,
        imap_url_error=imap_error,
        imap_checked_at_ms=row.inbox_checked_at_ms if imap_masked is not None else None,
    )


def _with_inbox() -> Any:
    """Mailboxes with how reading their INBOX went (NULLs when never read)."""
    return select(
        mailboxes,
        mailbox_inboxes.c.error.label("inbox_error"),
        mailbox_inboxes.c.checked_at_ms.label("inbox_checked_at_ms"),
    ).outerjoin(mailbox_inboxes, mailbox_inboxes.c.mailbox_id == mailboxes.c.id)


def _row(conn: Connection, account_id: str, mailbox_id: str) -> Row[Any]:
    row = conn.execute(
        _with_inbox().where(mailboxes.c.id == mailbox_id, mailboxes.c.account_id == account_id)
    ).first()
    if row is None:
        raise NotFound("no such mailbox", "mailbox_id")
    return row


def require_mailbox(conn: Connection, account_id: str, mailbox_id: str, field: str) -> None:
    """NotFound (naming `field`) unless the mailbox exists in this account."""
    if not isinstance(mailbox_id, str):
        raise Invalid(f"{field} is a mailbox id", field)
    query = select(mailboxes.c.id).where(
        mailboxes.c.id == mailbox_id, mailboxes.c.account_id == account_id
    )
    if conn.execute(query).first() is None:
        raise NotFound("no such mailbox", field)


def create_mailbox(
    conn: Connection,
    account_id: str,
    settings: Settings,
    *,
    name: str,
    from_email: str,
    from_name: str = "",
    smtp_url: str | None = None,
    daily_limit: int = DEFAULT_DAILY_LIMIT,
    imap_url: str | None = None,
) -> Mailbox:
    """A new mailbox; without an SMTP URL it is the built-in outbox; with an IMAP URL its INBOX
    is read."""
    box = secret_box(settings)
    mailbox_id = new_id("mbx")
    conn.execute(
        insert(mailboxes).values(
            id=mailbox_id,
            account_id=account_id,
            name=plain_text(name, "name"),
            from_email=normalize_email(from_email, "from_email"),
            from_name=plain_text(from_name, "from_name", required=False),
            smtp_url_encrypted=_encrypted_url(smtp_url, settings),
            imap_url_encrypted=_encrypted_imap_url(imap_url, settings),
            daily_limit=_daily_limit(daily_limit),
            created_at_ms=now_ms(),
        )
    )
    return _mailbox(_row(conn, account_id, mailbox_id), box)


def get_mailbox(conn: Connection, account_id: str, mailbox_id: str, settings: Settings) -> Mailbox:
    return _mailbox(_row(conn, account_id, mailbox_id), secret_box(settings))


def list_mailboxes(
    conn: Connection,
    account_id: str,
    settings: Settings,
    cursor: str | None = None,
    limit: int | None = None,
) -> tuple[list[Mailbox], str | None]:
    query = _with_inbox().where(mailboxes.c.account_id == account_id)
    rows, next_cursor = page(conn, query, mailboxes, cursor, limit)
    box = secret_box(settings)
    return [_mailbox(row, box) for row in rows], next_cursor


def update_mailbox(
    conn: Connection,
    account_id: str,
    mailbox_id: str,
    settings: Settings,
    changes: Mapping[str, Any],
) -> Mailbox:
    """Change a mailbox; `smtp_url: None` turns it into the outbox, `imap_url: None` stops reading
    its INBOX. Unknown names are refused. A new IMAP URL is read from its INBOX's first message
    (what was read before stays recorded once: rows are kept apart by UIDVALIDITY and UID)."""
    box = secret_box(settings)
    _row(conn, account_id, mailbox_id)
    values: dict[str, Any] = {}
    for field, value in changes.items():
        if field in ("name", "from_name"):
            values[field] = plain_text(value, field, required=field == "name")
        elif field == "from_email":
            values[field] = normalize_email(value, field)
        elif field == "smtp_url":
            values["smtp_url_encrypted"] = _encrypted_url(value, settings)
        elif field == "imap_url":
            values["imap_url_encrypted"] = _encrypted_imap_url(value, settings)
            conn.execute(delete(mailbox_inboxes).where(mailbox_inboxes.c.mailbox_id == mailbox_id))
        elif field == "daily_limit":
            values[field] = _daily_limit(value)
        else:
            raise Invalid(f"unknown field {field!r}", field)
    if values:
        conn.execute(update(mailboxes).where(mailboxes.c.id == mailbox_id).values(**values))
    return _mailbox(_row(conn, account_id, mailbox_id), box)


def delete_mailbox(conn: Connection, account_id: str, mailbox_id: str) -> None:
    _row(conn, account_id, mailbox_id)
    for table, reason in (
        (campaigns, "campaigns send from this mailbox: move them to another one first"),
        (messages, "messages were sent or scheduled from this mailbox: it stays as their record"),
        (
            inbound_messages,
            "replies or bounces were read from its INBOX: it stays as their record",
        ),
    ):
        used = conn.execute(select(table.c.id).where(table.c.mailbox_id == mailbox_id).limit(1))
        if used.first() is not None:
            raise Conflict(reason)
    conn.execute(delete(mailbox_inboxes).where(mailbox_inboxes.c.mailbox_id == mailbox_id))
    conn.execute(delete(mailboxes).where(mailboxes.c.id == mailbox_id))


def mailbox_endpoint(
    conn: Connection, account_id: str, mailbox_id: str, settings: Settings
) -> SmtpEndpoint | None:
    """Where the sender delivers this mailbox's messages; None for the built-in outbox.

    Conflict if the stored URL cannot be decrypted (its key was removed from the key ring).
    """
    url = get_mailbox_smtp_url(conn, account_id, mailbox_id, settings)
    return None if url is None else parse_smtp_url(url)


def get_mailbox_smtp_url(
    conn: Connection, account_id: str, mailbox_id: str, settings: Settings
) -> str | None:
    """The SMTP URL with its password, for the sender only; None for the built-in outbox."""
    stored = _row(conn, account_id, mailbox_id).smtp_url_encrypted
    if stored is None:
        return None
    try:
        return secret_box(settings).decrypt(stored)
    except SecretUnreadable as exc:
        raise Conflict(f"the mailbox's SMTP URL cannot be used: {exc}", "smtp_url") from None


def mailbox_imap_endpoint(imap_url_encrypted: str, settings: Settings) -> ImapEndpoint:
    """The IMAP endpoint with its password, for the reader only. SecretUnreadable when its key
    left the key ring; Invalid when the URL is no longer allowed (starttls=off without
    PIXELTRAIL_MAIL_ALLOW_LOCAL=1)."""
    return parse_imap_url(
        secret_box(settings).decrypt(imap_url_encrypted), settings.mail_allow_local
    )
