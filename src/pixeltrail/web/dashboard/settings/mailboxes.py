"""Mailboxes: who campaigns send from, through an SMTP server (its URL masked) or the outbox;
added, edited (name, sender, daily limit) and removed while nothing was sent from them; the INBOX
whose replies and bounces are read (an IMAP URL, masked, with why it cannot be read now)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import get_account
from pixeltrail.platform.errors import Invalid, PlatformError
from pixeltrail.platform.mail.mailboxes import (
    DEFAULT_DAILY_LIMIT,
    MAX_DAILY_LIMIT,
    create_mailbox,
    delete_mailbox,
    get_mailbox,
    list_mailboxes,
    update_mailbox,
)
from pixeltrail.web.dashboard.pages import Again, Ctx, page, route

_FIELDS = ("name", "from_email", "from_name", "kind", "smtp_url", "imap_url", "daily_limit")


def _daily_limit(text: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise Invalid(
            f"the daily limit is a whole number from 1 to {MAX_DAILY_LIMIT}", "daily_limit"
        )
    return int(text)


def _page(
    ctx: Ctx, status: int = 200, error: PlatformError | None = None, adding: bool = True
) -> Response:
    """The page; after a failed add (`adding`), its form keeps what was typed and shows the
    error next to it (beside the SMTP URL when that is what is wrong)."""
    with ctx.read() as conn:
        timezone = get_account(conn, ctx.account_id).timezone
        mailboxes, next_cursor = list_mailboxes(
            conn, ctx.account_id, ctx.settings, cursor=ctx.query.get("cursor") or None, limit=100
        )
    values = {name: ctx.field(name) for name in _FIELDS}
    if ctx.form is None or not error or not adding:
        values = {"kind": "smtp", "daily_limit": str(DEFAULT_DAILY_LIMIT)}
    return ctx.render(
        "settings/mailboxes.html",
        status=status,
        mailboxes=mailboxes,
        next_cursor=next_cursor,
        values=values,
        max_limit=MAX_DAILY_LIMIT,
        tz=timezone,
        error=None if adding else error,
        add_error=error if adding else None,
    )


def _in_list(ctx: Ctx) -> Again:
    """A listed mailbox's change refused: the page with the error above the list."""
    return lambda exc: _page(ctx, exc.status, exc, adding=False)


@page
def mailboxes_page(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _page(ctx)
    with ctx.form_errors(lambda exc: _page(ctx, exc.status, exc)):
        outbox = ctx.field("kind") == "outbox"
        given: dict[str, Any] = {
            "name": ctx.field("name"),
            "from_email": ctx.field("from_email"),
            "from_name": ctx.field("from_name"),
            "smtp_url": None if outbox else ctx.field("smtp_url").strip(),
            "daily_limit": _daily_limit(ctx.field("daily_limit")),
            "imap_url": ctx.field("imap_url").strip() or None,
        }
        if not outbox and not given["smtp_url"]:
            raise Invalid(
                "give the SMTP server's URL, like smtp://user:password@smtp.example.com:587, "
                "or choose the built-in outbox",
                "smtp_url",
            )
        with ctx.write() as conn:
            mailbox = create_mailbox(conn, ctx.account_id, ctx.settings, **given)
    return ctx.redirect("/settings/mailboxes", flash=f"Mailbox {mailbox.name} added")


@page
def mailbox_edit(ctx: Ctx) -> Response:
    assert ctx.form is not None
    changes: dict[str, Any] = {
        name: ctx.field(name) for name in ("name", "from_name", "from_email") if name in ctx.form
    }
    with ctx.form_errors(_in_list(ctx)):
        changes["daily_limit"] = _daily_limit(ctx.field("daily_limit"))
        with ctx.write() as conn:
            mailbox = update_mailbox(
                conn, ctx.account_id, ctx.params["mailbox_id"], ctx.settings, changes
            )
    return ctx.redirect(
        "/settings/mailboxes",
        flash=f"{mailbox.name} saved: it sends at most {mailbox.daily_limit} a day",
    )


@page
def mailbox_imap(ctx: Ctx) -> Response:
    """Read the INBOX of the IMAP URL given, or stop reading (an empty one, or `stop`)."""
    assert ctx.form is not None
    url = None if "stop" in ctx.form else ctx.field("imap_url").strip() or None
    with ctx.form_errors(_in_list(ctx)), ctx.write() as conn:
        mailbox = update_mailbox(
            conn, ctx.account_id, ctx.params["mailbox_id"], ctx.settings, {"imap_url": url}
        )
    said = "its replies and bounces are read" if url else "its INBOX is not read"
    return ctx.redirect("/settings/mailboxes", flash=f"{mailbox.name}: {said}")


@page
def mailbox_delete(ctx: Ctx) -> Response:
    mailbox_id = ctx.params["mailbox_id"]
    # Used by campaigns or messages: it stays, and the list says why.
    with ctx.form_errors(_in_list(ctx)), ctx.write() as conn:
        mailbox = get_mailbox(conn, ctx.account_id, mailbox_id, ctx.settings)
        delete_mailbox(conn, ctx.account_id, mailbox_id)
    return ctx.redirect("/settings/mailboxes", flash=f"Mailbox {mailbox.name} removed")


routes = [
    route("/settings/mailboxes", mailboxes_page, "GET", "POST"),
    route("/settings/mailboxes/{mailbox_id}/edit", mailbox_edit, "POST"),
    route("/settings/mailboxes/{mailbox_id}/imap", mailbox_imap, "POST"),
    route("/settings/mailboxes/{mailbox_id}/delete", mailbox_delete, "POST"),
]
