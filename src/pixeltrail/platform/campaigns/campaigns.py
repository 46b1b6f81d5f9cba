"""Campaigns: a mailbox, a sequence of steps, a sending schedule, and their status.

What can change when:
- `name`: always;
- `schedule`: until the campaign is finished (messages already scheduled keep their times);
- `mailbox_id` and `steps`: in draft or paused only. Editing a step also changes messages of
  it that are scheduled but not sent (content is rendered when sending: that is how a typo is
  fixed); a step that already has messages cannot be removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, func, insert, select, update

from pixeltrail.platform.accounts.accounts import check_timezone, get_account
from pixeltrail.platform.campaigns.input import DAYS, CampaignIn, CampaignPatch, ScheduleIn
from pixeltrail.platform.campaigns.sequence import Step, check_steps, load_steps, write_steps
from pixeltrail.platform.campaigns.status import CampaignStatus, EnrollmentStatus
from pixeltrail.platform.errors import Conflict, Invalid, NotFound
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.platform.mail.mailboxes import plain_text, require_mailbox
from pixeltrail.platform.paging import page
from pixeltrail.store.schema import campaign_steps, campaigns, enrollments


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    mailbox_id: str
    status: str
    schedule: dict[str, Any]
    settings: dict[str, Any]
    start_at_ms: int | None
    created_at_ms: int
    updated_at_ms: int
    step_count: int
    contacts: dict[str, int]
    steps: tuple[Step, ...] | None = None  # None when not loaded (lists)

    def as_record(self) -> dict[str, Any]:
        zone = ZoneInfo(self.schedule["timezone"])
        record: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "mailbox_id": self.mailbox_id,
            "status": self.status,
            "schedule": self.schedule,
            "settings": self.settings,
            "start_at": None
            if self.start_at_ms is None
            else datetime.fromtimestamp(self.start_at_ms / 1000, zone).isoformat(),
            "step_count": self.step_count,
            "contacts": self.contacts,
            "created_at": _utc(self.created_at_ms),
            "updated_at": _utc(self.updated_at_ms),
        }
        if self.steps is not None:
            record["steps"] = [step.as_record() for step in self.steps]
        return record


def _utc(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def settings_of(row: Row[Any]) -> dict[str, Any]:
    return {
        "track_opens": row.track_opens,
        "track_clicks": row.track_clicks,
        "track_text_links": row.track_text_links,
        "tracking_domain_id": row.tracking_domain_id,
        "stop_on_reply": row.stop_on_reply,
    }


def campaign_row(
    conn: Connection, account_id: str, campaign_id: str, *, lock: bool = False
) -> Row[Any]:
    """The campaign's row, NotFound if not in this account; `lock` holds it until commit
    (SELECT ... FOR UPDATE on PostgreSQL; SQLite writers already hold the database lock)."""
    query = select(campaigns).where(
        campaigns.c.id == campaign_id, campaigns.c.account_id == account_id
    )
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound("no such campaign")
    return row


def default_schedule(timezone: str) -> dict[str, Any]:
    return {
        "timezone": timezone,
        "days": list(DAYS),
        "start_hour": 0,
        "end_hour": 24,
        "daily_cap": None,
    }


def _schedule(given: ScheduleIn, current: dict[str, Any], account_tz: str) -> dict[str, Any]:
    """`current` with the fields `given` sets; a null field goes back to its default."""
    defaults = default_schedule(account_tz)
    merged = dict(current)
    for key, value in given.model_dump(exclude_unset=True).items():
        merged[key] = defaults[key] if value is None else value
    check_timezone(merged["timezone"], "schedule.timezone")
    merged["days"] = [day for day in DAYS if day in merged["days"]]
    if merged["start_hour"] >= merged["end_hour"]:
        raise Invalid(
            "schedule.end_hour: the sending window ends after it starts (0 <= start < end <= 24)",
            "schedule.end_hour",
        )
    return merged


def create_campaign(conn: Connection, account_id: str, given: CampaignIn) -> Campaign:
    """A new draft campaign; open tracking follows the account's default, clicks start off."""
    account = get_account(conn, account_id)
    require_mailbox(conn, account_id, given.mailbox_id, "mailbox_id")
    check_steps(given.steps)
    schedule = _schedule(given.schedule, default_schedule(account.timezone), account.timezone)
    campaign_id = new_id("cmp")
    created = now_ms()
    conn.execute(
        insert(campaigns).values(
            id=campaign_id,
            account_id=account_id,
            name=plain_text(given.name, "name"),
            mailbox_id=given.mailbox_id,
            status=CampaignStatus.DRAFT,
            schedule=schedule,
            track_opens=account.default_track_opens,
            track_clicks=False,
            track_text_links=True,
            tracking_domain_id=None,
            stop_on_reply=given.stop_on_reply,
            start_at_ms=None,
            created_at_ms=created,
            updated_at_ms=created,
        )
    )
    write_steps(conn, campaign_id, given.steps)
    return get_campaign(conn, account_id, campaign_id)


def update_campaign(
    conn: Connection, account_id: str, campaign_id: str, given: CampaignPatch
) -> Campaign:
    row = campaign_row(conn, account_id, campaign_id, lock=True)
    changes = given.model_dump(exclude_unset=True)
    for field in changes:
        if changes[field] is None:
            raise Invalid(f"{field} cannot be null", field)
    if row.status == CampaignStatus.FINISHED and set(changes) - {"name"}:
        raise Conflict("this campaign is finished: only its name can change")
    if row.status == CampaignStatus.ACTIVE and {"mailbox_id", "steps"} & set(changes):
        field = "steps" if "steps" in changes else "mailbox_id"
        raise Conflict(f"pause the campaign before changing its {field}", field)
    values: dict[str, Any] = {"updated_at_ms": now_ms()}
    if given.name is not None:
        values["name"] = plain_text(given.name, "name")
    if given.mailbox_id is not None:
        require_mailbox(conn, account_id, given.mailbox_id, "mailbox_id")
        values["mailbox_id"] = given.mailbox_id
    if given.schedule is not None:
        account_tz = get_account(conn, account_id).timezone
        values["schedule"] = _schedule(given.schedule, row.schedule, account_tz)
    if given.steps is not None:
        check_steps(given.steps)
        write_steps(conn, campaign_id, given.steps)
    conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))
    return get_campaign(conn, account_id, campaign_id)


def _counts(conn: Connection, campaign_ids: Iterable[str]) -> dict[str, tuple[int, dict[str, int]]]:
    """Per campaign: how many steps, and enrolled contacts by enrollment status (and total)."""
    ids = list(campaign_ids)
    found: dict[str, tuple[int, dict[str, int]]] = {
        i: (0, {"total": 0, EnrollmentStatus.ACTIVE: 0}) for i in ids
    }
    step_counts = conn.execute(
        select(campaign_steps.c.campaign_id, func.count())
        .where(campaign_steps.c.campaign_id.in_(ids))
        .group_by(campaign_steps.c.campaign_id)
    )
    for campaign_id, count in step_counts:
        found[campaign_id] = (count, found[campaign_id][1])
    enrolled = conn.execute(
        select(enrollments.c.campaign_id, enrollments.c.status, func.count())
        .where(enrollments.c.campaign_id.in_(ids))
        .group_by(enrollments.c.campaign_id, enrollments.c.status)
    )
    for campaign_id, status, count in enrolled:
        contacts = found[campaign_id][1]
        contacts[status] = count
        contacts["total"] += count
    return found


def _campaign(
    row: Row[Any], counts: tuple[int, dict[str, int]], steps: tuple[Step, ...] | None = None
) -> Campaign:
    return Campaign(
        id=row.id,
        name=row.name,
        mailbox_id=row.mailbox_id,
        status=row.status,
        schedule=row.schedule,
        settings=settings_of(row),
        start_at_ms=row.start_at_ms,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        step_count=counts[0],
        contacts=counts[1],
        steps=steps,
    )


def get_campaign(conn: Connection, account_id: str, campaign_id: str) -> Campaign:
    row = campaign_row(conn, account_id, campaign_id)
    return _campaign(row, _counts(conn, [row.id])[row.id], load_steps(conn, row.id))


def list_campaigns(
    conn: Connection,
    account_id: str,
    cursor: str | None = None,
    limit: int | None = None,
    status: str | None = None,
) -> tuple[list[Campaign], str | None]:
    """A page of the account's campaigns, oldest first, without their steps' contents."""
    query = select(campaigns).where(campaigns.c.account_id == account_id)
    if status is not None:
        if status not in set(CampaignStatus):
            raise Invalid(f"status is one of {', '.join(CampaignStatus)}", "status")
        query = query.where(campaigns.c.status == status)
    rows, next_cursor = page(conn, query, campaigns, cursor, limit)
    counts = _counts(conn, [row.id for row in rows])
    return [_campaign(row, counts[row.id]) for row in rows], next_cursor
