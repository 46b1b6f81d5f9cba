"""When a campaign may send: days of the week and hours of the day in a time zone, and caps."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEARCH_DAYS = 15


@dataclass(frozen=True)
class SendingWindow:
    timezone: str
    days: frozenset[int]  # 0 = Monday
    start_hour: int
    end_hour: int  # exclusive; 24 = midnight
    daily_cap: int | None = None

    @classmethod
    def from_schedule(cls, schedule: Mapping[str, Any], default_timezone: str) -> SendingWindow:
        """A campaign's stored schedule; missing parts take the documented defaults."""
        days = schedule.get("days") or list(DAYS)
        return cls(
            timezone=schedule.get("timezone") or default_timezone,
            days=frozenset(DAYS.index(d) for d in days if d in DAYS) or frozenset(range(7)),
            start_hour=int(schedule.get("start_hour", 0)),
            end_hour=int(schedule.get("end_hour", 24)),
            daily_cap=schedule.get("daily_cap"),
        )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def _bounds(self, day: date) -> tuple[float, float]:
        """Start and end of the day's sending hours as UTC timestamps (DST-aware)."""
        zone = self.zone
        start = datetime.combine(day, time(self.start_hour), zone)
        end = (
            datetime.combine(day + timedelta(days=1), time(0), zone)
            if self.end_hour >= 24
            else datetime.combine(day, time(self.end_hour), zone)
        )
        return start.timestamp(), end.timestamp()

    def next_open(self, earliest_ms: int) -> int:
        """The first moment at or after `earliest_ms` inside the window (ms, UTC)."""
        earliest = earliest_ms / 1000
        local_day = datetime.fromtimestamp(earliest, self.zone).date()
        for offset in range(_SEARCH_DAYS):
            day = local_day + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            start, end = self._bounds(day)
            candidate = max(start, earliest)
            if candidate < end:
                return int(candidate * 1000)
        raise ValueError("the sending window never opens")

    def day_of(self, at_ms: int) -> tuple[int, int]:
        """The local calendar day holding `at_ms`, as [start, end) in ms UTC (for daily caps)."""
        day = datetime.fromtimestamp(at_ms / 1000, self.zone).date()
        start = datetime.combine(day, time(0), self.zone).timestamp()
        end = datetime.combine(day + timedelta(days=1), time(0), self.zone).timestamp()
        return int(start * 1000), int(end * 1000)
