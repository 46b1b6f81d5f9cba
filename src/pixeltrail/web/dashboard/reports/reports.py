"""A campaign's Report tab: headline numbers, the chart, steps, contacts with their replies,
links, and the CSV export.

The numbers are platform/reports/summary.py's (the same as GET /api/v1/campaigns/{id}/report); this
module only picks them up and lays them out. While the campaign is active the numbers, chart
and contacts sit in a section that app.js refreshes from /campaigns/{id}/report/live.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection
from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import get_account
from pixeltrail.platform.campaigns.campaigns import get_campaign
from pixeltrail.platform.contacts.names import contact_names
from pixeltrail.platform.reports.activity import check_granularity, link_report, timeline
from pixeltrail.platform.reports.contacts import contacts_page, write_contacts_csv
from pixeltrail.platform.reports.steps import step_report
from pixeltrail.platform.reports.summary import campaign_summary
from pixeltrail.tracking.hits import Classification
from pixeltrail.web.dashboard.pages import HEADERS, Ctx, page, route
from pixeltrail.web.dashboard.reports.chart import buckets, choose_granularity, render_svg

CONTACTS_PER_PAGE = 25
# What a reader calls each machine classification.
MACHINE_NAMES = {
    Classification.APPLE_MPP: "Apple Mail Privacy Protection",
    Classification.SCANNER: "security scanner",
    Classification.BOT: "bot",
    Classification.PROXY_OPEN: "image proxy",
}


def machine_title(machine: dict[str, Any]) -> str:
    """The hover text of a machine count: counts by kind of machine, then by reason."""
    kinds = ", ".join(
        f"{MACHINE_NAMES.get(kind, kind)}: {count}"
        for kind, count in sorted(machine["by_classification"].items(), key=lambda i: -i[1])
        if count
    )
    reasons = [f"{item['reason']}: {item['count']}" for item in machine["by_reason"]]
    return "\n".join([kinds, *reasons]) if kinds else "no machine activity"


def _live(conn: Connection, ctx: Ctx, campaign_id: str) -> dict[str, Any]:
    """Everything the live section shows: numbers, chart, steps, one page of contacts."""
    account_id = ctx.account_id
    summary = campaign_summary(conn, account_id, campaign_id)
    zone = get_account(conn, account_id).timezone
    asked = ctx.query.get("granularity")
    hourly = timeline(conn, account_id, campaign_id, "hour")
    granularity = check_granularity(asked) if asked else choose_granularity(hourly["items"])
    series = hourly if granularity == "hour" else timeline(conn, account_id, campaign_id, "day")
    cursor = ctx.query.get("cursor") or None
    rows, next_cursor = contacts_page(conn, account_id, campaign_id, cursor, CONTACTS_PER_PAGE)
    names = contact_names(conn, account_id, [row["contact_id"] for row in rows])
    return {
        "summary": summary,
        "tz": zone,
        "granularity": granularity,
        "chart": render_svg(buckets(series["items"], granularity, zone), granularity, zone),
        "contacts": rows,
        "steps": step_report(conn, account_id, campaign_id),
        "names": names,
        "cursor": cursor,
        "next_cursor": next_cursor,
        "machine_opens_title": machine_title(summary["opens"]["machine"]),
        "machine_clicks_title": machine_title(summary["clicks"]["machine"]),
        "campaign_id": campaign_id,
    }


@page
def report_page(ctx: Ctx) -> Response:
    campaign_id = ctx.params["campaign_id"]
    with ctx.read() as conn:
        campaign = get_campaign(conn, ctx.account_id, campaign_id)
        live = _live(conn, ctx, campaign_id)
        links = link_report(conn, ctx.account_id, campaign_id)
    return ctx.render(
        "reports/report.html",
        campaign=campaign,
        tab="report",
        links=links,
        refresh_url=_live_url(campaign_id, ctx.query),
        **live,
    )


def _live_url(campaign_id: str, query: dict[str, str]) -> str:
    kept = {k: v for k, v in query.items() if k in {"cursor", "granularity"} and v}
    suffix = f"?{urlencode(kept)}" if kept else ""
    return f"/campaigns/{campaign_id}/report/live{suffix}"


@page
def report_live(ctx: Ctx) -> Response:
    campaign_id = ctx.params["campaign_id"]
    with ctx.read() as conn:
        live = _live(conn, ctx, campaign_id)
    return ctx.render("reports/_live.html", **live)


@page
def report_csv(ctx: Ctx) -> Response:
    campaign_id = ctx.params["campaign_id"]
    out = io.StringIO()
    with ctx.read() as conn:
        write_contacts_csv(conn, ctx.account_id, campaign_id, out)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            **HEADERS,
            "Content-Disposition": f'attachment; filename="{campaign_id}-contacts.csv"',
        },
    )


routes = [
    route("/campaigns/{campaign_id}/report", report_page, "GET"),
    route("/campaigns/{campaign_id}/report/live", report_live, "GET"),
    route("/campaigns/{campaign_id}/report.csv", report_csv, "GET"),
]
