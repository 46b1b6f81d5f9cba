"""The SMTP mailer against a real aiosmtpd: a server that stops answering, a refused recipient,
mail servers on internal addresses refused when connecting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from pixeltrail.platform.mail.smtp_urls import SmtpEndpoint
from pixeltrail.sending.mailers import DeliveryError, SmtpMailer

from ..server.conftest import free_port
from ..webhooks.conftest import self_signed

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
    mailer = SmtpMailer(endpoint, timeout=0.5, allow_local=True)

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
    mailer = SmtpMailer(endpoint, allow_local=True)

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
    mailer = SmtpMailer(endpoint, allow_local=True)

    async def failing() -> None:
        raise RuntimeError("the database is gone")

    async def run() -> None:
        with pytest.raises(RuntimeError):
            await mailer.send("m1", "a@example.org", "one@example.org", MESSAGE, failing())
        await mailer.send("m2", "a@example.org", "two@example.org", MESSAGE)
        await mailer.close()

    asyncio.run(run())
    assert handler.received == ["two@example.org"]


def test_a_name_resolving_to_loopback_is_refused_when_connecting_and_nothing_is_sent(
    inbox: tuple[SlowInbox, SmtpEndpoint],
) -> None:
    """A mailbox saved while its name was public (or while the instance allowed local servers):
    what the name resolves to is checked again at every connection."""
    handler, endpoint = inbox
    resolved: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        resolved.append(host)
        return ["9.9.9.9", "127.0.0.1"]  # one public answer does not hide the other

    target = SmtpEndpoint("smtp", "rebind.example", endpoint.port, "none")
    mailer = SmtpMailer(target, resolver=resolver)

    async def run() -> DeliveryError:
        with pytest.raises(DeliveryError) as caught:
            await mailer.send("m1", "a@example.org", "ok@example.org", MESSAGE)
        await mailer.close()
        return caught.value

    error = asyncio.run(run())
    assert resolved == ["rebind.example"]
    assert not error.permanent  # not a bounce: the recipient is not at fault
    assert str(error) == (
        "not connecting to the mail server: rebind.example resolves to 127.0.0.1, which is a "
        "loopback address (this server itself); only PIXELTRAIL_MAIL_ALLOW_LOCAL=1 allows "
        "mail servers on this host or its network"
    )
    assert handler.received == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("localhost", "localhost is this server itself"),
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ],
)
def test_internal_addresses_are_refused_when_connecting(
    inbox: tuple[SlowInbox, SmtpEndpoint], host: str, reason: str
) -> None:
    handler, endpoint = inbox
    mailer = SmtpMailer(SmtpEndpoint("smtp", host, endpoint.port, "none"))
    with pytest.raises(DeliveryError, match=reason):
        asyncio.run(mailer.send("m1", "a@example.org", "ok@example.org", MESSAGE))
    assert handler.received == []


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(
    inbox: tuple[SlowInbox, SmtpEndpoint],
) -> None:
    handler, endpoint = inbox
    lookups: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        lookups.append(host)
        # The first address refuses connections: the next checked one is tried.
        return ["127.0.0.2", "127.0.0.1"]

    # mail.example has no address in DNS: only the checked addresses can reach the server.
    target = SmtpEndpoint("smtp", "mail.example", endpoint.port, "none")
    mailer = SmtpMailer(target, allow_local=True, resolver=resolver)

    async def run() -> None:
        await mailer.send("m1", "a@example.org", "ok@example.org", MESSAGE)
        await mailer.close()

    asyncio.run(run())
    assert lookups == ["mail.example"]
    assert handler.received == ["ok@example.org"]


def test_tls_is_verified_against_the_servers_name_not_its_address(tmp_path: Path) -> None:
    handler = SlowInbox()
    server_tls, client_tls = self_signed(tmp_path, "mail.example")
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=server_tls)
    controller.start()

    def send(host: str) -> None:
        mailer = SmtpMailer(
            SmtpEndpoint("smtps", host, port, "tls"),
            allow_local=True,
            resolver=lambda _h, _p: ["127.0.0.1"],
            tls_context=client_tls,
        )

        async def run() -> None:
            await mailer.send("m1", "a@example.org", f"to@{host}", MESSAGE)
            await mailer.close()

        asyncio.run(run())

    try:
        send("mail.example")
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            send("other.example")  # same address, but not the name on the certificate
    finally:
        controller.stop()
    assert handler.received == ["to@mail.example"]
