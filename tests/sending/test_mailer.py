"""The SMTP mailer against a real aiosmtpd: a server that stops answering, a refused recipient."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from pixeltrail.platform.smtp_urls import SmtpEndpoint
from pixeltrail.sending.mailers import DeliveryError, SmtpMailer

from ..server.conftest import free_port

MESSAGE = b"Subject: x\r\n\r\nHello\r\n"


@dataclass
class SlowInbox:
    """Never answers RCPT for `silent`; refuses `refused` recipients; keeps what it takes."""

    silent: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    received: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: object
    ) -> str:
        if address in self.silent:
            await asyncio.sleep(10)
        if address in self.refused:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[SlowInbox, SmtpEndpoint]]:
    handler = SlowInbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, SmtpEndpoint("smtp", "127.0.0.1", port, "none")
    finally:
        controller.stop()


def test_a_server_that_stops_answering_is_a_temporary_failure_after_the_timeout(
    inbox: tuple[SlowInbox, SmtpEndpoint],
) -> None:
    handler, endpoint = inbox
    handler.silent.add("slow@example.org")
    mailer = SmtpMailer(endpoint, timeout=0.5)

    async def run() -> tuple[DeliveryError, float]:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            await mailer.send("m1", "a@example.org", "slow@example.org", MESSAGE)
        elapsed = time.monotonic() - started
        # The next message goes over a new connection.
        await mailer.send("m2", "a@example.org", "ok@example.org", MESSAGE)
        await mailer.close()
        return caught.value, elapsed

    error, elapsed = asyncio.run(run())
    assert not error.permanent
    assert "0.5 s" in str(error)
    assert 0.4 < elapsed < 5
    assert handler.received == ["ok@example.org"]


def test_a_refused_recipient_bounces_and_the_connection_goes_on(
    inbox: tuple[SlowInbox, SmtpEndpoint],
) -> None:
    handler, endpoint = inbox
    handler.refused.add("gone@example.org")
    mailer = SmtpMailer(endpoint)

    async def run() -> DeliveryError:
        with pytest.raises(DeliveryError) as caught:
            await mailer.send("m1", "a@example.org", "gone@example.org", MESSAGE)
        await mailer.send("m2", "a@example.org", "ok@example.org", MESSAGE)
        await mailer.close()
        return caught.value

    error = asyncio.run(run())
    assert error.permanent and str(error).startswith("550")
    assert handler.received == ["ok@example.org"]


def test_nothing_is_sent_when_the_intent_fails(inbox: tuple[SlowInbox, SmtpEndpoint]) -> None:
    handler, endpoint = inbox
    mailer = SmtpMailer(endpoint)

    async def failing() -> None:
        raise RuntimeError("the database is gone")

    async def run() -> None:
        with pytest.raises(RuntimeError):
            await mailer.send("m1", "a@example.org", "one@example.org", MESSAGE, failing())
        await mailer.send("m2", "a@example.org", "two@example.org", MESSAGE)
        await mailer.close()

    asyncio.run(run())
    assert handler.received == ["two@example.org"]
