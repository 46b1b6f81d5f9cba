"""The pixeltrail server as one ASGI app: tracking routes first, then the rest; its lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.recording.flusher import Flusher
from pixeltrail.recording.spool import Spool
from pixeltrail.store.db import make_engine, upgrade
from pixeltrail.web.api.app import mounted_api
from pixeltrail.web.client_ip import ClientAddress
from pixeltrail.web.tracking import Receive, Scope, Send, TrackingApp

log = logging.getLogger("pixeltrail.server")
MIGRATE_TIMEOUT = 15.0


class Server:
    """Owns the spool, the flusher and the database engine for the life of the process."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.spool = Spool(settings.data_dir / "spool")
        self.flusher = Flusher(self.spool, self.engine)
        self.started = time.time()
        self.tracking = TrackingApp(
            signer=settings.signer(),
            spool=self.spool,
            client=ClientAddress(settings.trusted_proxies),
            health=self.health,
            inner=mounted_api(self.engine, settings),
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        spool, flusher = self.spool.health, self.flusher.health
        waiting = len(self.spool.ready_segments())
        report: dict[str, Any] = {
            "status": "ok",
            "spool": {
                "ok": spool.error is None,
                "error": spool.error,
                "in_memory": len(self.spool.fallback),
                "lost": spool.unwritten,
            },
            "database": {
                "ok": flusher.error is None,
                "error": flusher.error,
                "segments_waiting": waiting,
                "recorded": flusher.flushed,
                "lag_ms": flusher.last_lag_ms,
            },
        }
        ok = spool.error is None and spool.unwritten == 0 and flusher.error is None
        if not ok:
            report["status"] = "degraded"
        return ok, report

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
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
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._migrate()
                self.flusher.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.flusher.stop()
                self.engine.dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return
