"""The Sequence tab: a campaign's steps, added, edited and deleted, each with its preview.

Steps are saved the way the API saves them: the whole sequence through `update_campaign`, so
the same checks apply (templates checked by the sandbox, with the step and the line; steps of
an active campaign only change once it is paused; a step with messages cannot be removed).
An error is shown beside the step it concerns, with what was typed kept in the form.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from pixeltrail.platform.campaigns.campaigns import Campaign, update_campaign
from pixeltrail.platform.campaigns.input import CampaignPatch, StepIn, parse_input
from pixeltrail.platform.campaigns.sequence import Step
from pixeltrail.platform.errors import Invalid, NotFound, PlatformError
from pixeltrail.web.dashboard.campaigns.preview import (
    draft_key,
    drafts,
    preview_saved,
    preview_typed,
)
from pixeltrail.web.dashboard.campaigns.tab import campaign_path, load_campaign, render_tab
from pixeltrail.web.dashboard.pages import HEADERS, Ctx, page, route

NEW = "new"  # the key of the "add a step" form, for its errors and preview
_STEP_FIELD = re.compile(r"steps\.(\d+)\.")


def render_sequence(
    ctx: Ctx,
    campaign: Campaign,
    status: int = 200,
    *,
    errors: dict[str, PlatformError] | None = None,
    drafts: dict[str, dict[str, Any]] | None = None,
    lifecycle_error: PlatformError | None = None,
) -> Response:
    steps = campaign.steps or ()
    forms = {str(step.position): _values(step) for step in steps}
    forms.update(drafts or {})
    delay = "2" if steps else "0"
    forms.setdefault(NEW, {"subject": "", "delay_days": delay, "html": "", "text": ""})
    return render_tab(
        ctx,
        campaign,
        "sequence",
        status,
        steps=steps,
        forms=forms,
        errors=errors or {},
        lifecycle_error=lifecycle_error,
        new=NEW,
    )


def _values(step: Step) -> dict[str, Any]:
    return {
        "subject": step.subject,
        "delay_days": str(step.delay_days),
        "html": step.html,
        "text": step.text or "",
    }


def typed_step(ctx: Ctx) -> dict[str, str]:
    """The step form as typed, to give it back with an error."""
    return {
        "subject": ctx.field("subject"),
        "delay_days": ctx.field("delay_days").strip(),
        "html": ctx.field("html"),
        "text": ctx.field("text"),
    }


def checked_step(typed: dict[str, str]) -> StepIn:
    """The typed step as a StepIn; Invalid naming the field."""
    try:
        delay = int(typed["delay_days"] or "0")
    except ValueError:
        raise Invalid("delay_days: a whole number of days, 0 or more", "delay_days") from None
    return parse_input(
        StepIn,
        {
            "subject": typed["subject"],
            "delay_days": delay,
            "html": typed["html"],
            "text": typed["text"] if typed["text"].strip() else None,
        },
    )


def _as_input(step: Step) -> StepIn:
    return StepIn(subject=step.subject, html=step.html, text=step.text, delay_days=step.delay_days)


def _save(ctx: Ctx, key: str, build: Any) -> Response:
    """Post a changed sequence; `build(current steps, posted step)` gives the new one."""
    campaign = load_campaign(ctx)
    typed = typed_step(ctx)

    def again(exc: PlatformError) -> Response:
        found = _STEP_FIELD.match(exc.field or "")
        where = key if found is None or key == NEW else str(int(found.group(1)) + 1)
        return render_sequence(ctx, campaign, exc.status, errors={where: exc}, drafts={key: typed})

    with ctx.form_errors(again):
        posted = checked_step(typed)
        steps = build([_as_input(s) for s in campaign.steps or ()], posted)
        with ctx.write() as conn:
            update_campaign(conn, ctx.account_id, campaign.id, CampaignPatch(steps=steps))
    anchor = f"#step-{len(steps) if key == NEW else key}"
    flash = "Step added." if key == NEW else f"Step {key} saved."
    return ctx.redirect(campaign_path(campaign.id) + anchor, flash=flash)


def _position(ctx: Ctx, campaign: Campaign) -> int:
    """The step number of the path; NotFound for one the campaign does not have."""
    raw = ctx.params["position"]
    if not raw.isdigit() or not 1 <= int(raw) <= len(campaign.steps or ()):
        raise NotFound("no such step")
    return int(raw)


@page
def sequence(ctx: Ctx) -> Response:
    return render_sequence(ctx, load_campaign(ctx))


@page
def add_step(ctx: Ctx) -> Response:
    return _save(ctx, NEW, lambda steps, posted: [*steps, posted])


@page
def edit_step(ctx: Ctx) -> Response:
    position = _position(ctx, load_campaign(ctx))

    def build(steps: list[StepIn], posted: StepIn) -> list[StepIn]:
        steps[position - 1] = posted
        return steps

    return _save(ctx, str(position), build)


@page
def delete_step(ctx: Ctx) -> Response:
    campaign = load_campaign(ctx)
    position = _position(ctx, campaign)
    steps = [_as_input(s) for s in campaign.steps or () if s.position != position]

    def again(exc: PlatformError) -> Response:
        return render_sequence(ctx, campaign, exc.status, errors={str(position): exc})

    with ctx.form_errors(again), ctx.write() as conn:
        update_campaign(conn, ctx.account_id, campaign.id, CampaignPatch(steps=steps))
    return ctx.redirect(campaign_path(campaign.id), flash=f"Step {position} deleted.")


def _step_key(ctx: Ctx, campaign: Campaign) -> str:
    raw = ctx.params["position"]
    return raw if raw == NEW else str(_position(ctx, campaign))


@page
def step_preview(ctx: Ctx) -> Response:
    """GET: the step's latest draft when asked (`?draft`), else the saved step (nothing yet
    for the new one); POST: the form as typed (the Preview button posts into the iframe)."""
    campaign = load_campaign(ctx)
    key = _step_key(ctx, campaign)
    if ctx.form is not None:
        return preview_typed(ctx, campaign, typed_step(ctx))
    typed = drafts.get(draft_key(ctx, campaign, key)) if "draft" in ctx.query else None
    if typed is not None or key == NEW:
        return preview_typed(ctx, campaign, typed)
    return preview_saved(ctx, campaign, (campaign.steps or ())[int(key) - 1])


@page
def step_draft(ctx: Ctx) -> Response:
    """Keep what is being typed for the step's preview; nothing is saved."""
    campaign = load_campaign(ctx)
    kept = drafts.put(draft_key(ctx, campaign, _step_key(ctx, campaign)), typed_step(ctx))
    return Response(status_code=204 if kept else 413, headers=HEADERS)


routes = [
    route("/campaigns/{campaign_id}", sequence, "GET"),
    route("/campaigns/{campaign_id}/steps", add_step, "POST"),
    route("/campaigns/{campaign_id}/steps/{position}", edit_step, "POST"),
    route("/campaigns/{campaign_id}/steps/{position}/delete", delete_step, "POST"),
    route("/campaigns/{campaign_id}/steps/{position}/preview", step_preview, "GET", "POST"),
    route("/campaigns/{campaign_id}/steps/{position}/draft", step_draft, "POST"),
]
