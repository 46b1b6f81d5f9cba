"""The HTTP process (`pixeltrail serve`): one ASGI app and its lifespan, built from the web layer.

It answers tracking routes, the API, unsubscribes and Caddy's question. Beside the event loop
it keeps only what must live there: the spool writer and its rotation, the served-hosts cache,
and the drainer of hits kept in memory when the spool could not take them. Everything else runs
in the background process (background_process.py), which `serve` starts as its child
(supervision.py), so it never competes with the event loop for the GIL.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.webhooks.events import enqueue_engagement
from pixeltrail.recording.flusher import FallbackDrainer
from pixeltrail.recording.spool import Spool, SpoolRotator
from pixeltrail.runtime.background_status import NOT_RUNNING, STALE_AFTER, STATUS_FILE, StatusReader
from pixeltrail.runtime.services import Service, hosts_file, spool_dir
from pixeltrail.runtime.supervision import BackgroundProcess, background_command
from pixeltrail.store.db import make_engine, upgrade
from pixeltrail.web.api.app import mounted_api
from pixeltrail.web.client_ip import ClientAddress
from pixeltrail.web.hosts import AllowedHosts
from pixeltrail.web.tracking import Receive, Scope, Send, TrackingApp
from pixeltrail.web.unsubscribe import unsubscribe_routes

log = logging.getLogger("pixeltrail.server")


MIGRATE_TIMEOUT = 15.0


class Server:
    """The HTTP process: owns the spool writer and the database engine for its life, and
    the background process when it started it."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        background: BackgroundProcess | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.spool = Spool(spool_dir(settings))
        self.drainer = FallbackDrainer(self.spool, self.engine, enqueue_engagement)
        self.background = background
        self.status = StatusReader(settings.data_dir / STATUS_FILE)
        self.started = time.time()
        signer = settings.signer()
        # Tracking links are answered only on the instance's host and served tracking domains.
        self.hosts = AllowedHosts(settings, self.engine, hosts_file(settings))
        # Started after migrations, stopped in reverse order (the drainer first).
        self.services: list[Service] = [self.hosts, SpoolRotator(self.spool), self.drainer]
        self.tracking = TrackingApp(
            signer=signer,
            spool=self.spool,
            client=ClientAddress(settings.trusted_proxies),
            health=self.health,
            hosts=self.hosts,
            inner=mounted_api(self.engine, settings, *unsubscribe_routes(self.engine, signer)),
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        spool, drainer = self.spool.health, self.drainer.health
        status, age = self.status.read()
        fresh = (
            status is not None
            and age is not None
            and age <= STALE_AFTER
            and bool(status.get("running"))
        )
        pid = status.get("pid") if status else None
        if self.background is not None:  # ours: its status, or just started
            running = self.background.alive() and (fresh or self.background.starting())
            pid = pid if fresh else self.background.pid
        else:  # run elsewhere (`serve --no-background`): its status only
            running = fresh
        # The flusher's state as of the last fresh status; nothing is known otherwise.
        recording: dict[str, Any] = dict(status.get("database") or {}) if fresh and status else {}
        error = recording.get("error") or drainer.problem()
        report: dict[str, Any] = {
            "status": "ok",
            "spool": {
                "ok": spool.error is None,
                "error": spool.error,
                "in_memory": len(self.spool.fallback),
                "lost": spool.unwritten,
            },
            "database": {
                "ok": error is None,
                "error": error,
                "segments_waiting": recording.get("segments_waiting", 0),
                "recorded": recording.get("recorded", 0) + drainer.flushed,
                "lag_ms": recording.get("lag_ms", 0),
            },
            "background": {
                "ok": running,
                "error": None if running else NOT_RUNNING,
                "pid": pid,
                "status_age_s": None if age is None else round(age, 1),
            },
        }
        ok = spool.error is None and spool.unwritten == 0 and error is None and running
        if not ok:
            report["status"] = "degraded"
        return ok, report

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # ASGI lifespan state, copied into every request's (request.state in the API):
            # the API refreshes the served hosts at once after a domain changes.
            scope.get("state", {})["domains_changed"] = self.hosts.reload
            await self._lifespan(receive, send)
        else:
            await self.tracking(scope, receive, send)

    async def _migrate(self) -> None:
        """Bring the schema up to date before the API answers; the flusher retries on failure."""
        try:
            await asyncio.wait_for(asyncio.to_thread(upgrade, self.engine), MIGRATE_TIMEOUT)
        except Exception as exc:
            log.error("database not ready at start-up (%s); tracking answers, events wait", exc)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        started: list[Service] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start(started)
                except Exception as exc:
                    # Said to the HTTP server, which then exits: granian would otherwise go on
                    # serving without the lifespan (no spool rotation, no background process).
                    log.exception("start-up failed")
                    await self._stop(started)
                    await send(
                        {"type": "lifespan.startup.failed", "message": f"start-up failed: {exc}"}
                    )
                    return
                # What start-up made (the API, SQLAlchemy, the servers' own) lives as long as
                # the process: the collector stops scanning it, so a full collection, which
                # otherwise walks ~130,000 objects for tens of ms, no longer stalls answers.
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop(started)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self, started: list[Service]) -> None:
        if self.background is not None:
            # Not waited for: the tracking routes need nothing from it.
            self.background.start()
        await self._migrate()
        for service in self.services:
            service.start()
            started.append(service)

    async def _stop(self, started: list[Service]) -> None:
        for service in reversed(started):
            await asyncio.to_thread(service.stop)
        # Last: its final flush takes the segment the spool has just closed.
        if self.background is not None:
            await asyncio.to_thread(self.background.stop)
        self.engine.dispose()


def http_process(settings: Settings, log_level: str, background: bool = True) -> Server:
    """The app of `pixeltrail serve`, which starts the background process beside itself (and
    stops it with itself) unless `background` is False (`serve --no-background`)."""
    child = None
    if background:
        child = BackgroundProcess(background_command(log_level), settings.data_dir / STATUS_FILE)
    return Server(settings, background=child)
