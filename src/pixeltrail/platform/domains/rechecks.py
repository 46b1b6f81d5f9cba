"""The periodic re-checks of tracking domains' DNS, run by the background process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from pixeltrail.platform.domains.checks import recheck_domains
from pixeltrail.platform.domains.dns_check import CnameResolver

log = logging.getLogger("pixeltrail.hosts")

RECHECK_SECONDS = 60.0


class DomainRechecker:
    """Re-checks tracking domains' DNS in the background: verified ones every 6 hours, the
    others every 10 minutes (see `domain_checks`), and tells `changed` when any moved."""

    def __init__(
        self,
        engine: Engine,
        resolver: CnameResolver,
        changed: Callable[[], object],
        interval: float = RECHECK_SECONDS,
    ) -> None:
        self.engine = engine
        self.resolver = resolver
        self.changed = changed
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-recheck", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # A DNS look-up under way may take its few seconds; it is abandoned, not awaited.
            self._thread.join(1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                moved = recheck_domains(self.engine, self.resolver, stopping=self._stop.is_set)
                for domain in moved:
                    log.info("tracking domain %s is now %s", domain.hostname, domain.status)
                if moved:
                    self.changed()
            except Exception as exc:
                log.warning("tracking domain re-check postponed: %s", exc)
