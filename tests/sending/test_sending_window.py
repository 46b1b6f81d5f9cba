"""Sending windows across days, hours, time zones and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pixeltrail.platform.campaigns.sending_window import SendingWindow


def _ms(text: str, tz: str = "UTC") -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def _local(ms: int, tz: str) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M %Z")


def test_weekdays_nine_to_five_in_new_york() -> None:
    window = SendingWindow.from_schedule(
        {
            "timezone": "America/New_York",
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start_hour": 9,
            "end_hour": 17,
        },
        "UTC",
    )
    # Friday 18:00 in New York: next is Monday 09:00.
    assert (
        _local(window.next_open(_ms("2026-11-27T18:00", "America/New_York")), "America/New_York")
        == "Mon 2026-11-30 09:00 EST"
    )
    # Inside the window: now.
    inside = _ms("2026-11-25T10:30", "America/New_York")
    assert window.next_open(inside) == inside
    # Before the window opens on a weekday: the same day at 9.
    assert (
        _local(window.next_open(_ms("2026-11-25T06:00", "America/New_York")), "America/New_York")
        == "Wed 2026-11-25 09:00 EST"
    )


def test_spring_forward_day_keeps_local_hours() -> None:
    window = SendingWindow.from_schedule(
        {"timezone": "Europe/Paris", "start_hour": 9, "end_hour": 12}, "UTC"
    )
    # On 29 March 2026 clocks go from 02:00 to 03:00 in Paris: 9:00 is 07:00 UTC, not 08:00.
    opened = window.next_open(_ms("2026-03-29T00:00", "UTC"))
    assert datetime.fromtimestamp(opened / 1000, UTC).strftime("%H:%M") == "07:00"
    assert _local(opened, "Europe/Paris") == "Sun 2026-03-29 09:00 CEST"
    # The day before, 9:00 Paris was 08:00 UTC.
    before = window.next_open(_ms("2026-03-28T00:00", "UTC"))
    assert datetime.fromtimestamp(before / 1000, UTC).strftime("%H:%M") == "08:00"


def test_fall_back_day_is_25_hours_long_for_caps() -> None:
    window = SendingWindow.from_schedule({"timezone": "Europe/Paris"}, "UTC")
    start, end = window.day_of(_ms("2026-10-25T12:00", "Europe/Paris"))
    assert end - start == 25 * 3600 * 1000


def test_defaults_every_day_all_day_in_the_account_zone() -> None:
    window = SendingWindow.from_schedule({}, "Asia/Tokyo")
    assert window.timezone == "Asia/Tokyo"
    now = _ms("2026-11-29T03:17", "Asia/Tokyo")
    assert window.next_open(now) == now
