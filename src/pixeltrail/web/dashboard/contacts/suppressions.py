"""The suppression list: addresses never written to again; listing, adding, taking one off."""

from __future__ import annotations

from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import get_account
from pixeltrail.platform.contacts.suppressions import list_suppressions, suppress, unsuppress
from pixeltrail.platform.errors import PlatformError
from pixeltrail.web.dashboard.pages import Ctx, page, route


def _list(ctx: Ctx, status: int = 200, error: PlatformError | None = None) -> Response:
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        items, next_cursor = list_suppressions(
            conn, ctx.account_id, cursor=ctx.query.get("cursor") or None, limit=100
        )
    return ctx.render(
        "contacts/suppressions.html",
        status=status,
        suppressions=items,
        next_cursor=next_cursor,
        email=ctx.field("email"),
        tz=account.timezone,
        error=error,
    )


@page
def suppression_list(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _list(ctx)
    with ctx.form_errors(lambda exc: _list(ctx, exc.status, exc)), ctx.write() as conn:
        found, added = suppress(conn, ctx.account_id, ctx.field("email"), "manual")
    message = "added to the list" if added else f"was already on the list ({found.reason})"
    return ctx.redirect("/contacts/suppressions", flash=f"{found.email} {message}")


@page
def suppression_remove(ctx: Ctx) -> Response:
    email = ctx.field("email")
    # An address not on the list is this form's error (a 404 with the list), not a 404 page.
    with (
        ctx.form_errors(lambda exc: _list(ctx, exc.status, exc), missing=("email",)),
        ctx.write() as conn,
    ):
        unsuppress(conn, ctx.account_id, email)
    return ctx.redirect("/contacts/suppressions", flash=f"{email.strip()} taken off the list")


routes = [
    route("/contacts/suppressions", suppression_list, "GET", "POST"),
    route("/contacts/suppressions/remove", suppression_remove, "POST"),
]
