"""/campaigns: create, read, change, enrol contacts, tracking settings, launch/pause/resume."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from pixeltrail.platform.campaigns.campaigns import (
    create_campaign,
    get_campaign,
    list_campaigns,
    update_campaign,
)
from pixeltrail.platform.campaigns.input import (
    CampaignIn,
    CampaignPatch,
    ContactIds,
    LaunchIn,
    SettingsPatch,
)
from pixeltrail.platform.campaigns.lifecycle import enroll_contacts, launch, pause, resume
from pixeltrail.platform.campaigns.settings import get_settings, update_settings
from pixeltrail.platform.reports.summary import campaign_summary
from pixeltrail.web.api.deps import AccountId, Conn
from pixeltrail.web.api.reports import Summary

router = APIRouter(tags=["campaigns"])


class ScheduleOut(BaseModel):
    timezone: str
    days: list[str]
    start_hour: int
    end_hour: int
    daily_cap: int | None


class SettingsOut(BaseModel):
    track_opens: bool
    track_clicks: bool
    track_text_links: bool
    tracking_domain_id: str | None
    stop_on_reply: bool = Field(
        description="A reply read from the mailbox's INBOX ends the contact's sequence "
        "(enrollment status replied): no later step is sent to them."
    )


class SettingsChangeOut(SettingsOut):
    applied_to_unscheduled: int = Field(
        description="Messages still to be scheduled, which will follow the new settings: "
        "pairs (enrolled contact whose enrollment is active, step at or after its next_step)."
    )
    scheduled_unchanged: int = Field(
        description="Messages already scheduled (status scheduled or sending), which keep "
        "the settings they were made with."
    )


class StepOut(BaseModel):
    position: int
    subject: str
    html: str
    text: str | None
    delay_days: int


class CampaignSummary(BaseModel):
    id: str
    name: str
    mailbox_id: str
    status: str
    schedule: ScheduleOut
    settings: SettingsOut
    start_at: str | None
    step_count: int
    contacts: dict[str, int]
    created_at: str
    updated_at: str


class CampaignOut(CampaignSummary):
    steps: list[StepOut]
    # The report summary, on GET /campaigns/{id}.
    report: Summary | None = None


class CampaignList(BaseModel):
    items: list[CampaignSummary]
    next_cursor: str | None


class EnrollOut(BaseModel):
    enrolled: int
    already_enrolled: int
    suppressed: int


@router.get("/campaigns", response_model=CampaignList)
def read_campaigns(
    conn: Conn,
    account: AccountId,
    cursor: str | None = None,
    limit: int | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    found, next_cursor = list_campaigns(conn, account, cursor, limit, status)
    return {"items": [c.as_record() for c in found], "next_cursor": next_cursor}


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
def add_campaign(body: CampaignIn, conn: Conn, account: AccountId) -> dict[str, Any]:
    return create_campaign(conn, account, body).as_record()


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def read_campaign(campaign_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    record = get_campaign(conn, account, campaign_id).as_record()
    record["report"] = campaign_summary(conn, account, campaign_id)
    return record


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut)
def patch_campaign(
    campaign_id: str, body: CampaignPatch, conn: Conn, account: AccountId
) -> dict[str, Any]:
    return update_campaign(conn, account, campaign_id, body).as_record()


@router.get("/campaigns/{campaign_id}/settings", response_model=SettingsOut)
def read_settings(campaign_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    return get_settings(conn, account, campaign_id)


@router.patch("/campaigns/{campaign_id}/settings", response_model=SettingsChangeOut)
def patch_settings(
    campaign_id: str, body: SettingsPatch, conn: Conn, account: AccountId
) -> dict[str, Any]:
    """Change tracking for outreach not yet scheduled; messages already scheduled keep theirs.

    `track_clicks: true` needs a verified custom tracking domain of the account (409 with what
    to do otherwise); without `tracking_domain_id`, the only verified one is used.
    `stop_on_reply: false` lets a contact's sequence go on after they reply.
    """
    changes = body.model_dump(exclude_unset=True)
    return update_settings(conn, account, campaign_id, changes).as_record()


@router.post("/campaigns/{campaign_id}/contacts", response_model=EnrollOut)
def add_contacts(
    campaign_id: str, body: ContactIds, conn: Conn, account: AccountId
) -> dict[str, int]:
    """Enrol contacts at step 1; suppressed and already enrolled ones are skipped and counted."""
    return enroll_contacts(conn, account, campaign_id, body.contact_ids)


@router.post("/campaigns/{campaign_id}/launch", response_model=CampaignOut)
def launch_campaign(
    campaign_id: str, conn: Conn, account: AccountId, body: LaunchIn | None = None
) -> dict[str, Any]:
    start_at = body.start_at if body is not None else None
    return launch(conn, account, campaign_id, start_at).as_record()


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignOut)
def pause_campaign(campaign_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    return pause(conn, account, campaign_id).as_record()


@router.post("/campaigns/{campaign_id}/resume", response_model=CampaignOut)
def resume_campaign(campaign_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    return resume(conn, account, campaign_id).as_record()
