"""What purged events had counted, added back wherever report rows are computed from events.

The retention purge (store/event_retention.py) moves each deleted event's share of the reports
into the purged_* tables. A contact's report rows are recomputed from the events of the
contact's messages (store/report_rollups.py) and a rebuild recomputes a whole campaign
(store/report_aggregates.py): both add these totals, so neither forgets purged history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from pixeltrail.store.schema import (
    CONTACT_COUNTS,
    LINK_COUNTS,
    purged_contact_links,
    purged_contacts,
    purged_reasons,
    purged_timeline,
)


class ContactRow(NamedTuple):
    campaign_id: str
    contact_id: str
    opens: int
    proxy_opens: int
    machine_opens: int
    first_open_ms: int | None
    last_open_ms: int | None
    clicks: int
    machine_clicks: int


class LinkRow(NamedTuple):
    campaign_id: str
    contact_id: str
    message_id: str
    link: int
    destination: str | None
    clicks: int
    machine_clicks: int


def _earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def with_purged_contacts(
    conn: Connection, campaign_id: str, contact_ids: Sequence[str], rows: Sequence[Any]
) -> Sequence[Any]:
    """`rows` (report_contacts rows computed from events) with the purged totals added."""
    c = purged_contacts.c
    purged = conn.execute(
        select(purged_contacts).where(c.campaign_id == campaign_id, c.contact_id.in_(contact_ids))
    ).all()
    if not purged:  # the usual case: rows go back as they came
        return rows
    merged = {row.contact_id: ContactRow(**row._asdict()) for row in rows}
    for old in purged:
        row = merged.get(old.contact_id)
        if row is None:
            merged[old.contact_id] = ContactRow(**old._asdict())
            continue
        merged[old.contact_id] = row._replace(
            **{field: getattr(row, field) + getattr(old, field) for field in CONTACT_COUNTS},
            first_open_ms=_earliest(row.first_open_ms, old.first_open_ms),
            last_open_ms=_latest(row.last_open_ms, old.last_open_ms),
        )
    return list(merged.values())


def with_purged_links(
    conn: Connection, campaign_id: str, contact_ids: Sequence[str], rows: Sequence[Any]
) -> Sequence[Any]:
    """`rows` (report_contact_links rows computed from events) with the purged totals added."""
    c = purged_contact_links.c
    purged = conn.execute(
        select(purged_contact_links).where(
            c.campaign_id == campaign_id, c.contact_id.in_(contact_ids)
        )
    ).all()
    if not purged:
        return rows
    merged = {(row.message_id, row.link): LinkRow(**row._asdict()) for row in rows}
    for old in purged:
        key = (old.message_id, old.link)
        row = merged.get(key)
        if row is None:
            merged[key] = LinkRow(**old._asdict())
            continue
        merged[key] = row._replace(
            **{field: getattr(row, field) + getattr(old, field) for field in LINK_COUNTS},
            destination=row.destination or old.destination,
        )
    return list(merged.values())


def purged_timeline_rows(conn: Connection, campaign_id: str) -> list[dict[str, Any]]:
    query = select(purged_timeline).where(purged_timeline.c.campaign_id == campaign_id)
    return [row._asdict() for row in conn.execute(query)]


def purged_reason_counts(conn: Connection, campaign_id: str) -> Counter[tuple[str, str, str]]:
    """(kind, classification, reason label) -> events purged, of one campaign."""
    c = purged_reasons.c
    query = select(c.kind, c.classification, c.reason, c.events).where(c.campaign_id == campaign_id)
    return Counter({(kind, verdict, reason): n for kind, verdict, reason, n in conn.execute(query)})
