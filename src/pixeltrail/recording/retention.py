"""The retention loop: every hour, the background process purges events past their retention,
then what is kept no longer than they are (webhook delivery logs), by the purges handed in."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from sqlalchemy import Engine

from pixeltrail.store.event_retention import purge_expired_events

log = logging.getLogger("pixeltrail.retention")

PURGE_EVERY_SECONDS = 3600.0
# The first purge waits this long after start: the flusher takes what waited in the spool first.
FIRST_PURGE_AFTER_SECONDS = 60.0


class Purge(Protocol):
    """Deletes rows past their keep time, stopping between batches when `stopping()` says so;
    returns how many it deleted."""

    def __call__(self, engine: Engine, *, stopping: Callable[[], bool]) -> int: ...


class RetentionLoop:
    """Purges expired events, then runs `after_events`: each purge by what the log calls the
    rows it deletes ("webhook delivery log entr(ies) past their keep time")."""

    def __init__(
        self,
        engine: Engine,
        after_events: Mapping[str, Purge],
        interval: float = PURGE_EVERY_SECONDS,
        first_after: float = FIRST_PURGE_AFTER_SECONDS,
    ) -> None:
        self.engine = engine
        self.after_events = dict(after_events)
        self.interval = interval
        self.first_after = first_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Purge once (stopping between batches when asked to stop); returns events deleted.
        The purges of `after_events` run after the events'."""
        done = purge_expired_events(self.engine, stopping=self._stop.is_set)
        for purge in done:
            if purge.events:
                log.info(
                    "account %s: %d event(s) older than %d days deleted",
                    purge.account_id,
                    purge.events,
                    purge.retention_days,
                )
        for rows, purge_rows in self.after_events.items():
            if deleted := purge_rows(self.engine, stopping=self._stop.is_set):
                log.info("%d %s deleted", deleted, rows)
        return sum(purge.events for purge in done)

    def _run(self) -> None:
        wait = self.first_after
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                self.run_once()
            except Exception as exc:  # the database may be down: the next hour retries
                log.warning("event retention purge postponed: %s", exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
