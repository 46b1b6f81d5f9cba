"""The report's chart: opens and clicks per local hour or day as an inline SVG, drawn here.

Server-rendered so the page needs no chart library (and the page CSP allows none). Each bucket
has two stacked bars, opens and clicks: people at the bottom, machines above in a lighter,
hatched style, so the two read apart even in grey. Colours come from app.css classes (inline
styles are blocked by the page CSP); every text is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

WIDTH, HEIGHT = 860, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 46
# Hours shown one by one up to this many; a longer stretch is shown by day.
MAX_HOURS = 72
# Gaps between active buckets are drawn as empty ones up to this many buckets in all.
MAX_BUCKETS = 180
MAX_LABELS = 12


@dataclass(frozen=True)
class Bucket:
    start: datetime  # local time with its offset
    opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    machine_clicks: int = 0


def choose_granularity(hourly: list[dict[str, Any]]) -> str:
    """Hours while the activity spans up to MAX_HOURS, days beyond."""
    if len(hourly) < 2:
        return "hour"
    first = datetime.fromisoformat(hourly[0]["start"])
    last = datetime.fromisoformat(hourly[-1]["start"])
    return "hour" if last - first <= timedelta(hours=MAX_HOURS) else "day"


def buckets(items: list[dict[str, Any]], granularity: str, timezone: str) -> list[Bucket]:
    """The timeline's buckets with the quiet ones in between filled in (when not too many)."""
    given = [
        Bucket(
            datetime.fromisoformat(item["start"]),
            item["opens"],
            item["machine_opens"],
            item["clicks"],
            item["machine_clicks"],
        )
        for item in items
    ]
    if len(given) < 2:
        return given
    zone = ZoneInfo(timezone)
    first, last = given[0].start, given[-1].start
    starts: list[datetime] = []
    if granularity == "hour":
        # Whole hours of real time from the first local hour: DST changes fall out right.
        moment = first
        while moment <= last and len(starts) <= MAX_BUCKETS:
            starts.append(moment.astimezone(zone))
            moment += timedelta(hours=1)
    else:
        day = first.date()
        while day <= last.date() and len(starts) <= MAX_BUCKETS:
            starts.append(datetime(day.year, day.month, day.day, tzinfo=zone))
            day += timedelta(days=1)
    if len(starts) > MAX_BUCKETS:
        return given
    known = {_key(b.start, granularity): b for b in given}
    return [known.get(_key(start, granularity), Bucket(start)) for start in starts]


def _key(moment: datetime, granularity: str) -> Any:
    return moment.timestamp() if granularity == "hour" else moment.date()


def label(moment: datetime, granularity: str) -> str:
    return moment.strftime("%b %d %H:%M" if granularity == "hour" else "%b %d")


def _ceiling(value: int) -> int:
    """A round top for the y axis (1, 2 or 5 times a power of ten), at least `value`."""
    magnitude = int(10 ** (len(str(max(1, value))) - 1))
    tops = (factor * magnitude for factor in (1, 2, 5, 10))
    return next(top for top in tops if top >= value)


def render_svg(series: list[Bucket], granularity: str, timezone: str) -> Markup:
    """The chart as an <svg> element (empty-state text when there is nothing to draw)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    tallest = [max(b.opens + b.machine_opens, b.clicks + b.machine_clicks) for b in series]
    top = _ceiling(max(tallest, default=0))
    parts: list[Markup] = []
    unit = "hour" if granularity == "hour" else "day"
    title = f"Opens and clicks per {unit} ({timezone})"
    parts.append(Markup("<title>{}</title>").format(title))
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h - plot_h * fraction
        parts.append(
            Markup('<line class="grid" x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}"/>').format(
                LEFT, y, WIDTH - RIGHT, y
            )
        )
        parts.append(
            Markup('<text class="axis" x="{}" y="{:.1f}" text-anchor="end">{}</text>').format(
                LEFT - 6, y + 4, _tick(top * fraction)
            )
        )
    if not series:
        parts.append(
            Markup('<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>').format(
                LEFT + plot_w / 2, TOP + plot_h / 2, "No opens or clicks yet"
            )
        )
    else:
        slot = plot_w / len(series)
        bar = max(1.0, min(18.0, slot * 0.38))
        every = max(1, -(-len(series) // MAX_LABELS))
        for index, bucket in enumerate(series):
            x = LEFT + index * slot + slot / 2
            parts.append(_stack(x - bar, bar, bucket.opens, bucket.machine_opens, top, "open"))
            parts.append(_stack(x, bar, bucket.clicks, bucket.machine_clicks, top, "click"))
            when = label(bucket.start, granularity)
            hover = (
                f"{when}: opens {bucket.opens} by people, {bucket.machine_opens} by machines; "
                f"clicks {bucket.clicks} by people, {bucket.machine_clicks} by machines"
            )
            parts.append(
                Markup(
                    '<rect class="hover" x="{:.1f}" y="{}" width="{:.1f}" height="{}">'
                    "<title>{}</title></rect>"
                ).format(LEFT + index * slot, TOP, slot, plot_h, hover)
            )
            if index % every == 0:
                parts.append(
                    Markup(
                        '<text class="axis" x="{:.1f}" y="{}" text-anchor="middle">{}</text>'
                    ).format(x, HEIGHT - BOTTOM + 16, when)
                )
    parts.append(
        Markup('<line class="baseline" x1="{}" y1="{}" x2="{}" y2="{}"/>').format(
            LEFT, TOP + plot_h, WIDTH - RIGHT, TOP + plot_h
        )
    )
    parts.append(_legend())
    return Markup(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg">'
        '<defs><pattern id="machine-hatch" width="4" height="4" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect class="hatch-bg" width="4" height="4"/>'
        '<line class="hatch" x1="0" y1="0" x2="0" y2="4"/></pattern></defs>'
        "{}</svg>"
    ).format(WIDTH, HEIGHT, title, Markup("").join(parts))


def _tick(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def _stack(x: float, width: float, people: int, machines: int, top: int, kind: str) -> Markup:
    plot_h = HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    people_h = plot_h * people / top
    machine_h = plot_h * machines / top
    return Markup(
        '<rect class="bar {kind} human" x="{x:.1f}" y="{y1:.1f}" width="{w:.1f}" '
        'height="{h1:.1f}"/>'
        '<rect class="bar {kind} machine" x="{x:.1f}" y="{y2:.1f}" width="{w:.1f}" '
        'height="{h2:.1f}"/>'
    ).format(
        kind=kind,
        x=x,
        w=width,
        y1=base - people_h,
        h1=people_h,
        y2=base - people_h - machine_h,
        h2=machine_h,
    )


def _legend() -> Markup:
    entries = [
        ("open human", "opens (people)"),
        ("open machine", "opens (machines)"),
        ("click human", "clicks (people)"),
        ("click machine", "clicks (machines)"),
    ]
    parts = []
    x = LEFT
    for css, text in entries:
        parts.append(
            Markup(
                '<rect class="bar {}" x="{}" y="{}" width="10" height="10"/>'
                '<text class="axis" x="{}" y="{}">{}</text>'
            ).format(css, x, HEIGHT - 16, x + 14, HEIGHT - 7, text)
        )
        x += 150
    return Markup("").join(parts)
