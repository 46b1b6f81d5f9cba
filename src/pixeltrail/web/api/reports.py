"""GET /campaigns/{id}/report[...]: a campaign's summary, contacts, steps, links and timeline.

The numbers and their definitions are platform/reports/summary.py's; another account's campaign id
answers 404 exactly like a missing one.
"""

from __future__ import annotations

import io
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from pixeltrail.platform.reports.activity import link_report, timeline
from pixeltrail.platform.reports.contacts import contacts_page, write_contacts_csv
from pixeltrail.platform.reports.steps import step_report
from pixeltrail.platform.reports.summary import campaign_summary
from pixeltrail.web.api.deps import AccountId, Conn

router = APIRouter(tags=["reports"])


class Unique(BaseModel):
    unique: int
    total: int


class ReasonCount(BaseModel):
    classification: str
    reason: str
    count: int


class Machine(Unique):
    by_classification: dict[str, int]
    by_reason: list[ReasonCount]


class ProxyOpens(Unique):
    by_reason: list[ReasonCount]


class HumanOpens(Unique):
    proxy_open: ProxyOpens


class Opens(BaseModel):
    human: HumanOpens
    machine: Machine


class Clicks(BaseModel):
    human: Unique
    machine: Machine


class Rates(BaseModel):
    open: float | None
    click: float | None
    click_to_open: float | None
    machine_open: float | None
    machine_click: float | None
    bounce: float | None
    unsubscribe: float | None
    reply: float | None
    read: float | None


class Summary(BaseModel):
    campaign_id: str
    name: str
    sent: int
    recipients: int
    failed: int
    bounced: int
    unsubscribed: int
    replied: int  # people who replied (auto-replies never count)
    read: int  # people who opened as humans or replied
    messages: dict[str, int]
    opens: Opens
    clicks: Clicks
    rates: Rates


class Click(BaseModel):
    message_id: str
    link: int | None
    destination: str | None
    at: str


class MachineEvent(Click):
    kind: Literal["open", "click"]
    classification: str
    reason: str
    user_agent: str  # as received: the reason often rests on it


class Reply(BaseModel):
    message_id: str | None  # ours it answers
    at: str
    from_email: str
    subject: str
    text: str  # the first 2 KB, as the sender wrote it


class ContactRow(BaseModel):
    contact_id: str
    email: str
    suppressed: str | None
    first_opened_at: str | None
    last_opened_at: str | None
    open_count: int
    proxy_open_count: int
    click_count: int
    machine_open_count: int
    machine_click_count: int
    clicks: list[Click]
    machine_events: list[MachineEvent]
    replied_at: str | None
    reply_count: int
    read_by_reply: bool
    sequence_status: str | None
    replies: list[Reply]


class ContactPage(BaseModel):
    items: list[ContactRow]
    next_cursor: str | None


class StepRow(BaseModel):
    step: int
    sent: int
    opened: int
    clicked: int
    replied: int
    bounced: int
    unsubscribed: int


class StepList(BaseModel):
    items: list[StepRow]


class LinkRow(BaseModel):
    destination: str | None
    unique_clicks: int
    total_clicks: int
    machine_unique_clicks: int
    machine_clicks: int


class LinkList(BaseModel):
    items: list[LinkRow]


class Bucket(BaseModel):
    start: str
    opens: int
    machine_opens: int
    clicks: int
    machine_clicks: int


class Timeline(BaseModel):
    granularity: Literal["hour", "day"]
    timezone: str
    items: list[Bucket]


@router.get("/campaigns/{campaign_id}/report", response_model=Summary)
def read_summary(campaign_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    return campaign_summary(conn, account, campaign_id)


@router.get("/campaigns/{campaign_id}/report/contacts", response_model=ContactPage)
def read_contacts(
    campaign_id: str,
    conn: Conn,
    account: AccountId,
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    items, next_cursor = contacts_page(conn, account, campaign_id, cursor, limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/campaigns/{campaign_id}/report/contacts.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def download_contacts(campaign_id: str, conn: Conn, account: AccountId) -> Response:
    out = io.StringIO()
    write_contacts_csv(conn, account, campaign_id, out)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}-contacts.csv"'},
    )


@router.get("/campaigns/{campaign_id}/report/steps", response_model=StepList)
def read_steps(campaign_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    return {"items": step_report(conn, account, campaign_id)}


@router.get("/campaigns/{campaign_id}/report/links", response_model=LinkList)
def read_links(campaign_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    return {"items": link_report(conn, account, campaign_id)}


@router.get("/campaigns/{campaign_id}/report/timeline", response_model=Timeline)
def read_timeline(
    campaign_id: str,
    conn: Conn,
    account: AccountId,
    granularity: str = "day",
    tz: str | None = None,
) -> dict[str, Any]:
    return timeline(conn, account, campaign_id, granularity, tz)
