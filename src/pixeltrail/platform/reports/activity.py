"""Campaign reports: clicks per link destination, and opens and clicks over time.

Definitions: see platform/reports/summary.py. Timeline buckets are hours or days of the account's
time zone (or the one asked for), DST included: each starts at a local time and gives its
offset, so the night clocks go back has two 02:00 hours and the day they go forward 23 hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from pixeltrail.platform.accounts.accounts import check_timezone
from pixeltrail.platform.errors import Invalid
from pixeltrail.platform.reports.summary import campaign_of
from pixeltrail.store.report_aggregates import TIMELINE_FIELDS
from pixeltrail.store.schema import report_links, report_timeline
from pixeltrail.store.typed_rows import typed_rows

GRANULARITIES = ("hour", "day")

_rl, _rt = report_links.c, report_timeline.c


class _LinkClicks(NamedTuple):
    destination: str | None
    unique_clicks: int
    clicks: int
    unique_machine_clicks: int
    machine_clicks: int


def link_report(conn: Connection, account_id: str, campaign_id: str) -> list[dict[str, Any]]:
    """Clicks per destination, most unique human clickers first."""
    campaign_of(conn, account_id, campaign_id)
    query = select(*(_rl[name] for name in _LinkClicks._fields)).where(
        _rl.campaign_id == campaign_id
    )
    items: list[dict[str, Any]] = [
        {
            "destination": link.destination,
            "unique_clicks": link.unique_clicks,
            "total_clicks": link.clicks,
            "machine_unique_clicks": link.unique_machine_clicks,
            "machine_clicks": link.machine_clicks,
        }
        for link in typed_rows(_LinkClicks, conn.execute(query))
        if link.clicks or link.machine_clicks
    ]
    items.sort(key=lambda i: (-i["unique_clicks"], -i["total_clicks"], i["destination"] or ""))
    return items


def check_granularity(granularity: str) -> str:
    if granularity not in GRANULARITIES:
        raise Invalid("granularity is hour or day", "granularity")
    return granularity


def _bucket_start(local: datetime, granularity: str) -> datetime:
    if granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    # fold=0: a local midnight skipped by a DST change then means the day's first instant.
    return local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)


def timeline_items(
    rows: Iterable[Sequence[int]], zone: ZoneInfo, granularity: str
) -> list[dict[str, Any]]:
    """(quarter-hour bucket ms, opens, machine opens, clicks, machine clicks) rows summed into
    local hours or days, oldest first."""
    # Per row only the cheap part (local date, hour and offset); the rest per bucket.
    buckets: dict[tuple[Any, ...], list[Any]] = {}
    for bucket_ms, *counts in rows:
        local = datetime.fromtimestamp(bucket_ms / 1000, zone)
        key: tuple[Any, ...] = (local.year, local.month, local.day)
        if granularity == "hour":
            # The offset tells apart the two 02:00 hours of a night when clocks go back.
            key += (local.hour, local.utcoffset())
        entry = buckets.get(key)
        if entry is None:
            entry = buckets[key] = [bucket_ms, local, *(0 for _ in TIMELINE_FIELDS)]
        elif bucket_ms < entry[0]:
            entry[0] = bucket_ms
        for index, n in enumerate(counts, start=2):
            entry[index] += int(n)
    return [
        {
            "start": _bucket_start(local, granularity).isoformat(),
            **dict(zip(TIMELINE_FIELDS, sums, strict=True)),
        }
        for _, local, *sums in sorted(buckets.values(), key=lambda entry: entry[0])
    ]


def timeline(
    conn: Connection,
    account_id: str,
    campaign_id: str,
    granularity: str = "day",
    tz: str | None = None,
) -> dict[str, Any]:
    """Opens and clicks per local hour or day; buckets without activity are left out."""
    campaign = campaign_of(conn, account_id, campaign_id)
    check_granularity(granularity)
    zone_name = campaign.timezone if tz is None else check_timezone(tz, "tz")
    query = (
        select(
            _rt.bucket_ms,
            func.sum(_rt.opens),
            func.sum(_rt.machine_opens),
            func.sum(_rt.clicks),
            func.sum(_rt.machine_clicks),
        )
        .where(_rt.campaign_id == campaign_id)
        .group_by(_rt.bucket_ms)
    )
    items = timeline_items(conn.execute(query), ZoneInfo(zone_name), granularity)
    return {"granularity": granularity, "timezone": zone_name, "items": items}
