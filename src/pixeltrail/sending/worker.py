"""The send worker: claims due messages, composes them, hands them to a mailer, records outcomes.

At most once, and nothing lost but what is in flight: a worker claims a batch (`claimed`);
each of its connections marks the message it is about to send `sending` (the intent, written
while the server takes the envelope and committed before the message's DATA) and the outcome
once the server has answered. Those
writes are coalesced: every transaction carries the intents that are waiting and the outcomes
gathered since the last one, so a worker writes far less often than once per message and
never marks a message before a connection is ready to send it. Claims carry a lease (renewed as
the worker goes). When a worker dies, its `claimed` messages go back to `scheduled` once the
lease runs out (they were never tried); a message left `sending` may or may not have reached
the server, so it is marked `failed` with that reason and never retried. Those in flight at
that instant (at most CONCURRENCY, one per connection) are the price of never sending twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import Connection, Engine

from pixeltrail.config import Settings
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.mailboxes import mailbox_endpoint
from pixeltrail.platform.smtp_urls import SmtpEndpoint
from pixeltrail.platform.webhook_events import MESSAGE_SENT, subscribers
from pixeltrail.sending.claims import (
    BATCH,
    LEASE_RENEWAL_MS,
    SENDING_LEASE_MS,
    Claimed,
    claim,
    mark_sending,
    reconcile,
)
from pixeltrail.sending.compose import BatchComposer, Prepared
from pixeltrail.sending.mailers import DeliveryError, Mailer, OutboxMailer, SmtpMailer
from pixeltrail.sending.outcomes import Outcome, record_outcomes
from pixeltrail.store.db import SQLITE_BEGIN, write_transaction
from pixeltrail.tracking.tokens import TokenSigner

# The queue's own functions live in claims.py; these names stay importable from here.
__all__ = [
    "CONCURRENCY",
    "SENDING_LEASE_MS",
    "Claimed",
    "SendWorker",
    "claim",
    "mark_sending",
    "reconcile",
]

log = logging.getLogger("pixeltrail.worker")

# SMTP connections per worker, each with one message in flight. A worker killed mid-send
# leaves at most this many messages in doubt.
CONCURRENCY = 8
# Outcomes that no intent is waiting to be written with are written on their own this late
# at most, so a sent message soon reads as sent even when nothing else is being sent.
OUTCOME_DELAY_S = 0.05
# Webhook endpoints for `message.sent` are looked up at most this often by a worker (not at
# every write): an endpoint added just now gets the events of messages sent a second later.
ENDPOINTS_TTL_MS = 1000


class _Ledger:
    """One batch's writes: intents (awaited before DATA) and outcomes, coalesced.

    A single writer writes whatever is waiting in one transaction; whatever arrives while it
    writes (answers from the server, connections ready with their next message) goes into the
    next one. On PostgreSQL it writes in a thread: a commit there is mostly waiting for the
    server and its disk flush, which the event loop spends on the other connections. SQLite
    commits in the process without a flush (WAL, synchronous=NORMAL), so there it writes on
    the event loop: a thread would only wait for the GIL at every statement.
    """

    def __init__(self, engine: Engine, batch: list[Claimed]) -> None:
        self.engine = engine
        self._untried = {m.id for m in batch}
        self._accounts = {m.account_id for m in batch}
        self._lease_at = now_ms()
        self._endpoints: Mapping[tuple[str, str], Sequence[str]] = {}
        self._endpoints_at = -ENDPOINTS_TTL_MS
        self._intents: list[tuple[str, asyncio.Future[None]]] = []
        self._outcomes: list[tuple[Claimed, Outcome]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._conn: Connection | None = None
        self._in_thread = engine.dialect.name == "postgresql"
        self._writer = asyncio.create_task(self._run())

    def intend(self, message_id: str) -> asyncio.Future[None]:
        """Done once `message_id` is committed as `sending` (the next write carries it)."""
        done = asyncio.get_running_loop().create_future()
        self._intents.append((message_id, done))
        self._untried.discard(message_id)
        self._wake.set()
        return done

    def record(self, claimed: Claimed, outcome: Outcome) -> None:
        self._outcomes.append((claimed, outcome))
        self._untried.discard(claimed.id)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(OUTCOME_DELAY_S, self._wake.set)

    async def close(self) -> None:
        """Write what is left and stop; raises what the last write raised."""
        self._closing = True
        self._wake.set()
        try:
            await self._writer
        finally:
            if self._conn is not None:
                self._conn.close()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # One more turn of the loop first: the connections whose answers have arrived
            # meanwhile record them and bring their next intents into this same transaction.
            await asyncio.sleep(0)
            self._wake.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            intents, self._intents = self._intents, []
            outcomes, self._outcomes = self._outcomes, []
            if intents or outcomes:
                try:
                    ids = [i for i, _ in intents]
                    if self._in_thread:
                        await asyncio.to_thread(self._write, ids, outcomes)
                    else:
                        self._write(ids, outcomes)
                except BaseException as exc:
                    # Nothing of it committed: the intents' messages stay claimed (never
                    # tried), the outcomes wait for the next write.
                    self._outcomes[:0] = outcomes
                    for _, done in intents:
                        if not done.done():
                            done.set_exception(exc)
                    if self._closing or not isinstance(exc, Exception):
                        raise
                    continue
                for _, done in intents:
                    if not done.done():
                        done.set_result(None)
            if self._closing and not self._intents and not self._outcomes:
                return

    def _write(self, intents: list[str], outcomes: list[tuple[Claimed, Outcome]]) -> None:
        now = now_ms()
        renew = [] if now - self._lease_at < LEASE_RENEWAL_MS else list(self._untried)
        if self._conn is None:
            # One connection for the batch's writes: no pool checkout (nor, on PostgreSQL,
            # its liveness ping) for every few messages.
            self._conn = self.engine.connect()
            self._conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        conn = self._conn
        try:
            with conn.begin():
                if outcomes and now - self._endpoints_at > ENDPOINTS_TTL_MS:
                    self._endpoints = subscribers(conn, self._accounts, {MESSAGE_SENT})
                    self._endpoints_at = now
                record_outcomes(conn, outcomes, now, self._endpoints)
                mark_sending(conn, intents, renew, now)
        except BaseException:
            self._conn = None  # the next write starts from a fresh connection
            conn.close()
            raise
        if renew:
            self._lease_at = now


class SendWorker:
    """Claims, sends and records; runs in its own thread with its own event loop."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        signer: TokenSigner,
        mailer_for: Callable[[SmtpEndpoint | None], Mailer] | None = None,
        interval: float = 1.0,
        concurrency: int = CONCURRENCY,
        batch: int = BATCH,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.signer = signer
        self.interval = interval
        self._mailer_for = mailer_for or self._default_mailer
        self.concurrency = concurrency
        self.batch = batch
        self._mailers: dict[str, list[Mailer]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _default_mailer(self, endpoint: SmtpEndpoint | None) -> Mailer:
        if endpoint is None:
            return OutboxMailer(self.settings.data_dir / "outbox")
        return SmtpMailer(endpoint)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    done = await self.run_once()
                except Exception:  # a database outage: try again shortly
                    log.exception("send pass failed")
                    done = 0
                if not done:
                    await asyncio.sleep(self.interval)
        finally:
            await self.close()

    async def close(self) -> None:
        mailers, self._mailers = self._mailers, {}
        for pool in mailers.values():
            for mailer in pool:
                await mailer.close()

    async def run_once(self, now: int | None = None) -> int:
        """One pass: reconcile, claim a batch, send it over the connections, record outcomes."""
        now = now_ms() if now is None else now
        with write_transaction(self.engine) as conn:
            reconcile(conn, now)
            batch = claim(conn, now, self.batch)
        if not batch:
            return 0
        with self.engine.connect() as reader:
            composer = BatchComposer(reader, batch, self.signer)
            for m in batch:
                if m.mailbox_id not in self._mailers:
                    endpoint = mailbox_endpoint(reader, m.account_id, m.mailbox_id, self.settings)
                    self._mailers[m.mailbox_id] = [
                        self._mailer_for(endpoint) for _ in range(self.concurrency)
                    ]
        ledger = _Ledger(self.engine, batch)
        queue = deque(batch)
        try:
            async with asyncio.TaskGroup() as connections:
                for slot in range(min(self.concurrency, len(batch))):
                    connections.create_task(self._connection(slot, queue, composer, ledger))
        finally:
            await ledger.close()
        return len(batch)

    async def _connection(
        self, slot: int, queue: deque[Claimed], composer: BatchComposer, ledger: _Ledger
    ) -> None:
        """One connection's share of the batch: compose, intend, deliver, record, next."""
        while queue:
            m = queue.popleft()
            prepared = composer.compose(m)
            if isinstance(prepared, Outcome):
                ledger.record(m, prepared)
                await asyncio.sleep(0)  # the other connections' answers may be waiting
                continue
            # The intent is written while the server takes the envelope (MAIL, RCPT); the
            # message itself (DATA) goes only once it is committed.
            intent = ledger.intend(m.id)
            outcome = await self._deliver(prepared, slot, intent)
            # A refused envelope does not wait for the intent: the outcome is written after
            # it all the same, never in the same write (which would leave it `sending`).
            await intent
            ledger.record(m, outcome)

    async def _deliver(self, p: Prepared, slot: int, intent: asyncio.Future[None]) -> Outcome:
        mailer = self._mailers[p.message.mailbox_id][slot]
        envelope = p.envelope
        try:
            await mailer.send(p.message.id, envelope.from_email, envelope.to_email, p.data, intent)
        except DeliveryError as exc:
            if exc.permanent:
                return Outcome("failed", str(exc), bounced=True)
            return Outcome("retry", str(exc))
        return Outcome("sent", link_count=p.link_count)
