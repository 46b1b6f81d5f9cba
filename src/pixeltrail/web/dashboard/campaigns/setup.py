"""The Schedule and Settings tabs: when a campaign sends, and how it tracks.

Settings change through `update_settings`, as the API's PATCH does: a change applies to
messages not yet scheduled, and the page says how many already scheduled keep the old ones.
Click tracking needs a verified tracking domain; without one its switch is disabled and the
page says why and where to set one up. Click tracking with "This server's own address" is
refused with the form as posted, never saved with another domain in its place.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from typing import Any

from starlette.responses import Response

from pixeltrail.platform.campaigns.campaigns import Campaign, update_campaign
from pixeltrail.platform.campaigns.input import DAYS, CampaignPatch, ScheduleIn, parse_input
from pixeltrail.platform.campaigns.settings import CLICKS_NEED_OWN_DOMAIN, update_settings
from pixeltrail.platform.campaigns.status import CampaignStatus
from pixeltrail.platform.domains.domains import TrackingDomain, list_domains
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.errors import Conflict, Invalid, PlatformError
from pixeltrail.web.dashboard.campaigns.tab import campaign_path, load_campaign, render_tab
from pixeltrail.web.dashboard.pages import Ctx, page, route

DAY_NAMES = dict(zip(DAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True))


@lru_cache(maxsize=1)
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _hour(ctx: Ctx, name: str) -> int:
    try:
        return int(ctx.field(name))
    except ValueError:
        raise Invalid(f"schedule.{name}: choose an hour", f"schedule.{name}") from None


def _posted_schedule(ctx: Ctx) -> dict[str, Any]:
    assert ctx.form is not None
    cap = ctx.field("daily_cap").strip()
    if cap and not cap.isdigit():
        raise Invalid("schedule.daily_cap: a whole number of messages a day, or empty", "daily_cap")
    days = [d for d in ctx.form.getlist("days") if isinstance(d, str)]
    if not days:
        raise Invalid("schedule.days: choose at least one sending day", "schedule.days")
    return {
        "timezone": ctx.field("timezone").strip(),
        "days": days,
        "start_hour": _hour(ctx, "start_hour"),
        "end_hour": _hour(ctx, "end_hour"),
        "daily_cap": int(cap) if cap else None,
    }


@page
def schedule_tab(ctx: Ctx) -> Response:
    campaign = load_campaign(ctx)
    values = dict(campaign.schedule)
    if ctx.form is None:
        return _schedule(ctx, campaign, values, None)
    # The values as posted once they could be read, else the saved ones, with the error.
    with ctx.form_errors(lambda exc: _schedule(ctx, campaign, values, exc)):
        values = _posted_schedule(ctx)
        given = parse_input(ScheduleIn, values)
        with ctx.write() as conn:
            update_campaign(conn, ctx.account_id, campaign.id, CampaignPatch(schedule=given))
    flash = "Schedule saved."
    if campaign.status != CampaignStatus.DRAFT:
        flash += " Messages already scheduled keep their times."
    return ctx.redirect(campaign_path(campaign.id, "/schedule"), flash=flash)


def _schedule(
    ctx: Ctx, campaign: Campaign, values: dict[str, Any], error: PlatformError | None
) -> Response:
    return render_tab(
        ctx,
        campaign,
        "schedule",
        error.status if error else 200,
        values=values,
        zones=time_zones(),
        days=DAY_NAMES,
        error=error,
    )


def _verified_domains(ctx: Ctx) -> list[TrackingDomain]:
    with ctx.read() as conn:
        found, _ = list_domains(conn, ctx.account_id, limit=500)
    return [domain for domain in found if domain.status == DomainStatus.VERIFIED]


@page
def settings_tab(ctx: Ctx) -> Response:
    campaign = load_campaign(ctx)
    if ctx.form is None:
        return _settings(ctx, campaign, None)
    changes: dict[str, Any] = {
        "track_opens": ctx.checked("track_opens"),
        "track_clicks": ctx.checked("track_clicks"),
        "track_text_links": ctx.checked("track_text_links"),
        "stop_on_reply": ctx.checked("stop_on_reply"),
    }
    assert ctx.form is not None
    if "tracking_domain_id" in ctx.form:
        # "" is "This server's own address": a choice, refused with click tracking on. A form
        # without the field names no domain, and the only verified one is picked.
        changes["tracking_domain_id"] = ctx.field("tracking_domain_id") or None
    with (
        ctx.form_errors(
            lambda exc: _settings(ctx, campaign, _in_page_terms(exc), changes),
            missing=("tracking_domain_id",),
        ),
        ctx.write() as conn,
    ):
        change = update_settings(conn, ctx.account_id, campaign.id, changes)
    flash = "Settings saved."
    if campaign.status != CampaignStatus.DRAFT or change.scheduled_unchanged:
        kept, later = change.scheduled_unchanged, change.applied_to_unscheduled
        verb = (
            "message already scheduled keeps its"
            if kept == 1
            else "messages already scheduled keep their"
        )
        flash += f" {kept} {verb} old settings; {later} still to be scheduled follow the new ones."
    return ctx.redirect(campaign_path(campaign.id, "/settings"), flash=flash)


def _in_page_terms(exc: PlatformError) -> PlatformError:
    """The API's wording names its own routes and fields; on this page, say where to look."""
    if exc.field == "track_clicks":
        return Conflict(
            "Click tracking needs a verified tracking domain: set one up under Tracking "
            "domains (/domains) first.",
            exc.field,
        )
    if exc.message == CLICKS_NEED_OWN_DOMAIN:
        return Conflict(
            "Click tracking needs a verified tracking domain of yours, not this server's own "
            "address: choose a tracking domain below, or switch click tracking off.",
            exc.field,
        )
    if exc.field == "tracking_domain_id" and exc.message.startswith("several"):
        return Conflict("Several tracking domains are verified: choose one below.", exc.field)
    return exc


def _settings(
    ctx: Ctx,
    campaign: Campaign,
    error: PlatformError | None,
    values: dict[str, Any] | None = None,
) -> Response:
    return render_tab(
        ctx,
        campaign,
        "settings",
        error.status if error else 200,
        values=values or campaign.settings,
        domains=_verified_domains(ctx),
        error=error,
    )


routes = [
    route("/campaigns/{campaign_id}/schedule", schedule_tab, "GET", "POST"),
    route("/campaigns/{campaign_id}/settings", settings_tab, "GET", "POST"),
]
