"""A message that cannot be made fails alone: the rest of its batch, other accounts' mail
included, goes out, and the failed message is not tried again."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, select, update

from pixeltrail.config import Settings
from pixeltrail.platform.campaigns.scheduler import schedule_due
from pixeltrail.platform.ids import now_ms
from pixeltrail.sending.worker import SENDING_LEASE_MS, SendWorker
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import contacts, enrollments, messages

from ..chain import make_chain
from .conftest import SmtpServer

OTHERS = [f"r{n}@example.org" for n in range(12)]
# Stored before such calls were checked when a step is saved: `default` has no `boolean`.
POISON = "<p>Hi {{ first_name|default(boolean=true) }}</p>"
REASON = "filter 'default' has no argument 'boolean' (it takes fallback)"


def _send(engine: Engine, settings: Settings, now: int | None = None) -> int:
    # Several connections, one batch: the failing messages are claimed with the others.
    worker = SendWorker(engine, settings, settings.signer(), concurrency=4, batch=50)

    async def once() -> int:
        try:
            return await worker.run_once(now)
        finally:
            await worker.close()

    return asyncio.run(once())


def _by_account(engine: Engine) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(messages).order_by(messages.c.contact_id)):
            found.setdefault(str(row.account_id), []).append(dict(row._mapping))
    return found


def _received(smtp_server: SmtpServer) -> list[str]:
    return sorted(m["To"].addresses[0].addr_spec for m in smtp_server.inbox.received)


def test_a_template_that_fails_to_render_fails_its_messages_only(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    with write_transaction(engine) as conn:
        poisoned = make_chain(
            conn,
            settings,
            smtp_url=smtp_server.url,
            emails=["p0@example.com", "p1@example.com"],
            steps=[("Hello", POISON, 0)],
            prefix="p",
        )
        other = make_chain(conn, settings, smtp_url=smtp_server.url, emails=OTHERS, prefix="o")
        now = now_ms()
        assert schedule_due(conn, settings, now) == 2 + len(OTHERS)
    assert _send(engine, settings, now) == 2 + len(OTHERS)

    # Every message of the other account went out, once.
    assert _received(smtp_server) == sorted(OTHERS)
    rows = _by_account(engine)
    assert {r["status"] for r in rows[other.account_id]} == {"sent"}
    # The failing ones: failed, with the reason, their contacts' sequences stopped.
    for row in rows[poisoned.account_id]:
        assert row["status"] == "failed"
        assert row["error"] == f"template: html, line 1: {REASON}"
        assert row["attempts"] == 1
    with engine.connect() as conn:
        stopped = conn.execute(
            select(enrollments.c.status).where(enrollments.c.campaign_id == poisoned.campaign_id)
        )
        assert set(stopped.scalars()) == {"stopped"}

    # Long after any lease, nothing comes back: they are not tried again.
    later = now + 2 * SENDING_LEASE_MS
    assert _send(engine, settings, later) == 0
    assert _by_account(engine)[poisoned.account_id] == rows[poisoned.account_id]
    assert len(smtp_server.inbox.received) == len(OTHERS)


def test_a_message_that_cannot_be_built_fails_alone_with_the_reason(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL refuses the lone surrogate this test stores")
    # A custom field no import or form accepts (a lone surrogate), as if written directly:
    # the template is fine and renders, but the message cannot be encoded.
    with write_transaction(engine) as conn:
        broken = make_chain(
            conn,
            settings,
            smtp_url=smtp_server.url,
            emails=["b0@example.com"],
            steps=[("Hello", "<p>Plan {{ fields.plan }}</p>", 0)],
            prefix="b",
        )
        conn.execute(
            update(contacts)
            .where(contacts.c.id == broken.contact_ids[0])
            .values(fields={"plan": "pro\ud800"})
        )
        make_chain(conn, settings, smtp_url=smtp_server.url, emails=OTHERS, prefix="o")
        now = now_ms()
        schedule_due(conn, settings, now)
    assert _send(engine, settings, now) == 1 + len(OTHERS)
    assert _received(smtp_server) == sorted(OTHERS)
    (failed,) = _by_account(engine)[broken.account_id]
    assert failed["status"] == "failed"
    assert str(failed["error"]).startswith("could not be composed: UnicodeEncodeError: ")
    assert _send(engine, settings, now + 2 * SENDING_LEASE_MS) == 0
