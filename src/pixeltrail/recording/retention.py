"""The retention loop: every hour, the background process purges events past their retention,
and webhook delivery logs past theirs (platform/webhooks/retention.py)."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from pixeltrail.platform.webhooks.retention import purge_old_deliveries
from pixeltrail.store.event_retention import purge_expired_events

log = logging.getLogger("pixeltrail.retention")

PURGE_EVERY_SECONDS = 3600.0
# The first purge waits this long after start: the flusher takes what waited in the spool first.
FIRST_PURGE_AFTER_SECONDS = 60.0


class RetentionLoop:
    def __init__(
        self,
        engine: Engine,
        interval: float = PURGE_EVERY_SECONDS,
        first_after: float = FIRST_PURGE_AFTER_SECONDS,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.first_after = first_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Purge once (stopping between batches when asked to stop); returns events deleted.
        Webhook delivery logs are purged after the events."""
        done = purge_expired_events(self.engine, stopping=self._stop.is_set)
        for purge in done:
            if purge.events:
                log.info(
                    "account %s: %d event(s) older than %d days deleted",
                    purge.account_id,
                    purge.events,
                    purge.retention_days,
                )
        deliveries = purge_old_deliveries(self.engine, stopping=self._stop.is_set)
        if deliveries:
            log.info("%d webhook delivery log entr(ies) past their keep time deleted", deliveries)
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
