"""Campaign reports: the summary, links and timeline, with people and machines apart.

Definitions (the README's "Campaign reports" section says the same):

- **sent**: messages of the campaign with status `sent` or `bounced` (it went out, then a bounce
  came back); **recipients**: distinct contacts with such a message. **failed**: messages the
  sender gave up on (status `failed`: a permanent refusal, or temporary errors until the last
  attempt).
- **bounced**: distinct contacts of the campaign whose address is on the account's suppression
  list as `bounced`, added at or after a message of this campaign was created for them (the
  sender does that when a server refuses an address with a 5xx). **unsubscribed**: the same
  with reason `unsubscribed`. Suppressions are per account, not per campaign: an address that
  bounces or unsubscribes later, from another campaign, counts here too.
- **replied**: distinct contacts with an inbound message of kind `reply` matched to the campaign
  (auto-replies never count); **read**: distinct contacts who opened as humans or replied (a
  reply proves the message was read, pixel or not).
- **opens**: "human" opens are those classified `human` or `proxy_open` (a real open fetched
  through Gmail's or Yahoo's image proxy: counted, and also reported apart as `proxy_open`).
  Every other open (`apple_mpp`, `scanner`, `bot`) is a machine's, counted by classification
  and by reason. **clicks**: "human" clicks are those classified `human`; the rest are
  machines'. The honeypot link is never a destination in the link report. Reasons are counted
  without their per-event details (addresses, seconds: see report_aggregates.reason_label).
- **unique** counts distinct contacts (a contact with several messages of a sequence counts
  once); **total** counts events. Rates are unique contacts over recipients (for a one-step
  campaign, recipients = sent; click_to_open is unique clickers over unique openers), rounded
  to 4 places, null when the denominator is 0.
- Verdicts can change after the fact (a honeypot click condemns the clicks around it): the
  numbers always follow the current verdicts (see store/report_aggregates.py).
- Times are ISO 8601 UTC; timeline buckets are hours or days of the account's time zone (or
  the one asked for), DST included: a bucket starts at a local time and says its offset.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, exists, func, select

from pixeltrail.platform.errors import NotFound
from pixeltrail.platform.reports.replies import replied_and_read
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.report_aggregates import reason_label
from pixeltrail.store.schema import (
    accounts,
    campaigns,
    contacts,
    messages,
    report_campaigns,
    report_reasons,
    suppressions,
)
from pixeltrail.store.typed_rows import typed, typed_rows
from pixeltrail.tracking.hits import Classification

RATE_PLACES = 4
# A message that bounced went out first: it counts as sent.
WENT_OUT = (MessageStatus.SENT, MessageStatus.BOUNCED)
# (kind of event, classification, reason label, count), as report_reasons gives them.
ReasonRow = tuple[str, str, str, int]


class ReportedCampaign(NamedTuple):
    id: str
    name: str
    timezone: str  # the account's


class _StatusCount(NamedTuple):
    status: str
    messages: int


def iso_utc(ms: int | None) -> str | None:
    """UTC epoch milliseconds as ISO 8601 with a Z (2026-01-31T09:30:00.000Z)."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def campaign_of(conn: Connection, account_id: str, campaign_id: str) -> ReportedCampaign:
    """The campaign's id, name and account time zone; NotFound unless it is this account's
    (another account's campaign answers exactly like a missing one)."""
    row = conn.execute(
        select(campaigns.c.id, campaigns.c.name, accounts.c.timezone)
        .join(accounts, accounts.c.id == campaigns.c.account_id)
        .where(campaigns.c.id == campaign_id, campaigns.c.account_id == account_id)
    ).first()
    if row is None:
        raise NotFound("no such campaign")
    return typed(ReportedCampaign, row)


def count_by_reason(rows: list[ReasonRow]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Counts per classification, and per classification and reason label (largest first)."""
    by_class: Counter[str] = Counter()
    by_label: Counter[tuple[str, str]] = Counter()
    for _, classification, reason, count in rows:
        by_class[classification] += count
        by_label[(classification, reason_label(reason))] += count
    ordered = sorted(by_label.items(), key=lambda item: (-item[1], item[0]))
    return dict(sorted(by_class.items())), [
        {"classification": c, "reason": r, "count": n} for (c, r), n in ordered if n
    ]


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, RATE_PLACES)


def _message_counts(conn: Connection, campaign_id: str) -> tuple[dict[str, int], int]:
    """Messages by status, and how many contacts were sent one (bounced ones included)."""
    m = messages.c
    query = (
        select(
            m.status,
            func.count().label("messages"),
        )
        .where(m.campaign_id == campaign_id)
        .group_by(m.status)
    )
    by_status = {}
    for row in typed_rows(_StatusCount, conn.execute(query)):
        by_status[row.status] = row.messages
    recipients = conn.execute(
        select(func.count(func.distinct(m.contact_id))).where(
            m.campaign_id == campaign_id, m.status.in_(WENT_OUT)
        )
    ).scalar_one()
    return by_status, int(recipients)


def _suppressed(conn: Connection, account_id: str, campaign_id: str) -> dict[str, int]:
    """Contacts of the campaign suppressed (per reason) after a message was made for them."""
    made_before = exists().where(
        messages.c.campaign_id == campaign_id,
        messages.c.contact_id == contacts.c.id,
        messages.c.created_at_ms <= suppressions.c.created_at_ms,
    )
    query = (
        select(suppressions.c.reason, func.count())
        .select_from(suppressions)
        .join(
            contacts,
            and_(
                contacts.c.account_id == suppressions.c.account_id,
                contacts.c.email == suppressions.c.email,
            ),
        )
        .where(
            suppressions.c.account_id == account_id,
            suppressions.c.reason.in_(("bounced", "unsubscribed")),
            made_before,
        )
        .group_by(suppressions.c.reason)
    )
    return dict(conn.execute(query).all())


def _activity(conn: Connection, campaign_id: str) -> dict[str, int]:
    row = conn.execute(
        select(report_campaigns).where(report_campaigns.c.campaign_id == campaign_id)
    ).first()
    if row is None:
        return Counter()
    return {k: v for k, v in row._mapping.items() if k != "campaign_id"}


def _reasons(conn: Connection, campaign_id: str) -> list[ReasonRow]:
    rr = report_reasons.c
    query = select(rr.kind, rr.classification, rr.reason, rr.events).where(
        rr.campaign_id == campaign_id
    )
    return [(kind, c, reason, int(n)) for kind, c, reason, n in conn.execute(query)]


def _machine(a: dict[str, int], field: str, rows: list[ReasonRow]) -> dict[str, Any]:
    classes, reasons = count_by_reason(rows)
    return {
        "unique": a.get(f"unique_{field}", 0),
        "total": a.get(field, 0),
        "by_classification": classes,
        "by_reason": reasons,
    }


def campaign_summary(conn: Connection, account_id: str, campaign_id: str) -> dict[str, Any]:
    """The campaign's report summary (also the `report` of GET /campaigns/{id}); NotFound
    unless the campaign is this account's."""
    campaign = campaign_of(conn, account_id, campaign_id)
    by_status, recipients = _message_counts(conn, campaign_id)
    suppressed = _suppressed(conn, account_id, campaign_id)
    a = _activity(conn, campaign_id)
    reasons = _reasons(conn, campaign_id)
    proxy = [r for r in reasons if r[0] == "open" and r[1] == Classification.PROXY_OPEN]
    machine_opens = [r for r in reasons if r[0] == "open" and r[1] != Classification.PROXY_OPEN]
    bounced, unsubscribed = suppressed.get("bounced", 0), suppressed.get("unsubscribed", 0)
    opens, clicks = a.get("unique_opens", 0), a.get("unique_clicks", 0)
    replied, read = replied_and_read(conn, campaign_id, opens)
    sent = sum(by_status.get(status, 0) for status in WENT_OUT)
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "sent": sent,
        "recipients": recipients,
        "failed": by_status.get(MessageStatus.FAILED, 0),
        "bounced": bounced,
        "unsubscribed": unsubscribed,
        "replied": replied,
        "read": read,
        "messages": dict(sorted(by_status.items())),
        "opens": {
            "human": {
                "unique": opens,
                "total": a.get("opens", 0),
                "proxy_open": {
                    "unique": a.get("unique_proxy_opens", 0),
                    "total": a.get("proxy_opens", 0),
                    "by_reason": count_by_reason(proxy)[1],
                },
            },
            "machine": _machine(a, "machine_opens", machine_opens),
        },
        "clicks": {
            "human": {"unique": clicks, "total": a.get("clicks", 0)},
            "machine": _machine(a, "machine_clicks", [r for r in reasons if r[0] == "click"]),
        },
        "rates": {
            "open": _rate(opens, recipients),
            "click": _rate(clicks, recipients),
            "click_to_open": _rate(clicks, opens),
            "machine_open": _rate(a.get("unique_machine_opens", 0), recipients),
            "machine_click": _rate(a.get("unique_machine_clicks", 0), recipients),
            "bounce": _rate(bounced, recipients),
            "unsubscribe": _rate(unsubscribed, recipients),
            "reply": _rate(replied, recipients),
            "read": _rate(read, recipients),
        },
    }
