"""The background process (`pixeltrail background`, which `serve` starts as its child): built
from the flusher, the scheduler, a send worker, the INBOX reader, domain re-checks, webhook
deliveries and the retention purge; it writes its status for the HTTP process's /healthz
(background_status.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.domains.dns_check import CnameResolver
from pixeltrail.platform.domains.rechecks import DomainRechecker
from pixeltrail.platform.secretbox import SecretBox
from pixeltrail.platform.webhooks.delivery import WebhookDeliverer
from pixeltrail.platform.webhooks.events import enqueue_engagement
from pixeltrail.platform.webhooks.retention import purge_old_deliveries
from pixeltrail.receiving.reader import InboxReader
from pixeltrail.recording.flusher import Flusher
from pixeltrail.recording.retention import Purge, RetentionLoop
from pixeltrail.recording.spool import Spool
from pixeltrail.runtime.background_status import STATUS_FILE, STATUS_TICK, StatusWriter
from pixeltrail.runtime.services import Service, hosts_file, spool_dir
from pixeltrail.runtime.supervision import YieldingPriority, exit_with_parent
from pixeltrail.sending.scheduling_loop import SchedulingLoop
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import make_engine, upgrade
from pixeltrail.web.hosts import AllowedHosts

log = logging.getLogger("pixeltrail.server")

# Kept no longer than the events they tell of: purged after them, every hour.
PURGED_AFTER_EVENTS: Mapping[str, Purge] = {
    "webhook delivery log entr(ies) past their keep time": purge_old_deliveries,
}


class Priority(Protocol):
    """The background process's CPU priority, told when it has started and when it stops
    (`YieldingPriority`)."""

    def started(self) -> None: ...

    def stopping(self) -> None: ...


class Background:
    """The background process: records spooled hits, schedules and sends messages, reads
    mailboxes' INBOXes (replies, bounces), re-checks
    tracking domains, delivers webhooks and purges expired events; writes its status for the
    HTTP process."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        # The same spool directory, read here: ready segments, and dead writers' open ones.
        self.spool = Spool(spool_dir(settings))
        self.flusher = Flusher(self.spool, self.engine, enqueue_engagement)
        # Not started: a re-check that changes the served hosts rewrites the hosts file,
        # which the HTTP process watches, so it serves the change at once.
        hosts = AllowedHosts(settings, self.engine, hosts_file(settings))
        self.services: list[Service] = [
            self.flusher,
            SchedulingLoop(self.engine, settings),
            SendWorker(self.engine, settings, settings.signer()),
            InboxReader.from_settings(self.engine, settings),
            DomainRechecker(
                self.engine,
                CnameResolver.from_settings(settings),
                lambda: hosts.reload(force_write=True),
            ),
            WebhookDeliverer(
                self.engine,
                SecretBox(settings.key_ring()),
                allow_local=settings.webhooks_allow_local,
            ),
            RetentionLoop(self.engine, PURGED_AFTER_EVENTS),
        ]
        self.status = StatusWriter(settings.data_dir / STATUS_FILE)
        self.started = time.time()

    def report(self, running: bool = True) -> dict[str, Any]:
        health = self.flusher.health
        return {
            "pid": os.getpid(),
            "running": running,
            "started_at": self.started,
            "database": {
                "ok": health.problem() is None,
                "error": health.problem(),
                "error_since": health.error_since or health.waiting_since,
                "segments_waiting": len(self.spool.ready_segments()),
                "recorded": health.flushed,
                "lag_ms": health.last_lag_ms,
                "unreadable_lines": health.unreadable_lines,
            },
        }

    def run(
        self,
        stop: threading.Event,
        parent_pid: int | None = None,
        priority: Priority | None = None,
    ) -> None:
        """Run until `stop` is set (or the parent process, if given, is gone), telling
        `priority` once every service has started and when stopping begins."""
        started: list[Service] = []

        def start_services() -> None:
            try:
                upgrade(self.engine)
            except Exception as exc:
                log.error("database not ready at start-up (%s); events wait in the spool", exc)
            for service in self.services:
                if stop.is_set():
                    return
                service.start()
                started.append(service)
            if priority is not None:
                priority.started()

        # Started aside: the status is written from the first moment, even while the
        # migration waits on the database.
        starter = threading.Thread(target=start_services, name="pixeltrail-start", daemon=True)
        starter.start()
        try:
            while True:
                self.status.write(self.report())
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.error("the server process is gone: stopping")
                    break
                if stop.wait(STATUS_TICK):
                    break
        finally:
            stop.set()
            starter.join()  # after which `priority.started` is done with, if it ran
            if priority is not None:
                priority.stopping()
            for service in reversed(started):
                service.stop()
            if self.flusher not in started:  # stopped while starting: still the last flush
                self.flusher.stop()
            self.status.write(self.report(running=False), final=True)
            self.engine.dispose()


def run_background_process(
    settings: Settings, stop: threading.Event, parent_pid: int | None = None
) -> None:
    """Run the background process until `stop` is set; started by `serve` (`parent_pid`), it
    yields the CPU to the HTTP process and stops when that process is gone."""
    priority = None
    if parent_pid is not None:  # started by `serve`: readers' answers come first
        priority = YieldingPriority()
        priority.starting()
        if not exit_with_parent(parent_pid):
            stop.set()  # the server is gone already: only the last flush
    Background(settings).run(stop, parent_pid, priority)
