"""Who signs in to the account: its users and their roles, open invitations, and inviting
someone. Everyone sees the list; owners invite (and withdraw invitations), change roles and
remove people."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection
from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import get_account
from pixeltrail.platform.accounts.users import (
    ROLES,
    User,
    account_invites,
    account_users,
    invite_user,
    remove_user,
    revoke_invite,
    set_role,
)
from pixeltrail.platform.ids import now_ms
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
        **{"link": None, "replaced": None, "email": "", "error": None, **values},
    )


@page
def people_page(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _people(ctx)
    assert ctx.session is not None
    with (
        ctx.form_errors(lambda exc: _people(ctx, exc.status, error=exc, email=ctx.field("email"))),
        ctx.write() as conn,
    ):
        before = {
            i.email for i in account_invites(conn, ctx.account_id) if i.accepted_at_ms is None
        }
        invite, token = invite_user(conn, ctx.session.user, ctx.field("email"))
    # There is no mail for invitations: the link is shown this once, to pass on.
    return _people(
        ctx,
        link=f"{ctx.settings.base_url.rstrip('/')}/invite/{token}",
        replaced=invite.email if invite.email in before else None,
    )


def _act(ctx: Ctx, action: Callable[[Connection, User], str]) -> Response:
    """An owner's change from the list (`action` returns the flash): back to the list, or
    the list with the refusal (an unknown or another account's id: not found)."""
    assert ctx.session is not None
    with ctx.form_errors(lambda exc: _people(ctx, exc.status, error=exc)), ctx.write() as conn:
        flash = action(conn, ctx.session.user)
    return ctx.redirect(PATH, flash=flash)


@page
def role_change(ctx: Ctx) -> Response:
    def change(conn: Connection, actor: User) -> str:
        user = set_role(conn, actor, ctx.params["user_id"], ctx.field("role"))
        return f"{user.email} is now {user.role}"

    return _act(ctx, change)


@page
def person_remove(ctx: Ctx) -> Response:
    def remove(conn: Connection, actor: User) -> str:
        email = remove_user(conn, actor, ctx.params["user_id"])
        return f"{email} removed: they can no longer sign in"

    return _act(ctx, remove)


@page
def invite_revoke(ctx: Ctx) -> Response:
    def withdraw(conn: Connection, actor: User) -> str:
        invite = revoke_invite(conn, actor, ctx.params["invite_id"])
        return f"Invitation for {invite.email} withdrawn: its link no longer works"

    return _act(ctx, withdraw)


routes = [
    route(PATH, people_page, "GET", "POST"),
    route(PATH + "/{user_id}/role", role_change, "POST"),
    route(PATH + "/{user_id}/remove", person_remove, "POST"),
    route("/settings/invites/{invite_id}/revoke", invite_revoke, "POST"),
]
