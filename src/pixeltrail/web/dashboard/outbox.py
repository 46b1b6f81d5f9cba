"""The Outbox: messages the built-in outbox kept, listed, and each shown as a mail client would.

The sender's OutboxMailer keeps each message as data_dir/outbox/<message id>.eml. A message is
read only after the database says it is one of this account's outbox messages, so an id in a
URL never names a file by itself (and ids are 16 URL-safe base64 characters: no path in them).
The HTML part is served on its own URL with its own policy, for a sandboxed iframe: no scripts,
no same-origin access, images from anywhere (the tracking pixel must load, like in a real mail
client), links opening in a new tab (where the tracking redirect records the click).
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from starlette.responses import HTMLResponse, Response

from pixeltrail.platform.accounts.accounts import get_account
from pixeltrail.platform.errors import NotFound, PlatformError
from pixeltrail.platform.mail.local_inbox import deliver, inbox_directory
from pixeltrail.platform.mail.outbox import OutboxMessage, get_outbox_message, list_outbox
from pixeltrail.platform.mail.outbox_answers import (
    contact_reply,
    delivery_failure,
    read_sent,
    reply_text,
)
from pixeltrail.web.dashboard.pages import Ctx, page, route

PER_PAGE = 50
# Only the headers are needed for the list; they come first in a message.
HEAD_BYTES = 64 * 1024
# The email's own policy: nothing runs; images, inline styles and fonts load as in a mail
# client; no forms; the page may only be framed by the dashboard; and opened on its own
# (outside the iframe) it is still sandboxed. base-uri 'none' keeps an email's own
# <base href> from moving its links; ours only sets the target, which it does not restrict.
BODY_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; font-src *; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
BODY_HEADERS = {
    "Content-Security-Policy": BODY_CSP,
    "X-Content-Type-Options": "nosniff",
    # The pixel and links must not tell the tracking server (or anyone) the dashboard's URLs.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "SAMEORIGIN",
}
BASE = '<base target="_blank">'
_HEAD = re.compile(r"<head\b[^>]*>", re.I)
_HTML = re.compile(r"<html\b[^>]*>", re.I)
_DOCTYPE = re.compile(r"<!doctype\b[^>]*>", re.I)


@dataclass(frozen=True)
class Mail:
    """What the viewer shows of a kept message."""

    sender: str
    to: str
    subject: str
    date: str
    html: str | None
    text: str | None


def message_file(ctx: Ctx, message: OutboxMessage) -> Path:
    """Where the outbox keeps this message (see sending/mailers.py OutboxMailer)."""
    return ctx.settings.data_dir / "outbox" / f"{message.id}.eml"


def read_mail(path: Path) -> Mail:
    """The message's headers (decoded) and its HTML and text parts (charset-aware)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFound("the outbox no longer has this message") from None
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return Mail(
        sender=str(parsed.get("From", "")),
        to=str(parsed.get("To", "")),
        subject=str(parsed.get("Subject", "")),
        date=str(parsed.get("Date", "")),
        html=_part(parsed, "html"),
        text=_part(parsed, "plain"),
    )


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown charset: show what can be shown
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else None


def subject_of(path: Path) -> str:
    """The decoded Subject of a kept message, read from its first bytes only."""
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
    except FileNotFoundError:
        return ""
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    return str(headers.get("Subject", ""))


def with_base(html: str) -> str:
    """The HTML with <base target="_blank"> in its head, so every link opens a new tab."""
    for pattern in (_HEAD, _HTML, _DOCTYPE):
        found = pattern.search(html)
        if found:
            return html[: found.end()] + BASE + html[found.end() :]
    return BASE + html


@page
def outbox_list(ctx: Ctx) -> Response:
    with ctx.read() as conn:
        items, next_cursor = list_outbox(
            conn, ctx.account_id, ctx.query.get("cursor") or None, PER_PAGE
        )
        zone = get_account(conn, ctx.account_id).timezone
    subjects = {item.id: subject_of(message_file(ctx, item)) for item in items}
    return ctx.render(
        "outbox/list.html",
        messages=items,
        subjects=subjects,
        next_cursor=next_cursor,
        cursor=ctx.query.get("cursor"),
        tz=zone,
    )


def _kept(ctx: Ctx) -> tuple[OutboxMessage, Mail]:
    with ctx.read() as conn:
        message = get_outbox_message(conn, ctx.account_id, ctx.params["message_id"])
    return message, read_mail(message_file(ctx, message))


@page
def outbox_message(ctx: Ctx) -> Response:
    message, mail = _kept(ctx)
    with ctx.read() as conn:
        zone = get_account(conn, ctx.account_id).timezone
    view = "text" if ctx.query.get("view") == "text" or mail.html is None else "html"
    return ctx.render(
        "outbox/message.html",
        message=message,
        mail=mail,
        view=view,
        tz=zone,
        reply_error=None,
        reply="",
    )


@page
def outbox_body(ctx: Ctx) -> Response:
    _message, mail = _kept(ctx)
    if mail.html is None:
        raise NotFound("this message has no HTML part")
    return HTMLResponse(with_base(mail.html), headers=BODY_HEADERS)


def _answer_with(ctx: Ctx, what: str) -> Response:
    """Put what comes back for the message (its contact's reply or its bounce) in its mailbox's
    local INBOX, where the reader finds it as it would over IMAP."""
    with ctx.read() as conn:
        message = get_outbox_message(conn, ctx.account_id, ctx.params["message_id"])
    try:
        raw = message_file(ctx, message).read_bytes()
    except FileNotFoundError:
        raise NotFound("the outbox no longer has this message") from None
    sent = read_sent(raw)
    if what == "reply":
        answer, done = contact_reply(sent, ctx.field("text")), "A reply from"
    else:
        answer, done = delivery_failure(sent), "A bounce for"
    deliver(inbox_directory(ctx.settings.data_dir, message.mailbox_id), answer)
    return ctx.redirect(
        f"/outbox/{message.id}",
        f"{done} {sent.recipient} was put in the mailbox's inbox: it will be read within a "
        "minute, and the campaign's report will show it.",
    )


@page
def outbox_reply(ctx: Ctx) -> Response:
    def again(error: PlatformError) -> Response:
        message, mail = _kept(ctx)
        with ctx.read() as conn:
            zone = get_account(conn, ctx.account_id).timezone
        return ctx.render(
            "outbox/message.html",
            status=error.status,
            message=message,
            mail=mail,
            view="html" if mail.html is not None else "text",
            tz=zone,
            reply_error=error.message,
            reply=ctx.field("text"),
        )

    with ctx.form_errors(again):
        reply_text(ctx.field("text"))
    return _answer_with(ctx, "reply")


@page
def outbox_bounce(ctx: Ctx) -> Response:
    return _answer_with(ctx, "bounce")


routes = [
    route("/outbox", outbox_list, "GET"),
    route("/outbox/{message_id}", outbox_message, "GET"),
    route("/outbox/{message_id}/body", outbox_body, "GET"),
    route("/outbox/{message_id}/reply", outbox_reply, "POST"),
    route("/outbox/{message_id}/bounce", outbox_bounce, "POST"),
]
