"""The scheduler: turns due steps of active campaigns into messages with a send time.

It looks only a short horizon ahead, so a step stays "not yet scheduled" until shortly
before it is due and picks up setting changes made until then. Each message row carries a
snapshot of the tracking settings and tracking base it was scheduled with. A contact's next
step is scheduled only once the previous message to them was sent: its delay counts from
that send. Suppressed contacts leave every sequence.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select, update

from pixeltrail.config import Settings
from pixeltrail.platform.campaigns.sending_window import SendingWindow
from pixeltrail.platform.campaigns.status import CampaignStatus, EnrollmentStatus
from pixeltrail.platform.contacts.contacts import SUPPRESSED, with_suppression
from pixeltrail.platform.domains.domains import get_domain, tracking_base_url
from pixeltrail.platform.errors import PlatformError
from pixeltrail.platform.ids import now_ms
from pixeltrail.store.message_status import QUEUED, MessageStatus
from pixeltrail.store.schema import (
    accounts,
    campaign_steps,
    campaigns,
    contacts,
    enrollments,
    mailboxes,
    messages,
)
from pixeltrail.store.typed_rows import typed, typed_rows
from pixeltrail.tracking.tokens import new_message_id

log = logging.getLogger("pixeltrail.scheduler")

HORIZON_MS = 15 * 60 * 1000
DAY_MS = 86_400_000
# A scheduled message whose time passed this long ago (campaign paused, worker down) is
# planned again inside the window rather than sent at an odd hour.
STALE_MS = 10 * 60 * 1000
# A suppressed contact's sequence ends with the suppression's reason (manual: stopped).
_ENDED_BY = {"bounced": EnrollmentStatus.BOUNCED, "unsubscribed": EnrollmentStatus.UNSUBSCRIBED}


class _Active(NamedTuple):
    """An active campaign, as the scheduler finds it."""

    id: str
    schedule: dict[str, Any] | None
    account_timezone: str


class _Campaign(NamedTuple):
    """The campaign as it plans messages (read again under its row lock)."""

    id: str
    account_id: str
    status: str
    mailbox_id: str
    tracking_domain_id: str | None
    start_at_ms: int | None
    track_opens: bool
    track_clicks: bool
    track_text_links: bool


class _Step(NamedTuple):
    id: str
    delay_days: int


class _Mailbox(NamedTuple):
    id: str
    daily_limit: int


class _Enrolled(NamedTuple):
    """A contact active in the campaign: its next step, tracking choice and suppression."""

    contact_id: str
    next_step: int
    do_not_track: bool
    suppressed: str | None


class _LastSent(NamedTuple):
    contact_id: str
    at: int | None


@dataclass
class _Caps:
    """Messages counted per (mailbox or campaign, local day) while scheduling."""

    conn: Connection
    counts: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def used(self, kind: str, key: str, day: tuple[int, int]) -> int:
        slot = (kind, key, day[0])
        if slot not in self.counts:
            column = messages.c.mailbox_id if kind == "mailbox" else messages.c.campaign_id
            self.counts[slot] = int(
                self.conn.execute(
                    select(func.count())
                    .select_from(messages)
                    .where(
                        column == key,
                        messages.c.send_at_ms >= day[0],
                        messages.c.send_at_ms < day[1],
                        messages.c.status.in_((*QUEUED, MessageStatus.SENT)),
                    )
                ).scalar_one()
            )
        return self.counts[slot]

    def take(self, kind: str, key: str, day: tuple[int, int]) -> None:
        self.counts[(kind, key, day[0])] = self.used(kind, key, day) + 1


def tracking_base(conn: Connection, campaign: _Campaign, settings: Settings) -> str:
    """Where this campaign's links and pixel point: its served domain, else the instance."""
    if campaign.tracking_domain_id is not None:
        try:
            domain = get_domain(conn, campaign.account_id, campaign.tracking_domain_id)
            return tracking_base_url(domain, settings)
        except PlatformError:
            log.warning("campaign %s: its tracking domain is gone or unverified", campaign.id)
    return tracking_base_url(None, settings)


def _send_time(
    window: SendingWindow, earliest: int, caps: _Caps, mailbox: _Mailbox, campaign_id: str
) -> int:
    at = window.next_open(earliest)
    for _ in range(60):  # at most two months of full days ahead
        day = window.day_of(at)
        full = caps.used("mailbox", mailbox.id, day) >= mailbox.daily_limit or (
            window.daily_cap is not None
            and caps.used("campaign", campaign_id, day) >= window.daily_cap
        )
        if not full:
            return at
        at = window.next_open(day[1])
    return at


def _replan_stale(conn: Connection, campaign: _Active, window: SendingWindow, now: int) -> None:
    stale = conn.execute(
        select(messages.c.id).where(
            messages.c.campaign_id == campaign.id,
            messages.c.status == MessageStatus.SCHEDULED,
            messages.c.send_at_ms < now - STALE_MS,
        )
    ).all()
    if stale:
        conn.execute(
            update(messages)
            .where(messages.c.id.in_([r.id for r in stale]))
            .values(send_at_ms=window.next_open(now))
        )


def schedule_due(conn: Connection, settings: Settings, now: int | None = None) -> int:
    """Schedule every step due within the horizon; returns how many messages were created."""
    now = now_ms() if now is None else now
    created = 0
    caps = _Caps(conn)
    active = typed_rows(
        _Active,
        conn.execute(
            select(
                campaigns.c.id,
                campaigns.c.schedule,
                accounts.c.timezone.label("account_timezone"),
            )
            .join(accounts, accounts.c.id == campaigns.c.account_id)
            .where(campaigns.c.status == CampaignStatus.ACTIVE)
        ),
    )
    for campaign in active:
        window = SendingWindow.from_schedule(campaign.schedule or {}, campaign.account_timezone)
        _replan_stale(conn, campaign, window, now)
        created += _schedule_campaign(conn, settings, campaign.id, window, caps, now)
    return created


def _schedule_campaign(
    conn: Connection,
    settings: Settings,
    campaign_id: str,
    window: SendingWindow,
    caps: _Caps,
    now: int,
) -> int:
    # The row lock settings changes take (FOR UPDATE on PostgreSQL; SQLite has one writer):
    # the settings snapshot is the current one and their counts of unscheduled steps exact.
    campaign = typed(
        _Campaign,
        conn.execute(
            select(*(campaigns.c[name] for name in _Campaign._fields))
            .where(campaigns.c.id == campaign_id)
            .with_for_update()
        ).one(),
    )
    if campaign.status != CampaignStatus.ACTIVE:
        return 0
    steps = typed_rows(
        _Step,
        conn.execute(
            select(campaign_steps.c.id, campaign_steps.c.delay_days)
            .where(campaign_steps.c.campaign_id == campaign.id)
            .order_by(campaign_steps.c.position)
        ),
    )
    mailbox = typed(
        _Mailbox,
        conn.execute(
            select(mailboxes.c.id, mailboxes.c.daily_limit).where(
                mailboxes.c.id == campaign.mailbox_id
            )
        ).one(),
    )
    base = tracking_base(conn, campaign, settings)
    start = max(campaign.start_at_ms or now, 0)
    pending = {
        r.contact_id
        for r in conn.execute(
            select(messages.c.contact_id).where(
                messages.c.campaign_id == campaign.id, messages.c.status.in_(QUEUED)
            )
        )
    }
    last_sent: dict[str, int] = defaultdict(int)
    for r in typed_rows(
        _LastSent,
        conn.execute(
            select(messages.c.contact_id, func.max(messages.c.sent_at_ms).label("at"))
            .where(messages.c.campaign_id == campaign.id, messages.c.status == MessageStatus.SENT)
            .group_by(messages.c.contact_id)
        ),
    ):
        last_sent[r.contact_id] = r.at or 0
    rows = typed_rows(
        _Enrolled,
        conn.execute(
            select(
                enrollments.c.contact_id,
                enrollments.c.next_step,
                contacts.c.do_not_track,
                SUPPRESSED,
            )
            .select_from(
                with_suppression(
                    enrollments.join(contacts, contacts.c.id == enrollments.c.contact_id)
                )
            )
            .where(
                enrollments.c.campaign_id == campaign.id,
                enrollments.c.status == EnrollmentStatus.ACTIVE,
            )
        ),
    )
    created = 0
    for row in rows:
        if row.contact_id in pending:
            continue
        if row.suppressed is not None:
            ended = _ENDED_BY.get(row.suppressed, EnrollmentStatus.STOPPED)
            _set_enrollment(conn, campaign.id, row.contact_id, status=ended)
            continue
        if row.next_step > len(steps):
            _set_enrollment(conn, campaign.id, row.contact_id, status=EnrollmentStatus.FINISHED)
            continue
        step = steps[row.next_step - 1]
        previous = start if row.next_step == 1 else last_sent.get(row.contact_id, 0)
        if not previous:
            continue  # the previous step failed or was never sent: nothing to follow up
        earliest = max(previous + step.delay_days * DAY_MS, now)
        at = _send_time(window, earliest, caps, mailbox, campaign.id)
        if at > now + HORIZON_MS:
            continue
        day = window.day_of(at)
        caps.take("mailbox", mailbox.id, day)
        caps.take("campaign", campaign.id, day)
        tracked = not row.do_not_track
        conn.execute(
            messages.insert().values(
                id=new_message_id(),
                account_id=campaign.account_id,
                campaign_id=campaign.id,
                step_id=step.id,
                contact_id=row.contact_id,
                mailbox_id=mailbox.id,
                status=MessageStatus.SCHEDULED,
                send_at_ms=at,
                track_opens=campaign.track_opens and tracked,
                track_clicks=campaign.track_clicks and tracked,
                track_text_links=campaign.track_text_links and tracked,
                tracking_base_url=base,
                attempts=0,
                created_at_ms=now,
            )
        )
        _set_enrollment(conn, campaign.id, row.contact_id, next_step=row.next_step + 1)
        created += 1
    return created


def _set_enrollment(conn: Connection, campaign_id: str, contact_id: str, **values: Any) -> None:
    conn.execute(
        update(enrollments)
        .where(enrollments.c.campaign_id == campaign_id, enrollments.c.contact_id == contact_id)
        .values(**values)
    )


def finish_campaigns(conn: Connection) -> int:
    """Active campaigns whose every contact is finished or stopped become finished."""
    done = conn.execute(
        select(campaigns.c.id).where(
            campaigns.c.status == CampaignStatus.ACTIVE,
            ~select(enrollments.c.contact_id)
            .where(
                enrollments.c.campaign_id == campaigns.c.id,
                enrollments.c.status == EnrollmentStatus.ACTIVE,
            )
            .exists(),
            ~select(messages.c.id)
            .where(messages.c.campaign_id == campaigns.c.id, messages.c.status.in_(QUEUED))
            .exists(),
        )
    ).all()
    for row in done:
        conn.execute(
            update(campaigns).where(campaigns.c.id == row.id).values(status=CampaignStatus.FINISHED)
        )
    return len(done)
