"""The IMAP server the inbound tests run against, driven with the client pixeltrail reads
mailboxes with (imapclient): login, APPEND, UIDs and UIDVALIDITY, IDLE, TLS, and the faults a
mailbox reader must survive (dropped connections, a new UIDVALIDITY)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from pixeltrail.inbound import InboundKind, classify_message
from tests.inbound.imap_server import ImapServer

SAMPLES = Path(__file__).parent / "samples"
REPLY = (
    b"From: Ana Lima <ana@customer.example>\r\nTo: you@acme.example\r\n"
    b"Subject: Re: Quick question\r\nMessage-ID: <reply-1@customer.example>\r\n"
    b"In-Reply-To: <AAECAwQFBgcICQoL@acme.example>\r\n\r\nSounds good.\r\n"
)


def _client(server: ImapServer) -> IMAPClient:
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    client.login(server.user, server.password)
    return client


def test_append_then_fetch_by_uid_under_the_mailboxs_uidvalidity(imap_server: ImapServer) -> None:
    client = _client(imap_server)
    answer = client.append("INBOX", REPLY)
    selected = client.select_folder("INBOX", readonly=True)
    uid_validity = imap_server.uid_validity()
    assert selected[b"UIDVALIDITY"] == uid_validity
    assert selected[b"EXISTS"] == 1
    assert answer.startswith(f"[APPENDUID {uid_validity} 1]".encode())
    (uid,) = client.search("ALL")
    assert uid == 1
    fetched = client.fetch([uid], ["BODY.PEEK[]", "RFC822.SIZE"])[uid]
    assert fetched[b"BODY[]"] == REPLY
    assert fetched[b"RFC822.SIZE"] == len(REPLY)
    client.logout()


def test_a_wrong_password_is_refused(imap_server: ImapServer) -> None:
    client = IMAPClient(imap_server.host, port=imap_server.port, ssl=False, timeout=10)
    with pytest.raises(LoginError):
        client.login(imap_server.user, "wrong")
    client.logout()


def test_imaps_with_the_servers_own_certificate(imap_server: ImapServer) -> None:
    client = IMAPClient(
        imap_server.host, port=imap_server.tls_port, ssl_context=imap_server.tls_context()
    )
    assert client.login(imap_server.user, imap_server.password) == b"Logged in"
    client.logout()
    # A client that trusts only the public authorities refuses the self-signed certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(imap_server.host, port=imap_server.tls_port, timeout=10)


def test_idle_notices_a_delivered_message(imap_server: ImapServer) -> None:
    client = _client(imap_server)
    client.select_folder("INBOX")
    client.idle()
    imap_server.deliver(REPLY)
    responses = client.idle_check(timeout=10)
    client.idle_done()
    assert (1, b"EXISTS") in responses
    client.logout()


def test_a_delivered_bounce_is_fetched_and_classified(imap_server: ImapServer) -> None:
    imap_server.deliver((SAMPLES / "lhost-postfix-03.eml").read_bytes())
    imap_server.deliver(REPLY)
    client = _client(imap_server)
    client.select_folder("INBOX", readonly=True)
    messages = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
    kinds = [classify_message(data[b"BODY[]"]).kind for _, data in sorted(messages.items())]
    assert kinds == [InboundKind.BOUNCE, InboundKind.REPLY]
    client.logout()


def test_dropped_connections(imap_server: ImapServer) -> None:
    client = _client(imap_server)
    client.select_folder("INBOX")
    imap_server.drop_connections()
    with pytest.raises((IMAPClient.AbortError, OSError)):
        client.noop()
    client.shutdown()
    again = _client(imap_server)
    assert again.noop()
    again.logout()


def test_a_new_uidvalidity_is_seen_by_the_next_session(imap_server: ImapServer) -> None:
    client = _client(imap_server)
    before = client.select_folder("INBOX")[b"UIDVALIDITY"]
    client.logout()
    after = imap_server.set_uid_validity()
    assert after != before
    client = _client(imap_server)
    assert client.select_folder("INBOX")[b"UIDVALIDITY"] == after
    client.logout()


def test_a_recreated_mailbox_is_empty_under_a_new_uidvalidity(imap_server: ImapServer) -> None:
    client = _client(imap_server)
    client.create_folder("Replies")
    client.append("Replies", REPLY)
    before = client.folder_status("Replies", [b"UIDVALIDITY", b"MESSAGES"])
    client.logout()
    imap_server.recreate_mailbox("Replies")
    client = _client(imap_server)
    after = client.folder_status("Replies", [b"UIDVALIDITY", b"MESSAGES"])
    assert before[b"MESSAGES"] == 1
    assert after[b"MESSAGES"] == 0
    assert after[b"UIDVALIDITY"] != before[b"UIDVALIDITY"]
    client.logout()
