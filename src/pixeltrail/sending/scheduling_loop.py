"""The scheduler's loop: every few seconds, schedule what is due and close finished campaigns."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.campaigns.scheduler import finish_campaigns, schedule_due
from pixeltrail.store.db import write_transaction

log = logging.getLogger("pixeltrail.scheduler")


class SchedulingLoop:
    def __init__(self, engine: Engine, settings: Settings, interval: float = 5.0) -> None:
        self.engine = engine
        self.settings = settings
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        with write_transaction(self.engine) as conn:
            created = schedule_due(conn, self.settings)
            finish_campaigns(conn)
        return created

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                created = self.run_once()
                if created:
                    log.info("scheduled %d message(s)", created)
            except Exception:  # the database may be down: the next pass retries
                log.exception("scheduling pass failed")
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
