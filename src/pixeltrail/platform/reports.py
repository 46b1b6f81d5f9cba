"""Campaign reports: the summary, links and timeline, with people and machines apart.

Definitions (the README's "Campaign reports" section says the same):

- **sent**: messages of the campaign with status `sent`; **recipients**: distinct contacts with
  a sent message. **failed**: messages the sender gave up on (status `failed`: a permanent
  refusal, or temporary errors until the last attempt).
- **bounced**: distinct contacts of the campaign whose address is on the account's suppression
  list as `bounced`, added at or after a message of this campaign was created for them (the
  sender does that when a server refuses an address with a 5xx). **unsubscribed**: the same
  with reason `unsubscribed`. Suppressions are per account, not per campaign: an address that
  bounces or unsubscribes later, from another campaign, counts here too.
- **opens**: "human" opens are those classified `human` or `proxy_open` (a real open fetched
  through Gmail's or Yahoo's image proxy: counted, and also reported apart as `proxy_open`).
  Every other open (`apple_mpp`, `scanner`, `bot`) is a machine's, counted by classification
  and by reason. **clicks**: "human" clicks are those classified `human`; the rest are
  machines'. The honeypot link is never a destination in the link report.
- **unique** counts distinct contacts (a contact with several messages of a sequence counts
  once); **total** counts events. Rates are unique contacts over recipients (for a one-step
  campaign, recipients = sent), rounded to 4 places, null before anything was sent.
- Verdicts can change after the fact (a honeypot click condemns the clicks around it): the
  numbers always follow the current verdicts (see store/report_aggregates.py).
- Times are ISO 8601 UTC; timeline buckets are hours or days of the account's time zone (or
  the one asked for), DST included: a bucket starts at a local time and says its offset.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, case, distinct, func, select

from pixeltrail.platform.errors import NotFound
from pixeltrail.store.schema import (
    accounts,
    campaigns,
    contacts,
    messages,
    report_messages,
    report_reasons,
    suppressions,
)
from pixeltrail.tracking.hits import PROXY_OPEN

RATE_PLACES = 4

_rm, _rr = report_messages.c, report_reasons.c


def iso_utc(ms: int | None) -> str | None:
    """UTC epoch milliseconds as ISO 8601 with a Z (2026-01-31T09:30:00.000Z)."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def campaign_of(conn: Connection, account_id: str, campaign_id: str) -> Any:
    """The campaign's id, name and account time zone; NotFound unless it is this account's
    (another account's campaign answers exactly like a missing one)."""
    row = conn.execute(
        select(campaigns.c.id, campaigns.c.name, accounts.c.timezone)
        .join(accounts, accounts.c.id == campaigns.c.account_id)
        .where(campaigns.c.id == campaign_id, campaigns.c.account_id == account_id)
    ).first()
    if row is None:
        raise NotFound("no such campaign")
    return row


# ---- reasons ---------------------------------------------------------------------------------

_IP_CANDIDATE = re.compile(r"[0-9A-Fa-f.:]*[.:][0-9A-Fa-f.:]*")
# Numbers of seconds and of links in the timing rules' reasons ("clicked 2.5 s after sending",
# "all 3 links clicked within 1.2 s"), not numbers inside names ("Mozilla/5.0").
_COUNTS = re.compile(r"(?<![\w./])\d+(?:\.\d+)?(?= s\b| links\b| different links\b)")


def reason_label(reason: str) -> str:
    """A reason with its per-event details replaced, so that reports can count by reason:
    addresses become {ip}, seconds and numbers of links become N."""

    def address(match: re.Match[str]) -> str:
        text = match.group()
        core = text.rstrip(".")  # an address ending a sentence
        try:
            ipaddress.ip_address(core)
        except ValueError:
            return text
        return "{ip}" + text[len(core) :]

    return _COUNTS.sub("N", _IP_CANDIDATE.sub(address, reason))


def count_by_reason(
    rows: list[tuple[str, str, int]],
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """(classification, reason, count) rows as counts per classification and per reason label."""
    by_class: Counter[str] = Counter()
    by_label: Counter[tuple[str, str]] = Counter()
    for classification, reason, count in rows:
        by_class[classification] += count
        by_label[(classification, reason_label(reason))] += count
    ordered = sorted(by_label.items(), key=lambda item: (-item[1], item[0]))
    return dict(sorted(by_class.items())), [
        {"classification": c, "reason": r, "count": n} for (c, r), n in ordered
    ]


# ---- the summary -----------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, RATE_PLACES)


def _unique(column: Any) -> Any:
    return func.count(distinct(case((column > 0, _rm.contact_id))))


def _message_counts(conn: Connection, campaign_id: str) -> tuple[dict[str, int], int]:
    by_status: dict[str, int] = dict(
        conn.execute(
            select(messages.c.status, func.count())
            .where(messages.c.campaign_id == campaign_id)
            .group_by(messages.c.status)
        ).all()
    )
    recipients = conn.execute(
        select(func.count(distinct(messages.c.contact_id))).where(
            messages.c.campaign_id == campaign_id, messages.c.status == "sent"
        )
    ).scalar_one()
    return by_status, recipients


def _suppressed(conn: Connection, campaign_id: str) -> dict[str, int]:
    """Contacts of the campaign suppressed (per reason) after a message was made for them."""
    joined = messages.join(contacts, contacts.c.id == messages.c.contact_id).join(
        suppressions,
        and_(
            suppressions.c.account_id == contacts.c.account_id,
            suppressions.c.email == contacts.c.email,
        ),
    )
    query = (
        select(suppressions.c.reason, func.count(distinct(contacts.c.id)))
        .select_from(joined)
        .where(
            messages.c.campaign_id == campaign_id,
            suppressions.c.reason.in_(("bounced", "unsubscribed")),
            suppressions.c.created_at_ms >= messages.c.created_at_ms,
        )
        .group_by(suppressions.c.reason)
    )
    return dict(conn.execute(query).all())


def _activity(conn: Connection, campaign_id: str) -> Any:
    return conn.execute(
        select(
            _unique(_rm.opens).label("opens_unique"),
            func.coalesce(func.sum(_rm.opens), 0).label("opens"),
            _unique(_rm.proxy_opens).label("proxy_unique"),
            func.coalesce(func.sum(_rm.proxy_opens), 0).label("proxy_opens"),
            _unique(_rm.machine_opens).label("machine_opens_unique"),
            func.coalesce(func.sum(_rm.machine_opens), 0).label("machine_opens"),
            _unique(_rm.clicks).label("clicks_unique"),
            func.coalesce(func.sum(_rm.clicks), 0).label("clicks"),
            _unique(_rm.machine_clicks).label("machine_clicks_unique"),
            func.coalesce(func.sum(_rm.machine_clicks), 0).label("machine_clicks"),
        ).where(_rm.campaign_id == campaign_id)
    ).one()


def _reasons(conn: Connection, campaign_id: str) -> dict[str, list[tuple[str, str, int]]]:
    found: dict[str, list[tuple[str, str, int]]] = {"open": [], "click": []}
    query = (
        select(_rr.kind, _rr.classification, _rr.reason, func.sum(_rr.events))
        .where(_rr.campaign_id == campaign_id)
        .group_by(_rr.kind, _rr.classification, _rr.reason)
    )
    for kind, classification, reason, count in conn.execute(query):
        found.setdefault(kind, []).append((classification, reason, int(count)))
    return found


def campaign_summary(conn: Connection, account_id: str, campaign_id: str) -> dict[str, Any]:
    """The campaign's report summary (the `report` of GET /campaigns/{id}); NotFound unless
    the campaign is this account's."""
    campaign = campaign_of(conn, account_id, campaign_id)
    by_status, recipients = _message_counts(conn, campaign_id)
    suppressed = _suppressed(conn, campaign_id)
    a = _activity(conn, campaign_id)
    reasons = _reasons(conn, campaign_id)
    proxy = [r for r in reasons["open"] if r[0] == PROXY_OPEN]
    machine_opens = [r for r in reasons["open"] if r[0] != PROXY_OPEN]
    open_classes, open_reasons = count_by_reason(machine_opens)
    click_classes, click_reasons = count_by_reason(reasons["click"])
    bounced, unsubscribed = suppressed.get("bounced", 0), suppressed.get("unsubscribed", 0)
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "sent": by_status.get("sent", 0),
        "recipients": recipients,
        "failed": by_status.get("failed", 0),
        "bounced": bounced,
        "unsubscribed": unsubscribed,
        "messages": dict(sorted(by_status.items())),
        "opens": {
            "human": {
                "unique": a.opens_unique,
                "total": int(a.opens),
                "proxy_open": {
                    "unique": a.proxy_unique,
                    "total": int(a.proxy_opens),
                    "by_reason": count_by_reason(proxy)[1],
                },
            },
            "machine": {
                "unique": a.machine_opens_unique,
                "total": int(a.machine_opens),
                "by_classification": open_classes,
                "by_reason": open_reasons,
            },
        },
        "clicks": {
            "human": {"unique": a.clicks_unique, "total": int(a.clicks)},
            "machine": {
                "unique": a.machine_clicks_unique,
                "total": int(a.machine_clicks),
                "by_classification": click_classes,
                "by_reason": click_reasons,
            },
        },
        "rates": {
            "open": _rate(a.opens_unique, recipients),
            "click": _rate(a.clicks_unique, recipients),
            "click_to_open": _rate(a.clicks_unique, a.opens_unique),
            "machine_open": _rate(a.machine_opens_unique, recipients),
            "machine_click": _rate(a.machine_clicks_unique, recipients),
            "bounce": _rate(bounced, recipients),
            "unsubscribe": _rate(unsubscribed, recipients),
        },
    }
