"""GET|POST /mailboxes, GET|PATCH|DELETE /mailboxes/{id}: who sends, never showing a password."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from pixeltrail.platform.mail.mailboxes import (
    DEFAULT_DAILY_LIMIT,
    MAX_DAILY_LIMIT,
    create_mailbox,
    delete_mailbox,
    get_mailbox,
    list_mailboxes,
    update_mailbox,
)
from pixeltrail.platform.mail.smtp_urls import MAX_URL_LENGTH
from pixeltrail.web.api.deps import AccountId, Conn, SettingsDep

router = APIRouter(tags=["mailboxes"])


class MailboxOut(BaseModel):
    id: str
    name: str
    from_email: str
    from_name: str
    kind: Literal["smtp", "outbox"]
    smtp_url: str | None = Field(description="The SMTP URL with its password shown as ***.")
    smtp_url_error: str | None = Field(
        description="Why the stored SMTP URL cannot be read (its key left the key ring)."
    )
    imap_url: str | None = Field(
        description="The IMAP URL whose INBOX is read, its password shown as ***; null: not read."
    )
    imap_url_error: str | None = Field(
        description='Why the INBOX cannot be read now ("cannot log in: ...", '
        '"cannot connect: ..."); null once it was read.'
    )
    imap_checked_at: str | None = Field(description="When the INBOX was last read.")
    daily_limit: int
    created_at: str


class MailboxList(BaseModel):
    items: list[MailboxOut]
    next_cursor: str | None


class MailboxIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    from_email: str = Field(max_length=320)
    from_name: str = Field(default="", max_length=200)
    smtp_url: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="smtp://user:password@host:587 (STARTTLS) or smtps://...:465 (TLS); "
        "left out or null: the built-in outbox. The host must be public: loopback, private and "
        "link-local addresses (and names resolving to them) are refused with 422 unless the "
        "instance sets PIXELTRAIL_MAIL_ALLOW_LOCAL=1 (link-local always).",
    )
    daily_limit: int = Field(default=DEFAULT_DAILY_LIMIT, ge=1, le=MAX_DAILY_LIMIT)
    imap_url: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="imap://user:password@host:143 (STARTTLS) or imaps://...:993 (TLS): replies "
        "and bounces are read from its INBOX, which is never changed. Left out or null: not read. "
        "The same host rules as smtp_url; ?starttls=off only for a loopback host with "
        "PIXELTRAIL_MAIL_ALLOW_LOCAL=1.",
    )


class MailboxPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    from_email: str | None = Field(default=None, max_length=320)
    from_name: str | None = Field(default=None, max_length=200)
    smtp_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    daily_limit: int | None = Field(default=None, ge=1, le=MAX_DAILY_LIMIT)
    imap_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)


@router.get("/mailboxes", response_model=MailboxList)
def read_mailboxes(
    conn: Conn,
    account: AccountId,
    settings: SettingsDep,
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    found, next_cursor = list_mailboxes(conn, account, settings, cursor, limit)
    return {"items": [m.as_record() for m in found], "next_cursor": next_cursor}


@router.post("/mailboxes", response_model=MailboxOut, status_code=201)
def add_mailbox(
    body: MailboxIn, conn: Conn, account: AccountId, settings: SettingsDep
) -> dict[str, Any]:
    return create_mailbox(conn, account, settings, **body.model_dump()).as_record()


@router.get("/mailboxes/{mailbox_id}", response_model=MailboxOut)
def read_mailbox(
    mailbox_id: str, conn: Conn, account: AccountId, settings: SettingsDep
) -> dict[str, Any]:
    return get_mailbox(conn, account, mailbox_id, settings).as_record()


@router.patch("/mailboxes/{mailbox_id}", response_model=MailboxOut)
def patch_mailbox(
    mailbox_id: str, body: MailboxPatch, conn: Conn, account: AccountId, settings: SettingsDep
) -> dict[str, Any]:
    """`smtp_url: null` makes the mailbox the built-in outbox; `imap_url: null` stops reading its
    INBOX."""
    changes = body.model_dump(exclude_unset=True)
    return update_mailbox(conn, account, mailbox_id, settings, changes).as_record()


@router.delete("/mailboxes/{mailbox_id}", status_code=204)
def remove_mailbox(mailbox_id: str, conn: Conn, account: AccountId) -> Response:
    delete_mailbox(conn, account, mailbox_id)
    return Response(status_code=204)
