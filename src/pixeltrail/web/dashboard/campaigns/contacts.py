"""The Contacts tab: who is in the campaign and where they are; adding and taking out contacts.

Adding goes through `enroll_contacts`, as the API's POST /campaigns/{id}/contacts does:
suppressed and already enrolled contacts are skipped and counted, never an error.
"""

from __future__ import annotations

from starlette.responses import Response

from pixeltrail.platform.campaigns.contacts import (
    account_contact_ids,
    candidates,
    enrolled,
    remove_contacts,
)
from pixeltrail.platform.campaigns.input import MAX_ENROLL
from pixeltrail.platform.campaigns.lifecycle import enroll_contacts
from pixeltrail.platform.contacts.contacts import MAX_SEARCH
from pixeltrail.platform.errors import Invalid, PlatformError
from pixeltrail.web.dashboard.campaigns.tab import campaign_path, load_campaign, render_tab
from pixeltrail.web.dashboard.pages import Ctx, page, route


def _tab(ctx: Ctx, status: int = 200, error: PlatformError | None = None) -> Response:
    campaign = load_campaign(ctx)
    search = ctx.query.get("q", "")[:MAX_SEARCH]
    with ctx.read() as conn:
        people, next_cursor = enrolled(
            conn, ctx.account_id, campaign.id, cursor=ctx.query.get("cursor") or None
        )
        found = candidates(conn, ctx.account_id, campaign.id, search) if search.strip() else []
    return render_tab(
        ctx,
        campaign,
        "contacts",
        status,
        people=people,
        next_cursor=next_cursor,
        search=search,
        found=found,
        error=error,
    )


def _added(result: dict[str, int]) -> str:
    parts = [f"Added {result['enrolled']} contact{'' if result['enrolled'] == 1 else 's'}."]
    if result["already_enrolled"]:
        parts.append(f"{result['already_enrolled']} already in the campaign.")
    if result["suppressed"]:
        parts.append(f"{result['suppressed']} skipped: on the suppression list.")
    return " ".join(parts)


# Contacts that are not (or no longer) there are the form's error; the campaign is the page's.
_CONTACTS = ("contact_ids",)


def _enroll(ctx: Ctx, ids: list[str]) -> Response:
    campaign_id = ctx.params["campaign_id"]
    with ctx.form_errors(lambda exc: _tab(ctx, exc.status, exc), missing=_CONTACTS):
        if not ids:
            raise Invalid("choose at least one contact to add", "contact_ids")
        with ctx.write() as conn:
            result = enroll_contacts(conn, ctx.account_id, campaign_id, ids)
    return ctx.redirect(campaign_path(campaign_id, "/contacts"), flash=_added(result))


@page
def contacts_tab(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _tab(ctx)
    ids = [v for v in ctx.form.getlist("contact_id") if isinstance(v, str) and v]
    return _enroll(ctx, ids[:MAX_ENROLL])


@page
def add_all(ctx: Ctx) -> Response:
    load_campaign(ctx)
    with ctx.read() as conn:
        ids = account_contact_ids(conn, ctx.account_id)
    if not ids:
        return _tab(ctx, 409, Invalid("this account has no contacts yet: add or import some"))
    return _enroll(ctx, ids)


@page
def remove(ctx: Ctx) -> Response:
    campaign_id = ctx.params["campaign_id"]
    with (
        ctx.form_errors(lambda exc: _tab(ctx, exc.status, exc), missing=_CONTACTS),
        ctx.write() as conn,
    ):
        result = remove_contacts(conn, ctx.account_id, campaign_id, [ctx.field("contact_id")])
    flash = (
        "Removed from the campaign."
        if result["removed"]
        else "Taken out of the sequence: nothing more is sent to this contact from this "
        "campaign; what was sent stays in the report."
    )
    return ctx.redirect(campaign_path(campaign_id, "/contacts"), flash=flash)


routes = [
    route("/campaigns/{campaign_id}/contacts", contacts_tab, "GET", "POST"),
    route("/campaigns/{campaign_id}/contacts/all", add_all, "POST"),
    route("/campaigns/{campaign_id}/contacts/remove", remove, "POST"),
]
