"""Recorded tracking events: idempotent batch inserts, verdict updates and ordered reads."""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, Insert, Row, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pixeltrail.store.schema import events as events_table
from pixeltrail.tracking.hits import Classification, Event, Hit, HitKind, Verdict, now_ms

# Rows per statement: bounded statement size whatever the batch (13 columns stays far below
# SQLite's 32,766 bound parameters and PostgreSQL's 65,535).
BATCH = 500
# Rows fetched at a time when streaming.
STREAM_CHUNK = 1000

_ORDER = (events_table.c.at_ms, events_table.c.id)

T = TypeVar("T")


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    # itertools.batched arrives with Python 3.12.
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _insert_ignoring_duplicates(conn: Connection) -> Insert:
    name = conn.dialect.name
    key = [events_table.c.id]
    if name == "sqlite":
        return sqlite.insert(events_table).on_conflict_do_nothing(index_elements=key)
    if name == "postgresql":
        return postgresql.insert(events_table).on_conflict_do_nothing(index_elements=key)
    raise NotImplementedError(f"events cannot be stored in {name}")


def _row_of(event: Event, recorded_at_ms: int) -> dict[str, Any]:
    hit = event.hit
    return {
        "id": hit.id,
        "kind": hit.kind,
        "message_id": hit.message_id,
        "link": hit.link,
        "destination": hit.destination,
        "honeypot": hit.honeypot,
        "at_ms": hit.at_ms,
        "ip": hit.ip,
        "user_agent": hit.user_agent,
        "method": hit.method,
        "classification": event.classification,
        "reason": event.reason,
        "recorded_at_ms": recorded_at_ms,
    }


def _kind(value: str) -> HitKind:
    if value == "open":
        return "open"
    if value == "click":
        return "click"
    raise ValueError(f"events row has unknown kind {value!r}")


def _event_of(row: Row[Any]) -> Event:
    hit = Hit(
        id=row.id,
        kind=_kind(row.kind),
        message_id=row.message_id,
        link=row.link,
        destination=row.destination,
        at_ms=row.at_ms,
        ip=row.ip,
        user_agent=row.user_agent,
        method=row.method,
        honeypot=bool(row.honeypot),
    )
    return Event(hit=hit, classification=row.classification, reason=row.reason)


def insert_events(conn: Connection, events: Sequence[Event]) -> int:
    """Store events, skipping ids already stored (replaying a batch is harmless).

    Returns how many rows were inserted.
    """
    if not events:
        return 0
    statement = _insert_ignoring_duplicates(conn).returning(events_table.c.id)
    recorded_at_ms = now_ms()
    inserted = 0
    for chunk in _chunks(events, BATCH):
        rows = [_row_of(event, recorded_at_ms) for event in chunk]
        # RETURNING lists only the rows inserted: rowcount of an executemany is not reliable.
        inserted += len(conn.execute(statement, rows).all())
    return inserted


def update_verdicts(conn: Connection, changes: Sequence[tuple[str, Verdict]]) -> None:
    """Set the classification and reason of events by id (unknown ids are ignored)."""
    statement = (
        update(events_table)
        .where(events_table.c.id == bindparam("event_id"))
        .values(classification=bindparam("new_classification"), reason=bindparam("new_reason"))
    )
    for chunk in _chunks(changes, BATCH):
        conn.execute(
            statement,
            [
                {
                    "event_id": event_id,
                    "new_classification": verdict.classification,
                    "new_reason": verdict.reason,
                }
                for event_id, verdict in chunk
            ],
        )


_COLUMNS = [
    events_table.c[name]
    for name in (
        "id", "kind", "message_id", "link", "destination", "at_ms", "ip", "user_agent",
        "method", "honeypot", "classification", "reason",
    )
]  # fmt: skip


def _events_of_rows(rows: Iterable[Sequence[Any]]) -> Iterator[Event]:
    # Unpacked by position: Row attribute lookups by name cost more than the query does.
    for row in rows:
        id_, kind, message_id, link, destination, at_ms, ip, user_agent, *rest = row
        method, honeypot, classification, reason = rest
        hit = Hit(
            id_, _kind(kind), message_id, link, destination, at_ms, ip, user_agent, method,
            bool(honeypot),
        )  # fmt: skip
        yield Event(hit, classification, reason)


def events_of_messages(conn: Connection, message_ids: Collection[str]) -> list[Event]:
    """Every event of these messages, oldest first (ties by id)."""
    found: list[Event] = []
    c = events_table.c
    for chunk in _chunks(sorted(set(message_ids)), BATCH):
        found += _events_of_rows(conn.execute(select(*_COLUMNS).where(c.message_id.in_(chunk))))
    found.sort(key=lambda event: (event.hit.at_ms, event.hit.id))
    return found


def recent_and_human_opens(
    conn: Connection, message_ids: Collection[str], since_ms: int
) -> list[Event]:
    """The events of these messages at or after `since_ms`, and their opens judged a person's
    whenever they were (the first of them is the message's reader), oldest first (ties by id)."""
    c = events_table.c
    found: list[Event] = []
    recent = (c.at_ms >= since_ms) | (
        (c.kind == "open") & (c.classification == Classification.HUMAN)
    )
    for chunk in _chunks(sorted(set(message_ids)), BATCH):
        found += _events_of_rows(
            conn.execute(select(*_COLUMNS).where(c.message_id.in_(chunk), recent))
        )
    found.sort(key=lambda event: (event.hit.at_ms, event.hit.id))
    return found


def older_events(conn: Connection, message_ids: Collection[str], before_ms: int) -> list[Event]:
    """The events of these messages before `before_ms` but their human opens (the rest of
    `recent_and_human_opens`), oldest first (ties by id)."""
    c = events_table.c
    found: list[Event] = []
    older = (c.at_ms < before_ms) & ~(
        (c.kind == "open") & (c.classification == Classification.HUMAN)
    )
    for chunk in _chunks(sorted(set(message_ids)), BATCH):
        found += _events_of_rows(
            conn.execute(select(*_COLUMNS).where(c.message_id.in_(chunk), older))
        )
    found.sort(key=lambda event: (event.hit.at_ms, event.hit.id))
    return found


def list_events(conn: Connection, message_id: str | None = None) -> Generator[Event, None, None]:
    """Events oldest first (ties by id), all or one message's, streamed in chunks.

    Rows are fetched as the iterator is consumed (a server-side cursor on PostgreSQL), so
    memory stays flat whatever the table's size. Consume it inside the caller's transaction.
    """
    query = select(events_table).order_by(*_ORDER)
    if message_id is not None:
        query = query.where(events_table.c.message_id == message_id)
    with conn.execute(query, execution_options={"yield_per": STREAM_CHUNK}) as result:
        for row in result:
            yield _event_of(row)


def count_events(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(events_table)).scalar_one()
