"""The pixeltrail server as one ASGI app: tracking routes first, then the rest; its lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.dns_check import CnameResolver
from pixeltrail.platform.secretbox import SecretBox
from pixeltrail.platform.webhook_delivery import WebhookDeliverer
from pixeltrail.recording.flusher import Flusher
from pixeltrail.recording.spool import Spool
from pixeltrail.sending.scheduling_loop import SchedulingLoop
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import make_engine, upgrade
from pixeltrail.web.api.app import mounted_api
from pixeltrail.web.client_ip import ClientAddress
from pixeltrail.web.hosts import AllowedHosts, DomainRechecker
from pixeltrail.web.tracking import Receive, Scope, Send, TrackingApp
from pixeltrail.web.unsubscribe import unsubscribe_routes

log = logging.getLogger("pixeltrail.server")


class Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


MIGRATE_TIMEOUT = 15.0


class Server:
    """Owns the spool, the flusher and the database engine for the life of the process."""

    def __init__(
        self, settings: Settings, engine: Engine | None = None, sending: bool = True
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.spool = Spool(settings.data_dir / "spool")
        self.flusher = Flusher(self.spool, self.engine)
        self.started = time.time()
        signer = settings.signer()
        # Background services, started after migrations and stopped in reverse order.
        self.services: list[Service] = [self.flusher]
        if sending:
            self.services += [
                SchedulingLoop(self.engine, settings),
                SendWorker(self.engine, settings, signer),
            ]
        # Tracking links are answered only on the instance's host and served tracking domains.
        self.hosts = AllowedHosts(settings, self.engine, settings.data_dir / "tracking-hosts.json")
        self.services += [
            self.hosts,
            DomainRechecker(self.engine, CnameResolver.from_settings(settings), self.hosts.reload),
        ]
        self.webhooks = WebhookDeliverer(
            self.engine, SecretBox(settings.key_ring()), allow_local=settings.webhooks_allow_local
        )
        self.services.append(self.webhooks)
        self.tracking = TrackingApp(
            signer=signer,
            spool=self.spool,
            client=ClientAddress(settings.trusted_proxies),
            health=self.health,
            hosts=self.hosts,
            inner=mounted_api(self.engine, settings, *unsubscribe_routes(self.engine, signer)),
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
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._migrate()
                for service in self.services:
                    service.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for service in reversed(self.services):
                    await asyncio.to_thread(service.stop)
                self.engine.dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return
