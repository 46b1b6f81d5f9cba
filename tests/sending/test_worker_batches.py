"""A pass goes from one claimed batch to the next without waiting for the slowest message."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import Engine, select

from pixeltrail.config import Settings
from pixeltrail.platform.campaigns.scheduler import schedule_due
from pixeltrail.platform.ids import now_ms
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import messages

from ..chain import make_chain
from .conftest import SmtpServer

EMAILS = [f"r{n}@example.org" for n in range(23)]


def _queued(engine: Engine, settings: Settings, smtp_server: SmtpServer) -> SendWorker:
    """A worker (batches of 5 over 3 connections) and 23 messages due for it."""
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=smtp_server.url, emails=EMAILS)
        schedule_due(conn, settings, now_ms())
    return SendWorker(engine, settings, settings.signer(), batch=5, concurrency=3)


def test_a_pass_claims_batch_after_batch_and_sends_each_message_once(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    worker = _queued(engine, settings, smtp_server)

    async def passes() -> list[int]:
        try:
            return [await worker.run_once(), await worker.run_once()]
        finally:
            await worker.close()

    # Four full batches of 5, then a short one of 3 ends the pass; nothing is left after it.
    assert asyncio.run(passes()) == [23, 0]
    received = Counter(str(m["To"]).split("<")[1].rstrip(">") for m in smtp_server.inbox.received)
    assert received == Counter(EMAILS)
    with engine.connect() as conn:
        assert set(conn.execute(select(messages.c.status)).scalars()) == {"sent"}


def test_a_stopping_worker_claims_no_further_batch(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    worker = _queued(engine, settings, smtp_server)
    worker.stop()  # not started: only marks it stopping

    async def once() -> int:
        try:
            return await worker.run_once()
        finally:
            await worker.close()

    assert asyncio.run(once()) == 5
    with engine.connect() as conn:
        statuses = Counter(conn.execute(select(messages.c.status)).scalars())
    assert statuses == Counter({"sent": 5, "scheduled": 18})
