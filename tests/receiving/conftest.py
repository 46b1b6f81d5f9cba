"""Fixtures of the reader's tests: a real IMAP server (Dovecot) per test, messages to deliver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pixeltrail.platform.mail.imap_urls import ImapEndpoint, parse_imap_url
from tests.inbound.imap_server import ImapServer, remove_imap_server, start_imap_server


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    """A fresh Dovecot on loopback with one user and an empty INBOX."""
    try:
        server = start_imap_server()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        remove_imap_server(server)


def imaps_url(server: ImapServer, password: str | None = None) -> str:
    """The server's IMAP-over-TLS URL, with its password or another one."""
    from urllib.parse import quote

    secret = quote(server.password if password is None else password, safe="")
    return f"imaps://{quote(server.user, safe='')}:{secret}@{server.host}:{server.tls_port}"


def imaps_endpoint(server: ImapServer, password: str | None = None) -> ImapEndpoint:
    return parse_imap_url(imaps_url(server, password), allow_local=True)


def message(subject: str, sender: str = "lea@client.example", extra: str = "") -> bytes:
    """A plain message as a person would send it."""
    return (
        f"From: Lea <{sender}>\r\nTo: ana@acme.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@client.example>\r\n"
        f"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHello, this is me.\r\n"
    ).encode()
