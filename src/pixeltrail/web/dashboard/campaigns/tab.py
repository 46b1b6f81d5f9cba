"""What every tab of a campaign page shares: loading the campaign, rendering the tab."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import get_account
from pixeltrail.platform.campaigns.campaigns import Campaign, get_campaign
from pixeltrail.web.dashboard.pages import Ctx


def load_campaign(ctx: Ctx) -> Campaign:
    """The campaign of the path; NotFound (the 404 page) unless it is this account's."""
    with ctx.read() as conn:
        return get_campaign(conn, ctx.account_id, ctx.params["campaign_id"])


def render_tab(
    ctx: Ctx, campaign: Campaign, tab: str, status: int = 200, **values: Any
) -> Response:
    values.setdefault("lifecycle_error", None)
    with ctx.read() as conn:
        account_tz = get_account(conn, ctx.account_id).timezone
    return ctx.render(
        f"campaigns/{tab}.html",
        status=status,
        campaign=campaign,
        tab=tab,
        account_tz=account_tz,
        **values,
    )


def campaign_path(campaign_id: str, tail: str = "") -> str:
    return f"/campaigns/{campaign_id}{tail}"
