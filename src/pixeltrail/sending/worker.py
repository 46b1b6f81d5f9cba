"""The send worker: claims due messages, composes them, hands them to a mailer, records outcomes.

At most once, and nothing lost but what is in flight: a worker claims a batch (`claimed`);
each of its connections marks the message it is about to send `sending` (the intent, written
while the server takes the envelope and committed before the message's DATA) and the outcome
once the server has answered. Those
writes are coalesced (ledger.py): every transaction carries the intents that are waiting and
the outcomes gathered since the last one (on PostgreSQL, intents and outcomes each in their
own), so a worker writes far less often than once per message and never marks a message
before a connection is ready to send it. Claims carry a lease (renewed as
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
from collections.abc import Callable

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.mail.mailboxes import mailbox_endpoint
from pixeltrail.platform.mail.smtp_urls import SmtpEndpoint
from pixeltrail.sending.claims import (
    BATCH,
    SENDING_LEASE_MS,
    Claimed,
    claim,
    mark_sending,
    reconcile,
)
from pixeltrail.sending.compose import BatchComposer, Prepared
from pixeltrail.sending.ledger import Ledger
from pixeltrail.sending.mailers import DeliveryError, Mailer, OutboxMailer, SmtpMailer
from pixeltrail.sending.mime import ascii_address
from pixeltrail.sending.outcomes import Outcome
from pixeltrail.store.db import write_transaction
from pixeltrail.store.message_status import MessageStatus
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
        return SmtpMailer(endpoint, allow_local=self.settings.mail_allow_local)

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
        """One pass: reconcile, claim a batch, send it over the connections, record outcomes.

        While the last messages of a full batch are going, the next batch is claimed (and so
        on, until a claim comes back short or the worker is stopping): the connections go
        from one batch to the next without waiting for the claim or for the slowest of them.
        """
        batch, composer = self._take(now)
        if not batch:
            return 0
        ledger = Ledger(self.engine, batch)
        feed = _Feed(self, ledger, now, batch, composer)
        try:
            async with asyncio.TaskGroup() as connections:
                for slot in range(min(self.concurrency, len(batch))):
                    connections.create_task(self._connection(slot, feed, ledger))
        finally:
            await ledger.close()
        return feed.claimed

    def _take(self, now: int | None) -> tuple[list[Claimed], BatchComposer | None]:
        """Claim a batch (reconciling first) and read what its messages are made of."""
        now = now_ms() if now is None else now
        with write_transaction(self.engine) as conn:
            reconcile(conn, now)
            batch = claim(conn, now, self.batch)
        if not batch:
            return batch, None
        with self.engine.connect() as reader:
            composer = BatchComposer(reader, batch, self.signer)
            for m in batch:
                if m.mailbox_id not in self._mailers:
                    endpoint = mailbox_endpoint(reader, m.account_id, m.mailbox_id, self.settings)
                    self._mailers[m.mailbox_id] = [
                        self._mailer_for(endpoint) for _ in range(self.concurrency)
                    ]
        return batch, composer

    async def _connection(self, slot: int, feed: _Feed, ledger: Ledger) -> None:
        """One connection's share of the pass: compose, intend, deliver, record, next."""
        while (item := await feed.next()) is not None:
            m, composer = item
            prepared = _compose(composer, m)
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
            # The envelope is ASCII as the headers are: an international domain in punycode
            # (compose has already refused a non-ASCII mailbox name).
            sender, recipient = ascii_address(envelope.from_email), ascii_address(envelope.to_email)
            await mailer.send(p.message.id, sender, recipient, p.data, intent)
        except DeliveryError as exc:
            if exc.permanent:
                return Outcome(MessageStatus.FAILED, str(exc), bounced=True)
            return Outcome("retry", str(exc))
        except Exception as exc:
            # Whatever else goes wrong fails this message alone (its connection is dropped),
            # never the other connections or the batch; not retried, as it may have gone.
            log.exception("message %s could not be handed to the mail server", p.message.id)
            return Outcome(MessageStatus.FAILED, f"could not be sent: {type(exc).__name__}: {exc}")
        return Outcome(
            MessageStatus.SENT, link_count=p.link_count, destination_count=p.destination_count
        )


def _compose(composer: BatchComposer, m: Claimed) -> Prepared | Outcome:
    """The message, or why it is not sent: whatever goes wrong making one message fails that
    message alone, never the other connections, the batch or the worker."""
    try:
        return composer.compose(m)
    except Exception as exc:
        log.exception("message %s could not be composed", m.id)
        return Outcome(MessageStatus.FAILED, f"could not be composed: {type(exc).__name__}: {exc}")


class _Feed:
    """A pass's claimed messages in order, each with the composer of its batch; claims the next
    batch once no more than one message per connection is left of a full one."""

    def __init__(
        self,
        worker: SendWorker,
        ledger: Ledger,
        now: int | None,
        batch: list[Claimed],
        composer: BatchComposer | None,
    ) -> None:
        self.worker = worker
        self.ledger = ledger
        self.now = now
        self.claimed = 0
        self._queue: deque[tuple[Claimed, BatchComposer]] = deque()
        self._full = False
        self._next: asyncio.Task[None] | None = None
        self._failed: Exception | None = None  # the last claim's, for the next caller
        self._add(batch, composer)

    def _add(self, batch: list[Claimed], composer: BatchComposer | None) -> None:
        if composer is not None:
            self._queue.extend((m, composer) for m in batch)
        self.claimed += len(batch)
        self._full = len(batch) == self.worker.batch

    async def next(self) -> tuple[Claimed, BatchComposer] | None:
        """The next message to send, or None when the pass is over."""
        while True:
            if self._failed is not None:
                raise self._failed  # a database outage: the pass ends, the worker retries
            worker = self.worker
            low = len(self._queue) <= worker.concurrency
            if low and self._full and self._next is None and not worker._stop.is_set():
                self._next = asyncio.create_task(self._claim())
            if self._queue:
                return self._queue.popleft()
            if self._next is None:
                return None
            await self._next

    async def _claim(self) -> None:
        try:
            # On PostgreSQL the claim waits for the server in a thread. SQLite claims on the
            # event loop, as the ledger writes: in a thread it would hold the write lock
            # while the ledger's writes wait for it on the event loop.
            if self.worker.engine.dialect.name == "postgresql":
                batch, composer = await asyncio.to_thread(self.worker._take, self.now)
            else:
                batch, composer = self.worker._take(self.now)
            self.ledger.add(batch)
            self._add(batch, composer)
        except Exception as exc:
            self._failed = exc
        finally:
            self._next = None
