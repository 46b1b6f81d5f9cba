"""Sending webhooks: Standard Webhooks signatures, and the worker that delivers and retries.

A delivery is tried as soon as it is due, then after 5 s, 5 min, 30 min, 2 h, 5 h and 10 h
(each with up to 10 % jitter), with one last try 24 h after it was queued; then it is
`failed`. Only a 2xx answer counts; redirects are not followed; 410 Gone stops the retries.
Every attempt sends the same id and body with a fresh timestamp and signature.

Claiming: a worker takes due deliveries in a short transaction (FOR UPDATE SKIP LOCKED on
PostgreSQL, the single writer lock on SQLite) and leases them by moving their next attempt a
minute ahead, then sends outside any transaction. Several servers share the queue; a worker
that dies mid-send leaves the lease to expire and the delivery is tried again (at least once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, select, update

from pixeltrail import __version__
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.secretbox import SecretBox, SecretUnreadable
from pixeltrail.platform.webhooks.events import MESSAGE_CLICKED, MESSAGE_OPENED
from pixeltrail.platform.webhooks.status import DeliveryStatus
from pixeltrail.platform.webhooks.urls import (
    Resolver,
    UnsafeAddress,
    checked_addresses,
    pinned_target,
    resolve,
)
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import events, webhook_deliveries, webhook_endpoints
from pixeltrail.tracking.hits import COUNTED_AS_OPEN

log = logging.getLogger("pixeltrail.webhooks")

BACKOFF_MS = (5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000)
GIVE_UP_AFTER_MS = 24 * 3600 * 1000
LEASE_MS = 60_000
TIMEOUT_SECONDS = 10.0
BATCH = 32
CONCURRENCY = 8
ERROR_SNIPPET = 200


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` and base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under the decoded secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON, the same on every attempt."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Due:
    id: str
    endpoint_id: str
    url: str
    secret_encrypted: str
    payload: dict[str, Any]
    attempts: int
    created_at_ms: int


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    error: str | None = None
    retry_after_ms: int | None = None
    final: bool = False  # no retries (410 Gone)

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDeliverer:
    """The delivery worker: one thread polling the queue, a few more sending concurrently."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        *,
        allow_local: bool = False,
        backoff_ms: Sequence[int] = BACKOFF_MS,
        give_up_after_ms: int = GIVE_UP_AFTER_MS,
        jitter: float = 0.1,
        clock: Callable[[], int] = now_ms,
        interval: float = 1.0,
        timeout: float = TIMEOUT_SECONDS,
        resolver: Resolver = resolve,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.engine = engine
        self.box = box
        self.allow_local = allow_local
        self.backoff_ms = tuple(backoff_ms)
        self.give_up_after_ms = give_up_after_ms
        self.jitter = jitter
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self.resolver = resolver
        self.error: str | None = None
        # No connection reuse: each request connects to an address checked for it alone.
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            verify=verify,
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"user-agent": f"pixeltrail-webhooks/{__version__}"},
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)
        self._client.close()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception as exc:  # the database is down or not migrated yet: retry later
                failures += 1
                self.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                log.error("webhook deliveries wait: %s", self.error)
                self._stop.wait(min(30.0, 0.5 * 2**failures))
                continue
            failures, self.error = 0, None
            if not sent:
                self._stop.wait(self.interval)

    def run_once(self) -> int:
        """Claim due deliveries, send them, record the outcomes; returns how many were sent."""
        d = webhook_deliveries.c
        due_now = select(d.id).where(
            d.status == DeliveryStatus.PENDING, d.next_attempt_at_ms <= self.clock()
        )
        # A plain read first: an idle queue never takes SQLite's write lock.
        with self.engine.connect() as conn:
            if conn.execute(due_now.limit(1)).first() is None:
                return 0
        with write_transaction(self.engine) as conn:
            due = self.claim(conn, self.clock())
        if not due:
            return 0
        with ThreadPoolExecutor(min(CONCURRENCY, len(due))) as pool:
            outcomes = list(pool.map(self.send, due))
        with write_transaction(self.engine) as conn:
            for delivery, outcome in zip(due, outcomes, strict=True):
                self.record(conn, delivery, outcome, self.clock())
        return len(due)

    def claim(self, conn: Connection, now: int) -> list[Due]:
        d, e = webhook_deliveries.c, webhook_endpoints.c
        query = (
            select(d.id)
            .where(d.status == DeliveryStatus.PENDING, d.next_attempt_at_ms <= now)
            .order_by(d.next_attempt_at_ms)
            .limit(BATCH)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = [row.id for row in conn.execute(query)]
        if not ids:
            return []
        rows = conn.execute(
            select(
                d.id,
                d.endpoint_id,
                d.event_type,
                d.payload,
                d.attempts,
                d.created_at_ms,
                e.url,
                e.secret_encrypted,
            )
            .join(webhook_endpoints, e.id == d.endpoint_id)
            .where(d.id.in_(ids))
        ).all()
        cancelled = _reclassified(conn, rows)
        for delivery_id, reason in cancelled.items():
            conn.execute(
                update(webhook_deliveries)
                .where(d.id == delivery_id)
                .values(status=DeliveryStatus.CANCELLED, next_attempt_at_ms=None, last_error=reason)
            )
        claimed = [r for r in rows if r.id not in cancelled]
        if claimed:
            conn.execute(
                update(webhook_deliveries)
                .where(d.id.in_([r.id for r in claimed]))
                .values(next_attempt_at_ms=now + LEASE_MS)
            )
        return [
            Due(
                r.id,
                r.endpoint_id,
                r.url,
                r.secret_encrypted,
                r.payload,
                r.attempts,
                r.created_at_ms,
            )
            for r in claimed
        ]

    def send(self, due: Due) -> Outcome:
        """One attempt: resolve and check the host, POST the signed body, read the status."""
        try:
            secret = self.box.decrypt(due.secret_encrypted)
        except SecretUnreadable as exc:
            return Outcome(error=f"cannot sign: {exc}")
        body = body_of(due.payload)
        timestamp = self.clock() // 1000
        headers = {
            "content-type": "application/json",
            "webhook-id": due.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, due.id, timestamp, body),
        }
        try:
            parts, addresses = checked_addresses(due.url, self.allow_local, self.resolver)
        except UnsafeAddress as exc:
            return Outcome(error=str(exc))
        except OSError as exc:
            return Outcome(error=f"cannot resolve {_host(due.url)}: {exc.strerror or exc}")
        last_error = "no address to connect to"
        for address in addresses:  # the next address only when connecting fails
            target, host, server_name = pinned_target(parts, address)
            try:
                return self._post(target, {**headers, "host": host}, body, server_name)
            except httpx.ConnectError as exc:
                last_error = f"cannot connect to {address}: {exc}"
            except httpx.TimeoutException:
                return Outcome(error=f"no answer within {self.timeout:g} s")
            except httpx.HTTPError as exc:
                return Outcome(error=f"{type(exc).__name__}: {exc}"[:300])
        return Outcome(error=last_error[:300])

    def _post(
        self, target: str, headers: dict[str, str], body: bytes, server_name: str | None
    ) -> Outcome:
        extensions = {"sni_hostname": server_name} if server_name else None
        request = self._client.build_request(
            "POST", target, headers=headers, content=body, extensions=extensions
        )
        response = self._client.send(request, stream=True)
        try:
            code = response.status_code
            if 200 <= code < 300:
                return Outcome(code)
            snippet = b""
            for chunk in response.iter_raw():
                snippet += chunk
                if len(snippet) >= ERROR_SNIPPET:
                    break
            text = snippet[:ERROR_SNIPPET].decode("utf-8", "replace").strip()
            error = f"HTTP {code}" + (f": {text}" if text else "")
            return Outcome(code, error, _retry_after_ms(response), final=code == 410)
        finally:
            response.close()

    def record(self, conn: Connection, due: Due, outcome: Outcome, now: int) -> None:
        d = webhook_deliveries.c
        attempts = due.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status_code": outcome.status_code}
        if outcome.delivered:
            values |= {
                "status": DeliveryStatus.DELIVERED,
                "delivered_at_ms": now,
                "last_error": None,
            }
            values["next_attempt_at_ms"] = None
        else:
            values["last_error"] = outcome.error
            deadline = due.created_at_ms + self.give_up_after_ms
            delay = self.backoff_ms[min(attempts, len(self.backoff_ms)) - 1]
            delay += secrets.randbelow(int(delay * self.jitter) + 1)
            delay = max(delay, outcome.retry_after_ms or 0)
            if outcome.final or now >= deadline:
                values |= {"status": DeliveryStatus.FAILED, "next_attempt_at_ms": None}
            else:
                values["next_attempt_at_ms"] = min(now + delay, deadline)
            log.info("webhook %s to %s: %s", due.id, _host(due.url), outcome.error)
        # Not if it was removed or retried by hand meanwhile.
        conn.execute(
            update(webhook_deliveries)
            .where(d.id == due.id, d.status == DeliveryStatus.PENDING, d.attempts == due.attempts)
            .values(**values)
        )


def _host(url: str) -> str:
    return httpx.URL(url).host


def _retry_after_ms(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    return int(value) * 1000 if value.isdigit() else None


def _reclassified(conn: Connection, rows: Sequence[Any]) -> dict[str, str]:
    """Opens and clicks no longer counted as a person's since they were queued, with why."""
    event_of = {
        r.id: r.payload.get("data", {}).get("event_id")
        for r in rows
        if r.event_type in {MESSAGE_OPENED, MESSAGE_CLICKED}
    }
    wanted = {event_id for event_id in event_of.values() if event_id}
    if not wanted:
        return {}
    verdicts = {
        row.id: (row.classification, row.reason)
        for row in conn.execute(
            select(events.c.id, events.c.classification, events.c.reason).where(
                events.c.id.in_(wanted)
            )
        )
    }
    cancelled = {}
    for delivery_id, event_id in event_of.items():
        verdict = verdicts.get(event_id)
        if verdict is not None and verdict[0] not in COUNTED_AS_OPEN:
            cancelled[delivery_id] = f"not sent: reclassified as {verdict[0]} ({verdict[1]})"
    return cancelled
