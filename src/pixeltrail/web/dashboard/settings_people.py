"""Who signs in to the account: its users and their roles, open invitations, and inviting
someone. Everyone sees the list; owners invite (and withdraw invitations), change roles and
remove people."""

from __future__ import annotations

from starlette.responses import Response

from pixeltrail.platform.accounts import get_account
from pixeltrail.platform.errors import PlatformError
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.users import (
    ROLES,
    account_invites,
    account_users,
    invite_user,
    remove_user,
    revoke_invite,
    set_role,
)
from pixeltrail.web.dashboard.pages import Ctx, page, route

PATH = "/settings/users"


def _people(ctx: Ctx, status: int = 200, **values: object) -> Response:
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        users = account_users(conn, ctx.account_id)
        invites = [i for i in account_invites(conn, ctx.account_id) if i.accepted_at_ms is None]
    return ctx.render(
        "settings/people.html",
        status=status,
        users=users,
        invites=invites,
        roles=ROLES,
        now=now_ms(),
        tz=account.timezone,
        **{"link": None, "email": "", "error": None, **values},
    )


@page
def people_page(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _people(ctx)
    assert ctx.session is not None
    try:
        with ctx.write() as conn:
            _invite, token = invite_user(conn, ctx.session.user, ctx.field("email"))
    except PlatformError as exc:
        return _people(ctx, exc.status, error=exc, email=ctx.field("email"))
    # There is no mail for invitations: the link is shown this once, to pass on.
    return _people(ctx, link=f"{ctx.settings.base_url.rstrip('/')}/invite/{token}")


@page
def role_change(ctx: Ctx) -> Response:
    if ctx.form is None:
        return ctx.redirect(PATH)
    assert ctx.session is not None
    try:
        with ctx.write() as conn:
            user = set_role(conn, ctx.session.user, ctx.params["user_id"], ctx.field("role"))
    except PlatformError as exc:
        if exc.status == 404:
            raise
        return _people(ctx, exc.status, error=exc)
    return ctx.redirect(PATH, flash=f"{user.email} is now {user.role}")


@page
def person_remove(ctx: Ctx) -> Response:
    if ctx.form is None:
        return ctx.redirect(PATH)
    assert ctx.session is not None
    try:
        with ctx.write() as conn:
            email = remove_user(conn, ctx.session.user, ctx.params["user_id"])
    except PlatformError as exc:
        if exc.status == 404:
            raise
        return _people(ctx, exc.status, error=exc)
    return ctx.redirect(PATH, flash=f"{email} removed: they can no longer sign in")


@page
def invite_revoke(ctx: Ctx) -> Response:
    if ctx.form is None:
        return ctx.redirect(PATH)
    assert ctx.session is not None
    try:
        with ctx.write() as conn:
            invite = revoke_invite(conn, ctx.session.user, ctx.params["invite_id"])
    except PlatformError as exc:
        if exc.status == 404:
            raise
        return _people(ctx, exc.status, error=exc)
    return ctx.redirect(
        PATH, flash=f"Invitation for {invite.email} withdrawn: its link no longer works"
    )


routes = [
    route(PATH, people_page),
    route(PATH + "/{user_id}/role", role_change),
    route(PATH + "/{user_id}/remove", person_remove),
    route("/settings/invites/{invite_id}/revoke", invite_revoke),
]
