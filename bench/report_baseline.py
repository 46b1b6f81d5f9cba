"""The baseline for bench/report.py: the report's numbers counted straight from the events.

Same definitions and same output shapes as pixeltrail.platform.reports.summary, so the two
results can be compared for equality; the only indexes used are those that exist without the report
aggregates (events(message_id, at_ms), messages(campaign_id, status)).
"""

from __future__ import annotations

import random
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, distinct, func, select

from pixeltrail.platform.reports.activity import timeline_items
from pixeltrail.platform.reports.summary import ReasonRow, count_by_reason
from pixeltrail.store.report_aggregates import QUARTER_HOUR_MS
from pixeltrail.store.schema import events, messages
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, Classification, Hit
from report_data import CAMPAIGN, LINKS, OUTLOOK, SAFARI, T0

_e, _m = events.c, messages.c
_BOTH = messages.join(events, _e.message_id == _m.id)
_OPEN, _CLICK = _e.kind == "open", _e.kind == "click"
_COUNTED = _e.classification.in_(sorted(COUNTED_AS_OPEN))
_HUMAN = _e.classification == Classification.HUMAN


def _pair(condition: Any) -> list[Any]:
    return [
        func.count(distinct(case((condition, _m.contact_id)))),
        func.coalesce(func.sum(case((condition, 1), else_=0)), 0),
    ]


def raw_summary(conn: Connection) -> dict[str, Any]:
    counts = conn.execute(
        select(
            *_pair(_OPEN & _COUNTED),
            *_pair(_OPEN & (_e.classification == Classification.PROXY_OPEN)),
            *_pair(_OPEN & ~_COUNTED),
            *_pair(_CLICK & _HUMAN),
            *_pair(_CLICK & ~_HUMAN),
        )
        .select_from(_BOTH)
        .where(_m.campaign_id == CAMPAIGN)
    ).one()
    o_u, o_t, p_u, p_t, mo_u, mo_t, c_u, c_t, mc_u, mc_t = (int(n) for n in counts)
    reasons: dict[str, list[ReasonRow]] = {"open": [], "click": []}
    for kind, classification, reason, n in conn.execute(
        select(_e.kind, _e.classification, _e.reason, func.count())
        .select_from(_BOTH)
        .where(_m.campaign_id == CAMPAIGN, ~_HUMAN)
        .group_by(_e.kind, _e.classification, _e.reason)
    ):
        reasons[kind].append((kind, classification, reason, int(n)))
    proxy = [r for r in reasons["open"] if r[1] == Classification.PROXY_OPEN]
    open_classes, open_reasons = count_by_reason([r for r in reasons["open"] if r not in proxy])
    click_classes, click_reasons = count_by_reason(reasons["click"])
    return {
        "opens": {
            "human": {
                "unique": o_u,
                "total": o_t,
                "proxy_open": {"unique": p_u, "total": p_t, "by_reason": count_by_reason(proxy)[1]},
            },
            "machine": {
                "unique": mo_u,
                "total": mo_t,
                "by_classification": open_classes,
                "by_reason": open_reasons,
            },
        },
        "clicks": {
            "human": {"unique": c_u, "total": c_t},
            "machine": {
                "unique": mc_u,
                "total": mc_t,
                "by_classification": click_classes,
                "by_reason": click_reasons,
            },
        },
    }


def raw_links(conn: Connection) -> list[dict[str, Any]]:
    query = (
        select(_e.destination, *_pair(_HUMAN), *_pair(~_HUMAN))
        .select_from(_BOTH)
        .where(_m.campaign_id == CAMPAIGN, _CLICK, _e.link.is_not(None), ~_e.honeypot)
        .group_by(_e.destination)
    )
    items = [
        {
            "destination": destination,
            "unique_clicks": int(u),
            "total_clicks": int(t),
            "machine_unique_clicks": int(mu),
            "machine_clicks": int(mt),
        }
        for destination, u, t, mu, mt in conn.execute(query)
    ]
    items.sort(key=lambda i: (-i["unique_clicks"], -i["total_clicks"], i["destination"] or ""))
    return items


def raw_timeline(conn: Connection, granularity: str, zone: str) -> list[dict[str, Any]]:
    bucket = (_e.at_ms - _e.at_ms % QUARTER_HOUR_MS).label("bucket")
    query = (
        select(
            bucket,
            func.sum(case((_OPEN & _COUNTED, 1), else_=0)),
            func.sum(case((_OPEN & ~_COUNTED, 1), else_=0)),
            func.sum(case((_CLICK & _HUMAN, 1), else_=0)),
            func.sum(case((_CLICK & ~_HUMAN, 1), else_=0)),
        )
        .select_from(_BOTH)
        .where(_m.campaign_id == CAMPAIGN)
        .group_by(bucket)
    )
    return timeline_items(conn.execute(query), ZoneInfo(zone), granularity)


def recording_batch(message_ids: list[str], size: int, seed: int) -> list[Hit]:
    """New hits on this campaign's messages, as a flush would bring them: opens and clicks."""
    rng = random.Random(seed)
    later = T0 + 20 * 24 * 3_600_000
    hits = []
    for _ in range(size):
        link = rng.randint(1, len(LINKS)) if rng.random() < 0.3 else None
        hits.append(
            Hit(
                id=f"{rng.getrandbits(128):032x}",
                kind="click" if link else "open",
                message_id=rng.choice(message_ids),
                link=link,
                destination=LINKS[link - 1] if link else None,
                at_ms=later + rng.randrange(86_400_000),
                ip=f"92.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                user_agent=SAFARI if link else OUTLOOK,
                method="GET",
            )
        )
    return hits
