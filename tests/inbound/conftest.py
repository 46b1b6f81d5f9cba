"""Fixtures of the inbound tests: a real IMAP server (Dovecot) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.inbound.imap_server import ImapServer, remove_imap_server, start_imap_server


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    """A fresh Dovecot on loopback with one user and an empty INBOX; fails (never skips) when
    Dovecot is missing, saying how to install it."""
    try:
        server = start_imap_server()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        remove_imap_server(server)
