"""Report aggregates: kept by the flusher as events arrive and as their verdicts change.

Two kinds, both written in the flusher's transaction (`record_report_changes`):

- per message (report_messages, report_links, report_reasons): recomputed from the message's
  whole stored history whenever its events change, so they are always a function of the
  events and their current verdicts (a honeypot click that condemns earlier clicks moves
  them from human to machine);
- per campaign and quarter hour (report_timeline): the flusher's changes are added to it, +1
  for a new event, -1/+1 for a verdict that moves an event from human to machine or back.

Both are exact only if one process records a message's hits at a time: `take_recording_turn`
makes concurrent flushers on PostgreSQL take turns (SQLite has a single writer anyway).
Anything else that changes or deletes events (a retention job) must call `rebuild_reports`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Select,
    case,
    delete,
    false,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from pixeltrail.store.schema import (
    events,
    messages,
    report_links,
    report_messages,
    report_reasons,
    report_timeline,
)
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, HUMAN, PROXY_OPEN, Event, Verdict

QUARTER_HOUR_MS = 15 * 60 * 1000
TIMELINE_FIELDS = ("opens", "machine_opens", "clicks", "machine_clicks")
TABLES = (report_messages, report_links, report_reasons, report_timeline)
_CHUNK = 500
# Any fixed 64-bit number, different from the migration lock ("pixrecrd" in ASCII).
RECORDING_LOCK_KEY = 0x70697872_65637264

_e, _m, _rt = events.c, messages.c, report_timeline.c
_OPEN = _e.kind == "open"
_CLICK = _e.kind == "click"
_COUNTED = _e.classification.in_(sorted(COUNTED_AS_OPEN))
_HUMAN = _e.classification == HUMAN
_BOTH = messages.join(events, _e.message_id == _m.id)


def take_recording_turn(conn: Connection) -> None:
    """On PostgreSQL, wait until no other transaction records hits (until this one ends).

    Two processes recording hits of one message at once would each judge and count its
    history without the other's uncommitted events."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RECORDING_LOCK_KEY})


def timeline_field(kind: str, classification: str) -> str:
    if kind == "open":
        return "opens" if classification in COUNTED_AS_OPEN else "machine_opens"
    return "clicks" if classification == HUMAN else "machine_clicks"


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _messages_rows(ids: list[str]) -> Select[Any]:
    return (
        select(
            _m.id,
            _m.campaign_id,
            _m.contact_id,
            _count(_OPEN & _COUNTED),
            _count(_OPEN & (_e.classification == PROXY_OPEN)),
            _count(_OPEN & ~_COUNTED),
            func.min(case((_OPEN & _COUNTED, _e.at_ms))),
            func.max(case((_OPEN & _COUNTED, _e.at_ms))),
            _count(_CLICK & _HUMAN),
            _count(_CLICK & ~_HUMAN),
        )
        .select_from(_BOTH)
        .where(_m.id.in_(ids))
        .group_by(_m.id, _m.campaign_id, _m.contact_id)
    )


def _links_rows(ids: list[str]) -> Select[Any]:
    return (
        select(
            _m.id,
            _e.link,
            _m.campaign_id,
            _m.contact_id,
            func.max(_e.destination),
            _count(_HUMAN),
            _count(~_HUMAN),
        )
        .select_from(_BOTH)
        .where(_m.id.in_(ids), _CLICK, _e.link.is_not(None), _e.honeypot == false())
        .group_by(_m.id, _e.link, _m.campaign_id, _m.contact_id)
    )


def _reasons_rows(ids: list[str]) -> Select[Any]:
    return (
        select(_m.id, _e.kind, _e.classification, _e.reason, _m.campaign_id, func.count())
        .select_from(_BOTH)
        .where(_m.id.in_(ids), ~_HUMAN)
        .group_by(_m.id, _e.kind, _e.classification, _e.reason, _m.campaign_id)
    )


_PER_MESSAGE = (
    (report_messages, _messages_rows),
    (report_links, _links_rows),
    (report_reasons, _reasons_rows),
)


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start : start + _CHUNK])


def refresh_reports(conn: Connection, message_ids: Collection[str]) -> None:
    """Recompute the per-message report rows of these messages from their stored events.

    Messages this instance did not send (no `messages` row) get no rows."""
    for chunk in _chunks(sorted(set(message_ids))):
        for table, rows in _PER_MESSAGE:
            conn.execute(delete(table).where(table.c.message_id.in_(chunk)))
            names = [column.name for column in table.columns]
            conn.execute(insert(table).from_select(names, rows(chunk)))


def _upsert_timeline(conn: Connection) -> Insert:
    make = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = make(report_timeline)
    return statement.on_conflict_do_update(
        index_elements=[_rt.campaign_id, _rt.bucket_ms],
        set_={f: report_timeline.c[f] + statement.excluded[f] for f in TIMELINE_FIELDS},
    )


def _campaigns_of(conn: Connection, message_ids: Collection[str]) -> dict[str, str]:
    """The campaign of each message this instance sent (others are left out)."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(message_ids)):
        query = select(_m.id, _m.campaign_id).where(_m.id.in_(chunk))
        found.update(dict(conn.execute(query).all()))
    return found


def _add_to_timeline(
    conn: Connection, changes: Counter[tuple[str, int, str]], campaign_of: Mapping[str, str]
) -> None:
    """Add (message id, bucket, field) -> n to the campaigns' timelines."""
    buckets: dict[tuple[str, int], Counter[str]] = {}
    for (message_id, bucket_ms, field), n in changes.items():
        campaign_id = campaign_of.get(message_id)
        if campaign_id is not None and n:
            buckets.setdefault((campaign_id, bucket_ms), Counter())[field] += n
    rows = [
        {"campaign_id": c, "bucket_ms": b, **{f: counts[f] for f in TIMELINE_FIELDS}}
        for (c, b), counts in sorted(buckets.items())
        if any(counts.values())
    ]
    if rows:
        conn.execute(_upsert_timeline(conn), rows)


def record_report_changes(
    conn: Connection,
    before: Mapping[str, Sequence[Event]],
    new: Sequence[Event],
    changed: Sequence[tuple[str, Verdict]],
) -> None:
    """Bring the aggregates up to date after the flusher stored `new` events and `changed`
    verdicts; `before` holds the stored events of the messages as they were read (by message)."""
    old = {event.hit.id: event for stored in before.values() for event in stored}
    moves: Counter[tuple[str, int, str]] = Counter()
    touched: set[str] = set()
    for event in new:
        hit = event.hit
        touched.add(hit.message_id)
        bucket = hit.at_ms - hit.at_ms % QUARTER_HOUR_MS
        moves[(hit.message_id, bucket, timeline_field(hit.kind, event.classification))] += 1
    for event_id, verdict in changed:
        if (was := old.get(event_id)) is None:
            continue
        hit = was.hit
        touched.add(hit.message_id)
        bucket = hit.at_ms - hit.at_ms % QUARTER_HOUR_MS
        moves[(hit.message_id, bucket, timeline_field(hit.kind, was.classification))] -= 1
        moves[(hit.message_id, bucket, timeline_field(hit.kind, verdict.classification))] += 1
    campaign_of = _campaigns_of(conn, touched)
    refresh_reports(conn, campaign_of)
    _add_to_timeline(conn, moves, campaign_of)


def rebuild_reports(conn: Connection, campaign_id: str) -> None:
    """Recompute every aggregate of a campaign from its events (after events were deleted or
    loaded by other means than the flusher)."""
    ids = list(conn.execute(select(_m.id).where(_m.campaign_id == campaign_id)).scalars())
    refresh_reports(conn, ids)
    conn.execute(delete(report_timeline).where(_rt.campaign_id == campaign_id))
    bucket = (_e.at_ms - _e.at_ms % QUARTER_HOUR_MS).label("bucket_ms")
    rows = (
        select(
            _m.campaign_id,
            bucket,
            _count(_OPEN & _COUNTED),
            _count(_OPEN & ~_COUNTED),
            _count(_CLICK & _HUMAN),
            _count(_CLICK & ~_HUMAN),
        )
        .select_from(_BOTH)
        .where(_m.campaign_id == campaign_id)
        .group_by(_m.campaign_id, bucket)
    )
    names = ["campaign_id", "bucket_ms", *TIMELINE_FIELDS]
    conn.execute(insert(report_timeline).from_select(names, rows))
