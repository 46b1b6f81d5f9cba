"""The flusher: moves spooled hits into the database in batches, classified, exactly once.

A segment is deleted only after the transaction holding its events has committed; a crash
in between replays it, and the insert ignores event ids already stored. When the database
is unavailable the flusher backs off and retries while segments wait on disk.

The flusher runs in the background process, never in the HTTP process, where it would compete
with the event loop for the GIL. The HTTP process keeps only the `FallbackDrainer`: hits it could
not spool (full disk) exist only in its memory, so only it can write them to the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Connection, Engine

from pixeltrail.recording.spool import Spool, read_segment
from pixeltrail.store.db import upgrade, write_transaction
from pixeltrail.store.events import (
    insert_events,
    older_events,
    recent_and_human_opens,
    update_verdicts,
)
from pixeltrail.store.ip_ranges import ranges
from pixeltrail.store.message_context import MessageContext, message_contexts
from pixeltrail.store.report_aggregates import record_report_changes, take_recording_turn
from pixeltrail.tracking.classify import Rules, classify_message
from pixeltrail.tracking.hits import Classification, Event, Hit, Verdict, anonymize_ip, now_ms

log = logging.getLogger("pixeltrail.flusher")

APPLE_SOURCE = "apple_mpp"
RULES_REFRESH_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 30.0
BATCH_HITS = 20_000
# A write waiting this long for the database (its lock, a connection) is reported, before
# it fails: SQLite's busy timeout and TCP's are longer than anyone should wait to be told.
SLOW_WAIT_SECONDS = 5.0

# What recording tells of the events it has just stored (new ones, with their messages'
# contexts), in the same transaction: the webhooks' `enqueue_engagement`, handed in by the
# process that records.
Engagement = Callable[[Connection, Sequence[Event], Mapping[str, MessageContext]], object]


@dataclass
class FlusherHealth:
    error: str | None = None
    error_since: float | None = None
    flushed: int = 0
    last_lag_ms: int = 0
    unreadable_lines: int = 0
    waiting_since: float | None = None  # for the database to start a write transaction

    def problem(self) -> str | None:
        """The last failure, or a write that has been waiting too long; None when fine."""
        if self.error is not None:
            return self.error
        since = self.waiting_since
        if since is not None and (waited := time.time() - since) > SLOW_WAIT_SECONDS:
            return f"database not taking writes: waiting for {waited:.0f} s (locked?)"
        return None


def astuple_verdict(verdict: Verdict) -> tuple[str, str]:
    return verdict.classification, verdict.reason


def record_hits(conn: Connection, hits: Sequence[Hit], rules: Rules, engagement: Engagement) -> int:
    """Classify and store hits (idempotent on their ids), and tell `engagement` of the new
    ones; returns how many were new."""
    take_recording_turn(conn)
    incoming: dict[str, dict[str, Hit]] = defaultdict(dict)
    for hit in hits:
        incoming[hit.message_id][hit.id] = hit
    stored, readers, judged = _around(conn, incoming, rules)
    contexts = message_contexts(conn, list(incoming))
    new: list[Event] = []
    changed: list[tuple[str, Verdict]] = []
    for message_id, message_hits in incoming.items():
        context = contexts.get(message_id)
        anonymize = context is not None and context.anonymize_ips
        known = stored[message_id]
        known_ids = {e.hit.id for e in known}
        fresh = [h for h in message_hits.values() if h.id not in known_ids]
        # The hits around the new ones are judged again: a honeypot click now can turn
        # clicks recorded a few seconds ago into a scanner's.
        verdicts = classify_message(
            [e.hit for e in known] + fresh,
            rules,
            sent_at_ms=context.sent_at_ms if context else None,
            link_count=context.link_count if context else None,
            destination_count=context.destination_count if context else None,
            reader=readers.get(message_id),
            judged=judged.get(message_id),
        )
        new += [
            Event(
                replace(h, ip=anonymize_ip(h.ip)) if anonymize else h,
                verdicts[h.id].classification,
                verdicts[h.id].reason,
            )
            for h in fresh
        ]
        changed += [
            (e.hit.id, verdicts[e.hit.id])
            for e in known
            if e.hit.id in verdicts
            and (e.classification, e.reason) != astuple_verdict(verdicts[e.hit.id])
            # Stored addresses of an anonymising account are cut to their network, so an
            # address-range verdict cannot be re-derived: only retroactive machine rules
            # (honeypot, bursts) may change what was recorded as human.
            and (not anonymize or e.classification == Classification.HUMAN)
        ]
    inserted = insert_events(conn, new)
    if changed:
        update_verdicts(conn, changed)
    # Campaign reports follow the events and their verdicts, in this same transaction.
    record_report_changes(conn, stored, new, changed)
    # Webhooks for the opens and clicks counted as a person's, in this same transaction.
    engagement(conn, new, contexts)
    return inserted


def _around(
    conn: Connection, incoming: Mapping[str, Mapping[str, Hit]], rules: Rules
) -> tuple[dict[str, list[Event]], dict[str, Hit], dict[str, tuple[int, int]]]:
    """What judging new hits takes from the stored events, by message: the events that may
    change or matter, the reader (first human open) when it is older than all of those, and
    the span of times to judge.

    A verdict depends on the hits within `reach` of it (honeypot window, bursts) and on the
    reader: new hits can change the stored verdicts within `reach` of them, which are judged
    with their own neighbours, within 2 x `reach`. A message whose reader is not older than
    that (the new hits may change who it is) is judged whole: a batch costs what its hits
    touch, not the messages' whole history.
    """
    reach = rules.reach_ms
    spans = {
        message_id: (
            min(h.at_ms for h in hits.values()) - reach,
            max(h.at_ms for h in hits.values()) + reach,
        )
        for message_id, hits in incoming.items()
    }
    since = min(first for first, _ in spans.values()) - reach
    loaded: dict[str, list[Event]] = defaultdict(list)
    for event in recent_and_human_opens(conn, list(incoming), since):
        loaded[event.hit.message_id].append(event)
    stored: dict[str, list[Event]] = defaultdict(list)
    readers: dict[str, Hit] = {}
    judged: dict[str, tuple[int, int]] = {}
    whole: list[str] = []
    for message_id, (first, last) in spans.items():
        events = loaded[message_id]
        reader = next(
            (
                e.hit
                for e in events
                if e.hit.kind == "open" and e.classification == Classification.HUMAN
            ),
            None,
        )
        if reader is not None and reader.at_ms >= first:
            whole.append(message_id)
            stored[message_id] = events
            continue
        if reader is not None:
            readers[message_id] = reader
        judged[message_id] = (first, last)
        stored[message_id] = [e for e in events if first - reach <= e.hit.at_ms <= last + reach]
    for event in older_events(conn, whole, since):
        stored[event.hit.message_id].append(event)
    return stored, readers, judged


class Recorder:
    """Records hits in the database: the classification rules (refreshed every minute), the
    schema brought up to date once, and the health report of what it did."""

    def __init__(self, engine: Engine, engagement: Engagement) -> None:
        self.engine = engine
        self.engagement = engagement
        self.health = FlusherHealth()
        self._rules: Rules | None = None
        self._rules_at = 0.0
        self._schema_ready = False

    def rules(self, conn: Connection) -> Rules:
        if self._rules is None or time.monotonic() - self._rules_at > RULES_REFRESH_SECONDS:
            self._rules = Rules.load(apple_ranges=ranges(conn, APPLE_SOURCE))
            self._rules_at = time.monotonic()
        return self._rules

    def ensure_schema(self) -> None:
        if not self._schema_ready:
            # Here, not at start-up: the server answers even while the database is down.
            upgrade(self.engine)
            self._schema_ready = True

    def record(self, hits: list[Hit]) -> int:
        """Classify and store `hits` in one transaction; returns how many were new."""
        self.health.waiting_since = time.time()
        try:
            with write_transaction(self.engine) as conn:
                self.health.waiting_since = None
                inserted = record_hits(conn, hits, self.rules(conn), self.engagement)
        finally:
            self.health.waiting_since = None
        self.health.flushed += inserted
        if hits:
            self.health.last_lag_ms = now_ms() - min(h.at_ms for h in hits)
        return inserted

    def failed(self, exc: Exception) -> None:
        if self.health.error is None:
            self.health.error_since = time.time()
        self.health.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        # Pooled connections may be dead (server restarted) or stuck read-only: the next
        # attempt starts from fresh ones.
        self.engine.dispose()

    def recovered(self) -> None:
        self.health.error = self.health.error_since = None


class Flusher(Recorder):
    """Takes the spool's ready segments (and dead writers' open ones) into the database."""

    def __init__(
        self, spool: Spool, engine: Engine, engagement: Engagement, interval: float = 0.2
    ) -> None:
        super().__init__(engine, engagement)
        self.spool = spool
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-flusher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop, after one last flush of what is spooled (if the database takes it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.spool.close()
        try:
            self.flush_once()
        except Exception as exc:
            log.warning("events left in the spool for the next start: %s", exc)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.flush_once()
            except Exception as exc:  # any database failure: retry later
                failures += 1
                self.failed(exc)
                log.error("cannot record events (they wait in the spool): %s", self.health.error)
                self._stop.wait(min(MAX_BACKOFF_SECONDS, 0.25 * 2**failures))
                continue
            if failures:
                log.warning("database reachable again; spooled events are being recorded")
                failures = 0
                self.recovered()
            self._stop.wait(self.interval)

    def flush_once(self) -> int:
        """Record every ready segment (after taking dead writers' ones); returns events newly
        stored. Rotates the spool first, which only matters when this process writes to it."""
        self.ensure_schema()
        self.spool.rotate()
        try:
            if found := self.spool.recover():
                log.info("took %d spool segment(s) of a server that stopped", found)
        except OSError as exc:  # the spool directory itself: /healthz reports the writer's
            log.warning("spool segments not recovered: %s", exc)
        total = 0
        batch: list[Hit] = []
        paths: list[Path] = []
        for path in self.spool.ready_segments():
            hits, bad = read_segment(path)
            if bad:
                self.health.unreadable_lines += bad
                log.error("%d unreadable line(s) in spool segment %s", bad, path.name)
            batch += hits
            paths.append(path)
            if len(batch) >= BATCH_HITS:
                total += self._commit(batch, paths)
                batch, paths = [], []
        total += self._commit(batch, paths)
        return total

    def _commit(self, hits: list[Hit], paths: list[Path]) -> int:
        if not paths:
            return 0
        inserted = self.record(hits)
        for path in paths:
            path.unlink(missing_ok=True)
        return inserted


class FallbackDrainer(Recorder):
    """Writes the hits the spool kept in memory (it could not write them) to the database.

    Lives in the HTTP process, where those hits are, and sleeps until the spool has some.
    """

    def __init__(self, spool: Spool, engine: Engine, engagement: Engagement) -> None:
        super().__init__(engine, engagement)
        self.spool = spool
        self._lock = threading.Lock()  # one drain at a time: each pops what it recorded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-drain", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop, after one last attempt; hits still in memory then are lost, loudly."""
        self._stop.set()
        self.spool.fallback_waiting.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.spool.fallback:
            try:
                self.drain_once()
            except Exception as exc:
                log.error(
                    "%d hit(s) kept in memory could not be recorded and are lost: %s",
                    len(self.spool.fallback),
                    exc,
                )

    def _run(self) -> None:
        failures = 0
        waiting = self.spool.fallback_waiting
        while True:
            waiting.wait()
            if self._stop.is_set():
                return
            waiting.clear()  # before draining: a hit kept meanwhile sets it again
            try:
                self.drain_once()
            except Exception as exc:
                failures += 1
                self.failed(exc)
                log.error("cannot record hits kept in memory: %s", self.health.error)
                waiting.set()
                self._stop.wait(min(MAX_BACKOFF_SECONDS, 0.25 * 2**failures))
                continue
            if failures:
                failures = 0
                self.recovered()

    def drain_once(self) -> int:
        with self._lock:
            fallback = self.spool.fallback
            if not fallback:
                return 0
            self.ensure_schema()
            hits = list(fallback)
            inserted = self.record(hits)
            for _ in hits:  # hits kept meanwhile were appended after these
                fallback.popleft()
            return inserted
