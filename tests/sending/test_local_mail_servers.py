"""Mail servers on this host or an internal network: the sender refuses them unless the instance
sets PIXELTRAIL_MAIL_ALLOW_LOCAL=1, whatever was allowed when the mailbox was saved."""

from __future__ import annotations

import asyncio
import dataclasses
import re

from sqlalchemy import Engine, select

from pixeltrail.config import Settings
from pixeltrail.platform.campaigns.scheduler import schedule_due
from pixeltrail.platform.ids import now_ms
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import messages

from ..chain import make_chain
from .conftest import SmtpServer, machine_name


def _send(engine: Engine, settings: Settings) -> None:
    worker = SendWorker(engine, settings, settings.signer())

    async def once() -> None:
        try:
            await worker.run_once()
        finally:
            await worker.close()

    asyncio.run(once())


def _saved_while_allowed(engine: Engine, settings: Settings, smtp_url: str) -> None:
    assert settings.mail_allow_local
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=smtp_url, emails=["ada@example.org"])
        schedule_due(conn, settings, now_ms())


def test_a_server_on_this_host_is_not_used_once_the_instance_stops_allowing_it(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    _saved_while_allowed(engine, settings, f"smtp://localhost:{smtp_server.port}?starttls=off")
    _send(engine, dataclasses.replace(settings, mail_allow_local=False))
    with engine.connect() as conn:
        (row,) = conn.execute(select(messages.c.status, messages.c.error)).all()
    assert smtp_server.inbox.received == []
    assert row.status == "scheduled"  # tried again later: the instance may allow it by then
    assert row.error == (
        "not connecting to the mail server: localhost is this server itself; only "
        "PIXELTRAIL_MAIL_ALLOW_LOCAL=1 allows mail servers on this host or its network"
    )


def test_a_name_resolving_to_this_host_is_refused_when_connecting(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    """The machine's own name, resolved by the system resolver when the sender connects."""
    name = machine_name()
    _saved_while_allowed(engine, settings, f"smtp://{name}:{smtp_server.port}?starttls=off")
    _send(engine, dataclasses.replace(settings, mail_allow_local=False))
    with engine.connect() as conn:
        (row,) = conn.execute(select(messages.c.status, messages.c.error)).all()
    assert smtp_server.inbox.received == []
    assert row.status == "scheduled"
    assert re.fullmatch(
        rf"not connecting to the mail server: {re.escape(name)} resolves to \S+, which is a "
        r"(loopback address \(this server itself\)|private address \(an internal network\)); "
        r"only PIXELTRAIL_MAIL_ALLOW_LOCAL=1 allows mail servers on this host or its network",
        row.error,
    ), row.error


def test_with_the_allowance_the_same_server_gets_the_message(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    _saved_while_allowed(engine, settings, f"smtp://localhost:{smtp_server.port}?starttls=off")
    _send(engine, settings)
    assert [str(m["To"]) for m in smtp_server.inbox.received] == ["Ada <ada@example.org>"]
