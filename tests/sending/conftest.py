"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives, or refuses it."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.address_policy import address_refusal, parse_ip, resolve

from ..api.conftest import make_settings
from ..dbs import DATABASES, fresh_database
from ..server.conftest import free_port


@dataclass
class Inbox:
    """Received messages; `refuse` maps a recipient to the SMTP reply it gets instead."""

    received: list[EmailMessage] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        return "250 Message accepted"


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=off"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(inbox, port)
    finally:
        controller.stop()


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path) as database:
        yield database.migrated()


@pytest.fixture
def settings(tmp_path: Path, engine: Engine) -> Settings:
    """An instance that may use mail servers on this machine, as these tests' aiosmtpd is."""
    url = engine.url.render_as_string(hide_password=False)
    return make_settings(tmp_path, url, PIXELTRAIL_MAIL_ALLOW_LOCAL="1")


def machine_name() -> str:
    """This machine's own name, which the system resolver answers with its loopback (or private)
    address: a name, not `localhost`, that resolves to this host. Skips where it does not."""
    name = socket.gethostname()
    try:
        addresses = [parse_ip(a) for a in resolve(name, 25)]
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve here")
    if not all(a is not None and address_refusal(a, False) for a in addresses):
        pytest.skip(f"this machine's name {name!r} resolves to a public address here")
    return name
