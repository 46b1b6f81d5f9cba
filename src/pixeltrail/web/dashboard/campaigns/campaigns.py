"""Campaigns: the list with status and headline numbers, a new campaign, launch/pause/resume.

The tabs of a campaign live in their own modules (campaign_sequence, campaign_contacts,
campaign_setup); their routes are gathered here, so the route table has one line for all.
"""

from __future__ import annotations

from starlette.responses import Response

from pixeltrail.platform.campaigns.campaigns import create_campaign, list_campaigns
from pixeltrail.platform.campaigns.headlines import campaign_headlines
from pixeltrail.platform.campaigns.input import CampaignIn, LaunchIn, parse_input
from pixeltrail.platform.campaigns.lifecycle import launch, pause, resume
from pixeltrail.platform.errors import Conflict, PlatformError
from pixeltrail.platform.mail.mailboxes import list_mailboxes
from pixeltrail.web.dashboard.campaigns import contacts, sequence, setup
from pixeltrail.web.dashboard.campaigns.tab import campaign_path, load_campaign
from pixeltrail.web.dashboard.pages import Ctx, page, route


def _list(ctx: Ctx, status: int = 200, error: PlatformError | None = None) -> Response:
    with ctx.read() as conn:
        items, next_cursor = list_campaigns(
            conn, ctx.account_id, cursor=ctx.query.get("cursor") or None, limit=50
        )
        headlines = campaign_headlines(conn, [c.id for c in items])
        boxes, _ = list_mailboxes(conn, ctx.account_id, ctx.settings, limit=500)
    values = {"name": ctx.field("name").strip(), "mailbox_id": ctx.field("mailbox_id")}
    return ctx.render(
        "campaigns/list.html",
        status=status,
        campaigns=items,
        headlines=headlines,
        next_cursor=next_cursor,
        mailboxes=boxes,
        values=values,
        error=error,
    )


@page
def campaign_list(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _list(ctx)
    with ctx.form_errors(lambda exc: _list(ctx, exc.status, exc), missing=("mailbox_id",)):
        given = parse_input(
            CampaignIn, {"name": ctx.field("name").strip(), "mailbox_id": ctx.field("mailbox_id")}
        )
        with ctx.write() as conn:
            campaign = create_campaign(conn, ctx.account_id, given)
    return ctx.redirect(
        campaign_path(campaign.id), flash="Campaign created: add its first step below."
    )


@page
def campaign_launch(ctx: Ctx) -> Response:
    campaign_id = ctx.params["campaign_id"]
    start = ctx.field("start_at").strip() or None
    with ctx.form_errors(lambda exc: _refused(ctx, exc)):
        given = parse_input(LaunchIn, {"start_at": start})
        with ctx.write() as conn:
            launched = launch(conn, ctx.account_id, campaign_id, given.start_at)
    return ctx.redirect(campaign_path(campaign_id), flash=f"Launched: {launched.name} is active.")


@page
def campaign_pause(ctx: Ctx) -> Response:
    campaign_id = ctx.params["campaign_id"]
    with ctx.form_errors(lambda exc: _refused(ctx, exc)), ctx.write() as conn:
        pause(conn, ctx.account_id, campaign_id)
    return ctx.redirect(
        campaign_path(campaign_id),
        flash="Paused: nothing more is scheduled until you resume. "
        "Messages already handed to a sender may still go out.",
    )


@page
def campaign_resume(ctx: Ctx) -> Response:
    campaign_id = ctx.params["campaign_id"]
    with ctx.form_errors(lambda exc: _refused(ctx, exc)), ctx.write() as conn:
        resume(conn, ctx.account_id, campaign_id)
    return ctx.redirect(campaign_path(campaign_id), flash="Resumed: the campaign is active.")


# The API's wording names its own routes; on these pages, say where the fix is.
_IN_PAGE_TERMS = {
    "contact_ids": "Add contacts on the Contacts tab before launching: nobody is in the "
    "sequence yet.",
    "steps": "Add at least one step below before launching.",
}


def _refused(ctx: Ctx, exc: PlatformError) -> Response:
    """The Sequence tab again, with why the campaign could not move."""
    campaign = load_campaign(ctx)
    if isinstance(exc, Conflict) and exc.field in _IN_PAGE_TERMS:
        exc = Conflict(_IN_PAGE_TERMS[exc.field], exc.field)
    return sequence.render_sequence(ctx, campaign, exc.status, lifecycle_error=exc)


routes = [
    route("/campaigns", campaign_list, "GET", "POST"),
    route("/campaigns/{campaign_id}/launch", campaign_launch, "POST"),
    route("/campaigns/{campaign_id}/pause", campaign_pause, "POST"),
    route("/campaigns/{campaign_id}/resume", campaign_resume, "POST"),
    *sequence.routes,
    *contacts.routes,
    *setup.routes,
]
