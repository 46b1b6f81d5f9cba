"""Account settings: name, time zone, tracking defaults, retention; the settings routes.

/settings is the Settings area's address: owners find the account's settings there, and a
member who opens it is taken to Users, the first settings page members may use, rather than
to an owners-only refusal."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import get_account, update_account
from pixeltrail.platform.accounts.users import require_owner
from pixeltrail.platform.errors import Invalid, PlatformError
from pixeltrail.web.dashboard.pages import Ctx, page, route
from pixeltrail.web.dashboard.settings import api_keys, mailboxes, people, webhooks


def _retention(text: str) -> int | None:
    """The retention field: empty keeps events for ever, else a whole number of days."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise Invalid(
            "retention is a number of days (1 to 36500), or empty to keep events", "retention_days"
        )
    return int(text)


def _changes(ctx: Ctx) -> dict[str, Any]:
    return {
        "name": ctx.field("name"),
        "timezone": ctx.field("timezone").strip(),
        "default_track_opens": ctx.checked("default_track_opens"),
        "anonymize_ips": ctx.checked("anonymize_ips"),
        "retention_days": _retention(ctx.field("retention_days")),
    }


@page
def account_page(ctx: Ctx) -> Response:
    assert ctx.session is not None
    if ctx.form is None and not ctx.session.user.is_owner:
        return ctx.redirect(people.PATH)
    require_owner(ctx.session.user, "change the account's settings")
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
    if ctx.form is None:
        return ctx.render("settings/account.html", account=account, values=None, error=None)

    def again(exc: PlatformError) -> Response:
        values: dict[str, Any] = {
            name: ctx.field(name) for name in ("name", "timezone", "retention_days")
        }
        values.update(
            default_track_opens=ctx.checked("default_track_opens"),
            anonymize_ips=ctx.checked("anonymize_ips"),
        )
        return ctx.render(
            "settings/account.html", status=exc.status, account=account, values=values, error=exc
        )

    with ctx.form_errors(again), ctx.write() as conn:
        update_account(conn, ctx.account_id, _changes(ctx))
    return ctx.redirect("/settings", flash="Settings saved")


routes = [
    route("/settings", account_page, "GET", "POST"),
    *people.routes,
    *api_keys.routes,
    *mailboxes.routes,
    *webhooks.routes,
]
