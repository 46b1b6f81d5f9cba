"""Campaigns: the list with status and headline numbers."""

from __future__ import annotations

from starlette.responses import Response

from pixeltrail.platform.campaigns import list_campaigns
from pixeltrail.web.dashboard.pages import Ctx, page, route


@page
def campaign_list(ctx: Ctx) -> Response:
    with ctx.read() as conn:
        items, next_cursor = list_campaigns(
            conn, ctx.account_id, cursor=ctx.query.get("cursor") or None, limit=50
        )
    return ctx.render("campaigns/list.html", campaigns=items, next_cursor=next_cursor)


routes = [route("/campaigns", campaign_list, ("GET",))]
