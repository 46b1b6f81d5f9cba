"""The intent to send is committed before each message's DATA, though it is written while the
server takes the envelope; a refused envelope still ends with its outcome, never `sending`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, select

from pixeltrail.config import Settings
from pixeltrail.platform.campaigns.scheduler import schedule_due
from pixeltrail.platform.ids import now_ms
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import contacts, messages

from ..chain import make_chain
from ..server.conftest import free_port

EMAILS = [f"r{n}@example.org" for n in range(40)]
REFUSED = {"r3@example.org": "550 5.1.1 No such user", "r7@example.org": "451 4.3.0 Later"}


@dataclass
class StatusAtData:
    """At each DATA, the recipient's message status as another connection reads it."""

    engine: Engine
    seen: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: object
    ) -> str:
        if address in REFUSED:
            return REFUSED[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        (address,) = envelope.rcpt_tos
        query = (
            select(messages.c.status)
            .join(contacts, contacts.c.id == messages.c.contact_id)
            .where(contacts.c.email == address)
        )
        with self.engine.connect() as conn:
            self.seen[address] = conn.execute(query).scalar_one()
        return "250 OK"


@pytest.fixture
def status_server(engine: Engine) -> Iterator[tuple[StatusAtData, int]]:
    handler = StatusAtData(engine)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_every_message_is_sending_in_the_database_when_its_data_goes(
    engine: Engine, settings: Settings, status_server: tuple[StatusAtData, int]
) -> None:
    handler, port = status_server
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=f"smtp://127.0.0.1:{port}?starttls=off", emails=EMAILS)
        schedule_due(conn, settings, now_ms())
    worker = SendWorker(engine, settings, settings.signer())

    async def once() -> int:
        try:
            return await worker.run_once()
        finally:
            await worker.close()

    assert asyncio.run(once()) == len(EMAILS)
    assert handler.seen == {e: "sending" for e in EMAILS if e not in REFUSED}
    with engine.connect() as conn:
        rows = conn.execute(
            select(contacts.c.email, messages.c.status).join(
                contacts, contacts.c.id == messages.c.contact_id
            )
        ).all()
    statuses: dict[str, str] = {str(e): str(s) for e, s in rows}
    assert statuses.pop("r3@example.org") == "failed"
    assert statuses.pop("r7@example.org") == "scheduled"  # retried later
    assert set(statuses.values()) == {"sent"}
