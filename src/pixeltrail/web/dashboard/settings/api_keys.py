"""API keys: create one (shown once), the list with prefix, creation and last use, revoke."""

from __future__ import annotations

from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import (
    LAST_USED_EVERY_MS,
    create_api_key,
    get_account,
    list_api_keys,
    revoke_api_key,
)
from pixeltrail.web.dashboard.pages import Ctx, owner_page, route


def _keys(ctx: Ctx, status: int = 200, **values: object) -> Response:
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        keys = list_api_keys(conn, ctx.account_id)
    return ctx.render(
        "settings/api_keys.html",
        status=status,
        keys=keys,
        tz=account.timezone,
        hours=LAST_USED_EVERY_MS // 3_600_000,
        api_url=f"{ctx.settings.base_url.rstrip('/')}/api/v1",
        **{"new_key": None, "name": "", "error": None, **values},
    )


@owner_page
def keys_page(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _keys(ctx)
    with (
        ctx.form_errors(lambda exc: _keys(ctx, exc.status, error=exc, name=ctx.field("name"))),
        ctx.write() as conn,
    ):
        key = create_api_key(conn, ctx.account_id, ctx.field("name"))
    # Only a digest is stored: this answer is the one time the key can be seen.
    return _keys(ctx, new_key=key)


@owner_page
def key_revoke(ctx: Ctx) -> Response:
    with ctx.write() as conn:
        key = revoke_api_key(conn, ctx.account_id, ctx.params["key_id"])
    return ctx.redirect(
        "/settings/api-keys", flash=f"Key {key.name} ({key.shown}) revoked: it no longer works"
    )


routes = [
    route("/settings/api-keys", keys_page, "GET", "POST"),
    route("/settings/api-keys/{key_id}/revoke", key_revoke, "POST"),
]
