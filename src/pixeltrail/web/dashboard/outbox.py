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
from pixeltrail.platform.errors import NotFound
from pixeltrail.platform.mail.outbox import OutboxMessage, get_outbox_message, list_outbox
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
    return ctx.render("outbox/message.html", message=message, mail=mail, view=view, tz=zone)


@page
def outbox_body(ctx: Ctx) -> Response:
    _message, mail = _kept(ctx)
    if mail.html is None:
        raise NotFound("this message has no HTML part")
    return HTMLResponse(with_base(mail.html), headers=BODY_HEADERS)


routes = [
    route("/outbox", outbox_list, "GET"),
    route("/outbox/{message_id}", outbox_message, "GET"),
    route("/outbox/{message_id}/body", outbox_body, "GET"),
]
