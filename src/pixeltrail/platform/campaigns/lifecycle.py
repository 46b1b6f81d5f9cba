"""Enrolling contacts and moving a campaign through draft → active ⇄ paused (→ finished).

- launch: draft → active, from `start_at` (ISO 8601; without an offset it is read in the
  campaign's time zone; a past time means now; at most a year ahead). Refused without steps
  or without a contact in the sequence, or when click tracking lost its verified domain.
- pause: active → paused; resume: paused → active (same checks on tracking as launch).
  Pausing a paused campaign or resuming an active one changes nothing and is not an error,
  so a client can retry; every other move is a Conflict that says what to do instead.
- finished is set by the scheduler once every contact is through the sequence.
- Enrolling: contacts must be this account's (an unknown or foreign id answers 404 without
  naming any id, and nothing is enrolled); suppressed contacts are skipped and counted, as
  are contacts already enrolled, so importing a list never fails on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, func, insert, select, update

from pixeltrail.platform.campaigns.campaigns import Campaign, campaign_row, get_campaign
from pixeltrail.platform.campaigns.settings import check_tracking_usable
from pixeltrail.platform.campaigns.status import CampaignStatus, EnrollmentStatus
from pixeltrail.platform.errors import Conflict, Invalid, NotFound
from pixeltrail.platform.ids import now_ms
from pixeltrail.store.schema import campaign_steps, campaigns, contacts, enrollments, suppressions

MAX_START_AHEAD_MS = 366 * 24 * 3600 * 1000
_CHUNK = 500


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def enroll_contacts(
    conn: Connection, account_id: str, campaign_id: str, contact_ids: Sequence[str]
) -> dict[str, int]:
    """Put contacts in the sequence at step 1: {"enrolled", "already_enrolled", "suppressed"}."""
    row = campaign_row(conn, account_id, campaign_id, lock=True)
    if row.status == CampaignStatus.FINISHED:
        raise Conflict("this campaign is finished: create a new one for these contacts")
    ids = list(dict.fromkeys(contact_ids))
    emails: dict[str, str] = {}
    for chunk in _chunks(ids):
        found = conn.execute(
            select(contacts.c.id, contacts.c.email).where(
                contacts.c.account_id == account_id, contacts.c.id.in_(chunk)
            )
        )
        emails.update({r.id: r.email for r in found})
    if len(emails) != len(ids):
        missing = len(ids) - len(emails)
        raise NotFound(
            f"{missing} of these contacts {'does' if missing == 1 else 'do'} not exist; "
            "nothing was enrolled",
            "contact_ids",
        )
    suppressed: set[str] = set()
    already: set[str] = set()
    for chunk in _chunks(ids):
        suppressed.update(
            r.email
            for r in conn.execute(
                select(suppressions.c.email).where(
                    suppressions.c.account_id == account_id,
                    suppressions.c.email.in_([emails[i] for i in chunk]),
                )
            )
        )
        already.update(
            r.contact_id
            for r in conn.execute(
                select(enrollments.c.contact_id).where(
                    enrollments.c.campaign_id == campaign_id, enrollments.c.contact_id.in_(chunk)
                )
            )
        )
    skipped_suppressed = [i for i in ids if emails[i] in suppressed and i not in already]
    new = [i for i in ids if i not in already and emails[i] not in suppressed]
    added = now_ms()
    if new:
        conn.execute(
            insert(enrollments),
            [
                {
                    "campaign_id": campaign_id,
                    "contact_id": contact_id,
                    "status": EnrollmentStatus.ACTIVE,
                    "next_step": 1,
                    "added_at_ms": added,
                }
                for contact_id in new
            ],
        )
    return {
        "enrolled": len(new),
        "already_enrolled": len(already),
        "suppressed": len(skipped_suppressed),
    }


def parse_start_at(value: str | None, timezone: str, now: int) -> int:
    if value is None:
        return now
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise Invalid(
            "start_at is an ISO 8601 time, like 2026-12-01T09:00:00+01:00 (without an offset "
            "it is read in the campaign's time zone)",
            "start_at",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(timezone))
    at = int(when.timestamp() * 1000)
    if at > now + MAX_START_AHEAD_MS:
        raise Invalid("start_at is at most a year ahead", "start_at")
    return max(at, now)


def _refuse(row: Row[Any], verb: str) -> Conflict:
    state = {
        CampaignStatus.DRAFT: "it is a draft: launch it first",
        CampaignStatus.ACTIVE: "it is already active",
        CampaignStatus.PAUSED: "it is paused: resume it instead",
        CampaignStatus.FINISHED: "it is finished",
    }.get(row.status, f"it is {row.status}")
    return Conflict(f"cannot {verb} this campaign: {state}")


def _set_status(conn: Connection, campaign_id: str, status: CampaignStatus, **values: Any) -> None:
    conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id)
        .values(status=status, updated_at_ms=now_ms(), **values)
    )


def launch(
    conn: Connection, account_id: str, campaign_id: str, start_at: str | None = None
) -> Campaign:
    row = campaign_row(conn, account_id, campaign_id, lock=True)
    if row.status != CampaignStatus.DRAFT:
        raise _refuse(row, "launch")
    steps = conn.execute(
        select(func.count()).where(campaign_steps.c.campaign_id == campaign_id)
    ).scalar_one()
    if not steps:
        raise Conflict("add at least one step before launching", "steps")
    enrolled = conn.execute(
        select(func.count()).where(
            enrollments.c.campaign_id == campaign_id,
            enrollments.c.status == EnrollmentStatus.ACTIVE,
        )
    ).scalar_one()
    if not enrolled:
        raise Conflict(
            "enroll contacts before launching (POST /campaigns/{id}/contacts)", "contact_ids"
        )
    check_tracking_usable(conn, account_id, row)
    start = parse_start_at(start_at, row.schedule["timezone"], now_ms())
    _set_status(conn, campaign_id, CampaignStatus.ACTIVE, start_at_ms=start)
    return get_campaign(conn, account_id, campaign_id)


def pause(conn: Connection, account_id: str, campaign_id: str) -> Campaign:
    row = campaign_row(conn, account_id, campaign_id, lock=True)
    if row.status not in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
        raise _refuse(row, "pause")
    if row.status == CampaignStatus.ACTIVE:
        _set_status(conn, campaign_id, CampaignStatus.PAUSED)
    return get_campaign(conn, account_id, campaign_id)


def resume(conn: Connection, account_id: str, campaign_id: str) -> Campaign:
    row = campaign_row(conn, account_id, campaign_id, lock=True)
    if row.status not in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
        raise _refuse(row, "resume")
    if row.status == CampaignStatus.PAUSED:
        check_tracking_usable(conn, account_id, row)
        _set_status(conn, campaign_id, CampaignStatus.ACTIVE)
    return get_campaign(conn, account_id, campaign_id)
