"""A send pass's writes: intents (awaited before DATA), outcomes and leases, coalesced.

A writer writes whatever is waiting in one transaction; whatever arrives while it writes
(answers from the server, connections ready with their next message) goes into the next one.

SQLite has one writer, on the event loop: it commits in the process without a flush (WAL,
synchronous=NORMAL), and a thread would only wait for the GIL at every statement. PostgreSQL
has two, each in a thread with its own connection: one writes the intents (and renews the
leases), the other the outcomes. A commit there is mostly waiting for the server and its disk
flush; an intent that queued behind a transaction of outcomes would hold its message's DATA
for as long, and connections would wait on the database rather than on the SMTP server. The
two never touch the same rows at once: an outcome is recorded only once its intent is
committed, and the leases renewed are those of messages neither intended nor done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, Engine

from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.webhooks.events import MESSAGE_SENT, subscribers
from pixeltrail.sending.claims import LEASE_RENEWAL_MS, Claimed, mark_sending
from pixeltrail.sending.outcomes import Outcome, record_outcomes
from pixeltrail.store.db import SQLITE_BEGIN

# Outcomes that no intent is waiting to be written with are written on their own this late
# at most, so a sent message soon reads as sent even when nothing else is being sent.
OUTCOME_DELAY_S = 0.05
# How long a writer waits, once woken, for more to write with it. An intent is needed only
# once the server has answered MAIL and RCPT (two round trips, written meanwhile): waiting this
# long costs its message nothing in most cases, and makes for half as many transactions.
GATHER_S = 0.001
# Webhook endpoints for `message.sent` are looked up at most this often by a worker (not at
# every write): an endpoint added just now gets the events of messages sent a second later.
ENDPOINTS_TTL_MS = 1000


class Ledger:
    """One send pass's writes; `intend` before each DATA, `record` each outcome after."""

    def __init__(self, engine: Engine, batch: list[Claimed]) -> None:
        self.engine = engine
        self._untried = {m.id for m in batch}
        self._accounts = {m.account_id for m in batch}
        self._lease_at = now_ms()
        self._endpoints: Mapping[tuple[str, str], Sequence[str]] = {}
        self._endpoints_at = -ENDPOINTS_TTL_MS
        self._intents: list[tuple[str, asyncio.Future[None]]] = []
        self._outcomes: list[tuple[Claimed, Outcome]] = []
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        if engine.dialect.name == "postgresql":
            self._intent_writer = _Writer(self, intents=True, outcomes=False, in_thread=True)
            self._outcome_writer = _Writer(self, intents=False, outcomes=True, in_thread=True)
        else:
            self._intent_writer = self._outcome_writer = _Writer(
                self, intents=True, outcomes=True, in_thread=False
            )

    def add(self, batch: list[Claimed]) -> None:
        """Another batch claimed for the same pass: its leases are renewed with the rest."""
        self._untried.update(m.id for m in batch)
        self._accounts.update(m.account_id for m in batch)

    def intend(self, message_id: str) -> asyncio.Future[None]:
        """Done once `message_id` is committed as `sending` (the next write carries it)."""
        done = asyncio.get_running_loop().create_future()
        self._intents.append((message_id, done))
        self._untried.discard(message_id)
        self._intent_writer.wake.set()
        return done

    def record(self, claimed: Claimed, outcome: Outcome) -> None:
        self._outcomes.append((claimed, outcome))
        self._untried.discard(claimed.id)
        if self._timer is None:
            wake = self._outcome_writer.wake
            self._timer = asyncio.get_running_loop().call_later(OUTCOME_DELAY_S, wake.set)

    async def close(self) -> None:
        """Write what is left and stop; raises what the last write raised."""
        self._closing = True
        writers = {self._intent_writer, self._outcome_writer}
        for writer in writers:
            writer.wake.set()
        results = await asyncio.gather(*(w.task for w in writers), return_exceptions=True)
        for writer in writers:
            writer.close()
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _take_intents(self) -> list[tuple[str, asyncio.Future[None]]]:
        intents, self._intents = self._intents, []
        return intents

    def _take_outcomes(self) -> list[tuple[Claimed, Outcome]]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def _renewals(self, now: int) -> list[str]:
        """The untried messages whose lease is due for renewal (all of them, now and then)."""
        return list(self._untried) if now - self._lease_at >= LEASE_RENEWAL_MS else []

    def _write(
        self,
        conn: Connection,
        intents: list[str],
        outcomes: list[tuple[Claimed, Outcome]],
        renew: list[str],
        now: int,
    ) -> None:
        with conn.begin():
            if outcomes:
                if now - self._endpoints_at > ENDPOINTS_TTL_MS:
                    self._endpoints = subscribers(conn, self._accounts, {MESSAGE_SENT})
                    self._endpoints_at = now
                record_outcomes(conn, outcomes, now, self._endpoints)
            mark_sending(conn, intents, renew, now)


class _Writer:
    """One connection's share of the writes: intents (with the leases), outcomes, or both."""

    def __init__(self, ledger: Ledger, *, intents: bool, outcomes: bool, in_thread: bool) -> None:
        self.ledger = ledger
        self.intents = intents
        self.outcomes = outcomes
        self.in_thread = in_thread
        self.wake = asyncio.Event()
        self._conn: Connection | None = None
        self.task = asyncio.create_task(self._run())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _pending(self) -> bool:
        ledger = self.ledger
        return bool(self.intents and ledger._intents) or bool(self.outcomes and ledger._outcomes)

    async def _run(self) -> None:
        ledger = self.ledger
        while True:
            await self.wake.wait()
            # A moment first: the connections whose answers arrive meanwhile record them and
            # bring their next intents into this same transaction.
            await asyncio.sleep(GATHER_S)
            self.wake.clear()
            intents = ledger._take_intents() if self.intents else []
            outcomes = ledger._take_outcomes() if self.outcomes else []
            now = now_ms()
            renew = ledger._renewals(now) if self.intents else []
            if not self.intents and ledger._renewals(now):
                ledger._intent_writer.wake.set()  # the leases are renewed with the intents
            if intents or outcomes or renew:
                try:
                    ids = [i for i, _ in intents]
                    if self.in_thread:
                        await asyncio.to_thread(self._write, ids, outcomes, renew, now)
                    else:
                        self._write(ids, outcomes, renew, now)
                except BaseException as exc:
                    # Nothing of it committed: the intents' messages stay claimed (never
                    # tried), the outcomes wait for the next write.
                    ledger._outcomes[:0] = outcomes
                    for _, done in intents:
                        if not done.done():
                            done.set_exception(exc)
                    if ledger._closing or not isinstance(exc, Exception):
                        raise
                    continue
                if renew:
                    ledger._lease_at = now
                for _, done in intents:
                    if not done.done():
                        done.set_result(None)
            if ledger._closing and not self._pending():
                return

    def _write(
        self,
        intents: list[str],
        outcomes: list[tuple[Claimed, Outcome]],
        renew: list[str],
        now: int,
    ) -> None:
        if self._conn is None:
            # One connection for the pass's writes: no pool checkout (nor, on PostgreSQL,
            # its liveness ping) for every few messages.
            self._conn = self.ledger.engine.connect()
            self._conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
            if self.in_thread and not self.outcomes:
                # The intents and the leases are one statement each, each whole on its own:
                # without BEGIN and COMMIT around it, an intent is one round trip (and flush).
                self._conn.execution_options(isolation_level="AUTOCOMMIT")
        conn = self._conn
        try:
            self.ledger._write(conn, intents, outcomes, renew, now)
        except BaseException:
            self._conn = None  # the next write starts from a fresh connection
            conn.close()
            raise
