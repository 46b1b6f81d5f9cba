"""Who signs in to the account: its users, open invitations, and inviting someone."""

from __future__ import annotations

from starlette.responses import Response

from pixeltrail.platform.accounts import get_account
from pixeltrail.platform.errors import PlatformError
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.users import account_invites, account_users, invite_user
from pixeltrail.web.dashboard.pages import Ctx, page, route


@page
def people_page(ctx: Ctx) -> Response:
    link = error = None
    status = 200
    if ctx.form is not None:
        assert ctx.session is not None
        try:
            with ctx.write() as conn:
                _invite, token = invite_user(conn, ctx.session.user, ctx.field("email"))
        except PlatformError as exc:
            error, status = exc, exc.status
        else:
            # There is no mail for invitations: the link is shown this once, to pass on.
            link = f"{ctx.settings.base_url.rstrip('/')}/invite/{token}"
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        users = account_users(conn, ctx.account_id)
        invites = [i for i in account_invites(conn, ctx.account_id) if i.accepted_at_ms is None]
    return ctx.render(
        "settings/people.html",
        status=status,
        users=users,
        invites=invites,
        now=now_ms(),
        link=link,
        email=ctx.field("email") if error else "",
        tz=account.timezone,
        error=error,
    )


routes = [route("/settings/users", people_page)]
