"""A campaign's tracking settings and whether a reply ends a sequence, and the rules for changing
them.

- `track_opens` starts as the account's `default_track_opens`; `track_clicks` starts off;
  `track_text_links` starts on (it only matters once clicks are tracked, and then plain-text
  links deserve the same treatment as HTML ones).
- `stop_on_reply` starts on: a reply read from the mailbox's INBOX ends the contact's sequence
  (enrollment `replied`). Changing it affects replies read afterwards; sequences already
  ended by a reply stay ended.
- Click tracking needs a verified custom tracking domain of the account. Switching it on
  without `tracking_domain_id` picks the account's verified domain if there is exactly one.
  A `tracking_domain_id` given is always checked: this account's, and verified (it also
  carries the open pixel). `tracking_domain_id: null` (this server's own address) while
  clicks stay or go on is refused, never replaced by a domain. Switching clicks off is
  always allowed.
- A change applies to outreach not yet scheduled. Messages already scheduled keep the
  settings they were made with (their own `track_*` columns are never touched). The answer
  counts both:
  `scheduled_unchanged` = messages of the campaign with status `scheduled` (or `sending`:
  claimed by a worker, not sent yet);
  `applied_to_unscheduled` = pairs (enrollment with status `active`, step with
  `position >= enrollments.next_step`), i.e. every message still to be scheduled for a contact
  still in the sequence, whatever its day. Contacts marked do-not-track are counted too (the
  sender sends them untracked whatever the campaign says).
- The campaign row is locked while changing (FOR UPDATE): a scheduler that takes the same lock
  before making messages cannot slip between the counts and the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, func, select, update

from pixeltrail.platform.campaigns.campaigns import campaign_row, settings_of
from pixeltrail.platform.campaigns.status import CampaignStatus, EnrollmentStatus
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.errors import Conflict, Invalid, NotFound
from pixeltrail.platform.ids import now_ms
from pixeltrail.store.message_status import QUEUED
from pixeltrail.store.schema import (
    campaign_steps,
    campaigns,
    enrollments,
    messages,
    tracking_domains,
)

CLICKS_NEED_DOMAIN = (
    "click tracking needs a verified custom tracking domain: add one under /tracking-domains "
    "and verify its CNAME"
)
CLICKS_NEED_OWN_DOMAIN = (
    "click tracking needs a verified custom tracking domain, not this server's own address: "
    "name one in tracking_domain_id, or switch track_clicks off"
)
_FLAGS = ("track_opens", "track_clicks", "track_text_links", "stop_on_reply")


@dataclass(frozen=True)
class SettingsChange:
    settings: dict[str, Any]
    applied_to_unscheduled: int
    scheduled_unchanged: int

    def as_record(self) -> dict[str, Any]:
        return {
            **self.settings,
            "applied_to_unscheduled": self.applied_to_unscheduled,
            "scheduled_unchanged": self.scheduled_unchanged,
        }


def get_settings(conn: Connection, account_id: str, campaign_id: str) -> dict[str, Any]:
    return settings_of(campaign_row(conn, account_id, campaign_id))


def _verified_domain(conn: Connection, account_id: str, domain_id: str) -> str:
    row = conn.execute(
        select(tracking_domains.c.hostname, tracking_domains.c.status).where(
            tracking_domains.c.id == domain_id, tracking_domains.c.account_id == account_id
        )
    ).first()
    if row is None:
        raise NotFound("no such tracking domain", "tracking_domain_id")
    if row.status != DomainStatus.VERIFIED:
        raise Conflict(
            f"tracking domain {row.hostname} is {row.status}, not verified: point its CNAME as "
            "shown under /tracking-domains and verify it first",
            "tracking_domain_id",
        )
    return domain_id


def _only_verified_domain(conn: Connection, account_id: str) -> str:
    ids = conn.execute(
        select(tracking_domains.c.id)
        .where(
            tracking_domains.c.account_id == account_id,
            tracking_domains.c.status == DomainStatus.VERIFIED,
        )
        .limit(2)
    ).all()
    if not ids:
        raise Conflict(CLICKS_NEED_DOMAIN, "track_clicks")
    if len(ids) > 1:
        raise Conflict(
            "several tracking domains are verified: choose one with tracking_domain_id",
            "tracking_domain_id",
        )
    return str(ids[0].id)


def check_tracking_usable(conn: Connection, account_id: str, row: Row[Any]) -> None:
    """Conflict if the campaign tracks clicks through a domain that is no longer verified."""
    if row.tracking_domain_id is not None:
        _verified_domain(conn, account_id, row.tracking_domain_id)
    elif row.track_clicks:
        raise Conflict(CLICKS_NEED_DOMAIN, "track_clicks")


def unscheduled_pairs(conn: Connection, campaign_id: str) -> int:
    """(active enrollment, step at or after its next_step) pairs: messages still to schedule."""
    query = (
        select(func.count())
        .select_from(enrollments)
        .join(
            campaign_steps,
            and_(
                campaign_steps.c.campaign_id == enrollments.c.campaign_id,
                campaign_steps.c.position >= enrollments.c.next_step,
            ),
        )
        .where(
            enrollments.c.campaign_id == campaign_id,
            enrollments.c.status == EnrollmentStatus.ACTIVE,
        )
    )
    return int(conn.execute(query).scalar_one())


def scheduled_messages(conn: Connection, campaign_id: str) -> int:
    query = select(func.count()).where(
        messages.c.campaign_id == campaign_id, messages.c.status.in_(QUEUED)
    )
    return int(conn.execute(query).scalar_one())


def update_settings(
    conn: Connection, account_id: str, campaign_id: str, changes: Mapping[str, Any]
) -> SettingsChange:
    """Apply `changes` (any of the five settings) to outreach not yet scheduled."""
    row = campaign_row(conn, account_id, campaign_id, lock=True)
    if row.status == CampaignStatus.FINISHED:
        raise Conflict("this campaign is finished: its settings stay as they were when it ran")
    merged = settings_of(row)
    for field, value in changes.items():
        if field in _FLAGS:
            if not isinstance(value, bool):
                raise Invalid(f"{field} is true or false", field)
        elif field == "tracking_domain_id":
            if value is not None and not isinstance(value, str):
                raise Invalid("tracking_domain_id is a tracking domain id or null", field)
        else:
            raise Invalid(f"unknown field {field!r}", field)
        merged[field] = value
    if changes.get("tracking_domain_id") is not None:
        _verified_domain(conn, account_id, merged["tracking_domain_id"])
    if merged["track_clicks"] and merged["tracking_domain_id"] is None:
        if "tracking_domain_id" in changes or changes.get("track_clicks") is not True:
            # This server's own address was chosen: refused, never swapped for a domain.
            raise Conflict(CLICKS_NEED_OWN_DOMAIN, "tracking_domain_id")
        merged["tracking_domain_id"] = _only_verified_domain(conn, account_id)
    conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id)
        .values(**merged, updated_at_ms=now_ms())
    )
    return SettingsChange(
        merged, unscheduled_pairs(conn, campaign_id), scheduled_messages(conn, campaign_id)
    )
