"""Event retention: deleting raw events older than their account's `retention_days`.

An account with retention_days set keeps the raw events of its messages (address, user agent,
exact time) for that many days; older ones are deleted, campaign by campaign, in batches of a
few thousand, each batch its own short transaction (SQLite has one writer: the flusher gets
its turn between batches). Before a batch is deleted, what its events counted in the reports
is added to the purged_* tables in the same transaction, so reports never change: they are
kept by the flusher and read from aggregates, and whatever recomputes them from the events
(a contact's rows when a new hit arrives, `rebuild_reports`) adds the purged totals.

A purge is idempotent: an event is counted into the purged totals by the transaction that
deletes it, and a second run finds nothing left to delete. Accounts without a retention
(null) keep their events forever; events of messages this instance did not send (no account)
are never purged.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from pixeltrail.store.db import write_transaction
from pixeltrail.store.report_aggregates import (
    QUARTER_HOUR_MS,
    TIMELINE_FIELDS,
    reason_label,
    take_recording_turn,
    timeline_field,
)
from pixeltrail.store.report_rollups import add_to, key_of
from pixeltrail.store.schema import (
    CONTACT_COUNTS,
    LINK_COUNTS,
    accounts,
    campaigns,
    events,
    messages,
    purged_contact_links,
    purged_contacts,
    purged_reasons,
    purged_timeline,
)
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, Classification, now_ms

DAY_MS = 86_400_000
BATCH = 2000
# Between batches, so that other writers (the flusher above all) get the SQLite lock.
PAUSE_SECONDS = 0.02
DELETE_CHUNK = 500
MESSAGES_PER_BATCH = 500

_e, _m = events.c, messages.c


@dataclass(frozen=True)
class AccountPurge:
    account_id: str
    name: str
    retention_days: int
    cutoff_ms: int  # events before this were purged (or, in a dry run, would be)
    events: int


def _retained_accounts(conn: Connection) -> list[tuple[str, str, int]]:
    """(id, name, retention_days) of the accounts whose events expire."""
    c = accounts.c
    query = select(c.id, c.name, c.retention_days).where(c.retention_days > 0).order_by(c.id)
    return [(row.id, row.name, row.retention_days) for row in conn.execute(query)]


def _campaign_ids(conn: Connection, account_id: str) -> list[str]:
    query = select(campaigns.c.id).where(campaigns.c.account_id == account_id)
    return sorted(conn.execute(query).scalars())


def _expired(campaign_id: str, cutoff_ms: int) -> Any:
    return _m.campaign_id == campaign_id, _e.at_ms < cutoff_ms


def count_expired(conn: Connection, campaign_id: str, cutoff_ms: int) -> int:
    query = (
        select(func.count())
        .select_from(events.join(messages, _m.id == _e.message_id))
        .where(*_expired(campaign_id, cutoff_ms))
    )
    return int(conn.execute(query).scalar_one())


def purge_batch(
    conn: Connection,
    campaign_id: str,
    message_ids: Sequence[str],
    cutoff_ms: int,
    limit: int = BATCH,
) -> int:
    """Delete up to `limit` events older than `cutoff_ms` of these messages of the campaign,
    after adding what they counted to the purged totals; returns how many were deleted."""
    # The flusher reads a message's events, then writes what they make: it must not see a
    # batch half purged. On SQLite the write lock already keeps the two apart.
    take_recording_turn(conn)
    rows = conn.execute(
        select(
            _e.id,
            _e.kind,
            _e.message_id,
            _e.link,
            _e.destination,
            _e.honeypot,
            _e.at_ms,
            _e.classification,
            _e.reason,
            _m.contact_id,
        )
        .select_from(events.join(messages, _m.id == _e.message_id))
        .where(*_expired(campaign_id, cutoff_ms), _e.message_id.in_(message_ids))
        .limit(limit)
    ).all()
    if not rows:
        return 0
    _add_to_purged(conn, campaign_id, rows)
    ids = [row.id for row in rows]
    for start in range(0, len(ids), DELETE_CHUNK):
        conn.execute(delete(events).where(_e.id.in_(ids[start : start + DELETE_CHUNK])))
    return len(rows)


def _add_to_purged(conn: Connection, campaign_id: str, rows: Sequence[Any]) -> None:
    """Add what these events counted in each report table to its purged_* twin (the same
    rules as store/report_rollups.py and store/report_aggregates.py)."""
    contacts: dict[str, dict[str, Any]] = {}
    links: dict[tuple[str, str, int], dict[str, Any]] = {}
    timeline: dict[int, Counter[str]] = {}
    reasons: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        human, opened = row.classification == Classification.HUMAN, row.kind == "open"
        counted = row.classification in COUNTED_AS_OPEN
        contact = contacts.setdefault(
            row.contact_id,
            {"campaign_id": campaign_id, "contact_id": row.contact_id,
             "first_open_ms": None, "last_open_ms": None, **dict.fromkeys(CONTACT_COUNTS, 0)},
        )  # fmt: skip
        if opened:
            contact["opens" if counted else "machine_opens"] += 1
            contact["proxy_opens"] += row.classification == Classification.PROXY_OPEN
            if counted:
                first, last = contact["first_open_ms"], contact["last_open_ms"]
                contact["first_open_ms"] = row.at_ms if first is None else min(first, row.at_ms)
                contact["last_open_ms"] = row.at_ms if last is None else max(last, row.at_ms)
        else:
            contact["clicks" if human else "machine_clicks"] += 1
            if row.link is not None and not row.honeypot:
                link = links.setdefault(
                    (row.contact_id, row.message_id, row.link),
                    {"campaign_id": campaign_id, "contact_id": row.contact_id,
                     "message_id": row.message_id, "link": row.link, "destination": None,
                     **dict.fromkeys(LINK_COUNTS, 0)},
                )  # fmt: skip
                link["clicks" if human else "machine_clicks"] += 1
                link["destination"] = max(
                    (d for d in (link["destination"], row.destination) if d is not None),
                    default=None,
                )
        bucket = row.at_ms - row.at_ms % QUARTER_HOUR_MS
        timeline.setdefault(bucket, Counter())[timeline_field(row.kind, row.classification)] += 1
        if not human:
            reasons[(row.kind, row.classification, reason_label(row.reason))] += 1
    _add_contacts(conn, list(contacts.values()))
    _upsert(conn, purged_contact_links, list(links.values()), LINK_COUNTS, keep=["destination"])
    add_to(
        conn,
        purged_timeline,
        [{"campaign_id": campaign_id, "bucket_ms": bucket, **{f: n[f] for f in TIMELINE_FIELDS}}
         for bucket, n in sorted(timeline.items())],
        TIMELINE_FIELDS,
    )  # fmt: skip
    add_to(
        conn,
        purged_reasons,
        [{"campaign_id": campaign_id, "reason_key": key_of(kind, verdict, reason), "kind": kind,
          "classification": verdict, "reason": reason, "events": n}
         for (kind, verdict, reason), n in sorted(reasons.items())],
        ["events"],
    )  # fmt: skip


def _upsert(
    conn: Connection,
    table: Any,
    rows: list[dict[str, Any]],
    counts: Sequence[str],
    keep: Sequence[str] = (),
    extra: Callable[[Any], dict[str, Any]] | None = None,
) -> None:
    """Insert rows, or add their `counts` to the row already there; `keep` columns keep the
    stored value unless it is null."""
    if not rows:
        return
    make = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = make(table)
    new = statement.excluded
    set_: dict[str, Any] = {field: table.c[field] + new[field] for field in counts}
    set_.update({field: func.coalesce(table.c[field], new[field]) for field in keep})
    if extra is not None:
        set_.update(extra(new))
    statement = statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns), set_=set_
    )
    conn.execute(statement, rows)


def _add_contacts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    # min() and max() of two arguments are scalar in SQLite; PostgreSQL calls them least()
    # and greatest(). Either way a null on one side means "no open there": take the other.
    postgres = conn.dialect.name == "postgresql"
    least, greatest = (func.least, func.greatest) if postgres else (func.min, func.max)
    c = purged_contacts.c

    def first_and_last(new: Any) -> dict[str, Any]:
        return {
            name: pick(func.coalesce(c[name], new[name]), func.coalesce(new[name], c[name]))
            for name, pick in (("first_open_ms", least), ("last_open_ms", greatest))
        }

    _upsert(conn, purged_contacts, rows, CONTACT_COUNTS, extra=first_and_last)


def _has_expired(conn: Connection, message_ids: Sequence[str], cutoff_ms: int) -> bool:
    query = select(_e.id).where(_e.message_id.in_(message_ids), _e.at_ms < cutoff_ms).limit(1)
    return conn.execute(query).first() is not None


def _purge_campaign(
    engine: Engine,
    campaign_id: str,
    cutoff_ms: int,
    batch: int,
    pause: float,
    stopping: Callable[[], bool],
) -> int:
    """Purge one campaign, a few hundred messages at a time: each write looks up only their
    events (events(message_id, at_ms)), so it stays short however large the campaign is, and
    messages with nothing left to purge cost a read, not a write."""
    with engine.connect() as conn:
        query = select(_m.id).where(_m.campaign_id == campaign_id).order_by(_m.id)
        message_ids = list(conn.execute(query).scalars())
    total = 0
    for start in range(0, len(message_ids), MESSAGES_PER_BATCH):
        chunk = message_ids[start : start + MESSAGES_PER_BATCH]
        with engine.connect() as conn:
            if not _has_expired(conn, chunk, cutoff_ms):
                continue
        while not stopping():
            with write_transaction(engine) as conn:
                deleted = purge_batch(conn, campaign_id, chunk, cutoff_ms, batch)
            total += deleted
            time.sleep(pause)
            if deleted < batch:
                break
        if stopping():
            break
    return total


def purge_expired_events(
    engine: Engine,
    *,
    at_ms: int | None = None,
    dry_run: bool = False,
    batch: int = BATCH,
    pause: float = PAUSE_SECONDS,
    stopping: Callable[[], bool] = lambda: False,
) -> list[AccountPurge]:
    """Purge (or, with `dry_run`, count) every account's events older than its retention, as
    of `at_ms` (now); one entry per account with a retention. Stops between batches when
    `stopping()` says so: what is left waits for the next run."""
    now = now_ms() if at_ms is None else at_ms
    with engine.connect() as conn:
        retained = _retained_accounts(conn)
    done: list[AccountPurge] = []
    for account_id, name, days in retained:
        cutoff = now - days * DAY_MS
        with engine.connect() as conn:
            campaign_ids = _campaign_ids(conn, account_id)
        total = 0
        for campaign_id in campaign_ids:
            if dry_run:
                with engine.connect() as conn:
                    total += count_expired(conn, campaign_id, cutoff)
            else:
                total += _purge_campaign(engine, campaign_id, cutoff, batch, pause, stopping)
        done.append(AccountPurge(account_id, name, days, cutoff, total))
    return done
