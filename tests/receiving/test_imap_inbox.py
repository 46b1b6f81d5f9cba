"""ImapInbox against a real Dovecot: read-only, by UID, IDLE, and what goes wrong said plainly."""

from __future__ import annotations

import ssl
import threading
import time

import pytest
from imapclient import IMAPClient

from pixeltrail.platform.mail.imap_urls import parse_imap_url
from pixeltrail.receiving.imap_inbox import ImapInbox
from pixeltrail.receiving.sources import InboxUnavailable
from tests.inbound.imap_server import ImapServer
from tests.receiving.conftest import imaps_endpoint, message


def inbox(server: ImapServer, password: str | None = None) -> ImapInbox:
    return ImapInbox(imaps_endpoint(server, password), True, server.tls_context())


def flags(server: ImapServer) -> list[tuple[bytes, ...]]:
    with IMAPClient(server.host, server.tls_port, ssl_context=server.tls_context()) as client:
        client.login(server.user, server.password)
        client.select_folder("INBOX", readonly=True)
        found = client.get_flags(client.search(["ALL"]))
        # \Recent is the session's, not the message's: the first session to see it has it.
        return [tuple(f for f in found[uid] if f != b"\\Recent") for uid in sorted(found)]


def test_reads_messages_by_uid_and_leaves_them_unread(imap_server: ImapServer) -> None:
    imap_server.deliver(message("first"))
    imap_server.deliver(message("second"))
    source = inbox(imap_server)
    try:
        assert source.open() == imap_server.uid_validity()
        both = source.fetch_after(0, 10)
        assert [b"Subject: first" in f.raw for f in both] == [True, False]
        assert b"Subject: second" in both[1].raw
        assert both[0].uid < both[1].uid
        assert abs(both[0].received_at_ms - time.time() * 1000) < 120_000
        assert source.fetch_after(both[0].uid, 10) == [both[1]]
        assert source.fetch_after(both[1].uid, 10) == []
        assert source.fetch_after(0, 1) == [both[0]]
    finally:
        source.close()
    assert flags(imap_server) == [(), ()]  # not \Seen, nothing else changed


def test_starttls_and_plain_text_on_loopback(imap_server: ImapServer) -> None:
    imap_server.deliver(message("hello"))
    user = imap_server.user.replace("@", "%40")
    secret = imap_server.password.replace(" ", "%20")
    base = f"imap://{user}:{secret}@127.0.0.1:{imap_server.port}"
    for url in (base, base + "?starttls=off"):
        source = ImapInbox(parse_imap_url(url, True), True, imap_server.tls_context())
        try:
            source.open()
            assert len(source.fetch_after(0, 10)) == 1
        finally:
            source.close()


def test_wrong_password_says_cannot_log_in(imap_server: ImapServer) -> None:
    with pytest.raises(InboxUnavailable, match=r"^cannot log in: ") as caught:
        inbox(imap_server, password="wrong password").open()
    assert "wrong password" not in str(caught.value)


def test_an_untrusted_certificate_is_refused(imap_server: ImapServer) -> None:
    source = ImapInbox(imaps_endpoint(imap_server), True, ssl.create_default_context())
    with pytest.raises(InboxUnavailable, match=r"^cannot connect: TLS failed: .*certificate"):
        source.open()


def test_local_server_refused_unless_allowed(imap_server: ImapServer) -> None:
    source = ImapInbox(imaps_endpoint(imap_server), False, imap_server.tls_context())
    with pytest.raises(
        InboxUnavailable, match=r"^cannot connect: the mail server 127.0.0.1 .*loopback"
    ):
        source.open()


def test_nothing_listening_says_cannot_connect(imap_server: ImapServer) -> None:
    imap_server.stop()
    with pytest.raises(InboxUnavailable, match=r"^cannot connect: 127.0.0.1 port"):
        inbox(imap_server).open()


def test_idle_wakes_up_when_a_message_arrives(imap_server: ImapServer) -> None:
    source = inbox(imap_server)
    source.open()
    try:
        timer = threading.Timer(0.5, imap_server.deliver, [message("arrived")])
        timer.start()
        started = time.monotonic()
        source.wait(20)
        timer.join()
        assert time.monotonic() - started < 10
        assert len(source.fetch_after(0, 10)) == 1
    finally:
        source.close()


def test_a_dropped_connection_is_said(imap_server: ImapServer) -> None:
    source = inbox(imap_server)
    source.open()
    imap_server.drop_connections()
    with pytest.raises(InboxUnavailable, match=r"^connection lost: "):
        source.wait(5)  # IDLE sees the server hang up
    imap_server.deliver(message("after"))
    source.open()  # connects again
    try:
        assert len(source.fetch_after(0, 10)) == 1
    finally:
        source.close()


def test_tls_is_verified_against_the_name_at_the_checked_address(imap_server: ImapServer) -> None:
    imap_server.deliver(message("by name"))
    user, secret = imap_server.user.replace("@", "%40"), imap_server.password.replace(" ", "%20")
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    for name in ("localhost", "imap.other.example"):  # the certificate names localhost only
        url = f"imaps://{user}:{secret}@{name}:{imap_server.tls_port}"
        source = ImapInbox(parse_imap_url(url, True), True, imap_server.tls_context(), resolver)
        try:
            if name == "localhost":
                source.open()
                assert len(source.fetch_after(0, 10)) == 1
            else:
                with pytest.raises(InboxUnavailable, match=r"^cannot connect: TLS failed: .*"):
                    source.open()
        finally:
            source.close()
    assert asked == ["localhost", "imap.other.example"]


def test_without_idle_a_wait_is_a_poll_that_notices_a_dropped_connection(
    imap_server: ImapServer,
) -> None:
    source = inbox(imap_server)
    source.open()
    source._idle = False  # as on a server that does not offer IDLE
    try:
        started = time.monotonic()
        source.wait(0.5)
        assert 0.5 <= time.monotonic() - started < 5
        imap_server.deliver(message("polled"))
        assert len(source.fetch_after(0, 10)) == 1
        imap_server.drop_connections()
        with pytest.raises(InboxUnavailable, match=r"^connection lost: "):
            source.wait(0.1)
    finally:
        source.close()
