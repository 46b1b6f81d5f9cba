"""An INBOX over IMAP (imapclient, which blocks: the reader runs it in its own thread).

The INBOX is selected read-only (EXAMINE) and messages are fetched with BODY.PEEK, so nothing on
the server changes: no message is marked read, moved or deleted. The connection goes to one of
the addresses mail_server_addresses checked (public unless PIXELTRAIL_MAIL_ALLOW_LOCAL=1), while
TLS is verified against the host's name; `imap://` requires STARTTLS, and `?starttls=off` (plain
text, a password in clear) only ever reaches loopback addresses.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
import time
from datetime import datetime
from typing import Any

from imapclient import IMAPClient, tls
from imapclient.exceptions import LoginError

from pixeltrail.inbound import MAX_READ_BYTES
from pixeltrail.platform.address_policy import Resolver, UnsafeAddress, parse_ip, resolve
from pixeltrail.platform.mail.imap_urls import ImapEndpoint
from pixeltrail.platform.mail.servers import mail_server_addresses
from pixeltrail.receiving.sources import Fetched, InboxUnavailable

CONNECT_SECONDS = 15.0
READ_SECONDS = 60.0
# Fetched in one command at most: the reader's batch is smaller anyway.
_BODY = f"BODY.PEEK[]<0.{MAX_READ_BYTES}>".encode()
_SERVER_ERRORS = (imaplib.IMAP4.error, OSError, EOFError)


class ImapInbox:
    """An InboxSource (sources.py) over IMAP; every failure is an InboxUnavailable saying what
    went wrong without the password."""

    def __init__(
        self,
        endpoint: ImapEndpoint,
        allow_local: bool,
        tls_context: ssl.SSLContext | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.endpoint = endpoint
        self.allow_local = allow_local
        self.resolver = resolver
        self._tls = tls_context or ssl.create_default_context()
        self._client: Any = None
        self._idle = False

    def open(self) -> int:
        self.close()
        client = self._connect()
        self._client = client
        try:
            if self.endpoint.security == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise InboxUnavailable(
                        "cannot connect: the server does not offer STARTTLS, which imap:// "
                        "requires (use imaps://)"
                    )
                client.starttls(self._tls)
            client.login(self.endpoint.username, self.endpoint.password)
        except LoginError as exc:
            self.close()
            raise InboxUnavailable(f"cannot log in: {_said(exc)}") from None
        except ssl.SSLError as exc:
            self.close()
            raise InboxUnavailable(f"cannot connect: TLS failed: {_said(exc)}") from None
        except InboxUnavailable:
            self.close()
            raise
        except _SERVER_ERRORS as exc:
            self.close()
            raise InboxUnavailable(f"cannot connect: {_said(exc)}") from None
        try:
            client.normalise_times = False  # INTERNALDATE with its zone, not local time
            selected = client.select_folder("INBOX", readonly=True)
            self._idle = bool(client.has_capability("IDLE"))
            return int(selected[b"UIDVALIDITY"])
        except (*_SERVER_ERRORS, KeyError, ValueError) as exc:
            self.close()
            raise InboxUnavailable(f"cannot read the INBOX: {_said(exc)}") from None

    def fetch_after(self, last_uid: int, limit: int) -> list[Fetched]:
        client = self._open_client()
        try:
            client.noop()  # the server updates its view of the INBOX: mail just delivered shows
            # `n:*` always names the highest UID, even one below n: filtered here.
            found = sorted(
                uid for uid in client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid
            )
            wanted = found[:limit]
            if not wanted:
                return []
            answers = client.fetch(wanted, [_BODY, b"INTERNALDATE"])
        except _SERVER_ERRORS as exc:
            self.close()
            raise InboxUnavailable(f"connection lost: {_said(exc)}") from None
        fetched: list[Fetched] = []
        for uid in wanted:
            data = answers.get(uid)
            if data is None:  # expunged meanwhile
                continue
            raw = next((v for k, v in data.items() if k.startswith(b"BODY[]")), None) or b""
            fetched.append(Fetched(uid, bytes(raw), _ms(data.get(b"INTERNALDATE"))))
        return fetched

    def wait(self, timeout_s: float) -> None:
        client = self._open_client()
        timeout_s = max(0.0, timeout_s)
        try:
            if not self._idle:
                time.sleep(timeout_s)
                client.noop()  # a dropped connection shows now, not at the next fetch
                return
            client.idle()
            try:
                client.idle_check(timeout=timeout_s)
            finally:
                client.idle_done()
        except _SERVER_ERRORS as exc:
            self.close()
            raise InboxUnavailable(f"connection lost: {_said(exc)}") from None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # already gone: nothing to tell the server
            with contextlib.suppress(Exception):
                client.shutdown()

    def _open_client(self) -> Any:
        if self._client is None:
            raise InboxUnavailable("connection lost: not connected")
        return self._client

    def _connect(self) -> Any:
        ep = self.endpoint
        try:
            addresses = mail_server_addresses(ep.host, ep.port, self.allow_local, self.resolver)
        except UnsafeAddress as exc:
            raise InboxUnavailable(f"cannot connect: the mail server {exc}") from None
        except OSError as exc:
            raise InboxUnavailable(f"cannot connect: {ep.host}: {_said(exc)}") from None
        if ep.security == "none" and not all(_loopback(a) for a in addresses):
            raise InboxUnavailable(
                f"cannot connect: {ep.host} is not on this machine, and starttls=off would send "
                "the password in clear"
            )
        failure: Exception = OSError("no address")
        for address in addresses:
            try:
                return _PinnedClient(ep.host, ep.port, address, ep.security == "tls", self._tls)
            except ssl.SSLError as exc:
                raise InboxUnavailable(f"cannot connect: TLS failed: {_said(exc)}") from None
            except _SERVER_ERRORS as exc:  # refused, unreachable or timed out: the next one
                failure = exc
        raise InboxUnavailable(f"cannot connect: {ep.host} port {ep.port}: {_said(failure)}")


def _loopback(address: str) -> bool:
    parsed = parse_ip(address)
    return parsed is not None and parsed.is_loopback


def _said(exc: BaseException) -> str:
    text = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(str(text).split())[:300]
    return text or type(exc).__name__


def _ms(value: object) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(time.time() * 1000)


class _PinnedIMAP4(imaplib.IMAP4):
    """Plain IMAP to a checked address (STARTTLS follows, verified against the name)."""

    def __init__(self, host: str, port: int, address: str) -> None:
        self._address = address
        super().__init__(host, port, CONNECT_SECONDS)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return socket.create_connection((self._address, self.port), timeout)


class _PinnedIMAP4TLS(tls.IMAP4_TLS):  # type: ignore[misc]
    """IMAP over TLS to a checked address, the certificate verified against the name."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext) -> None:
        self._address = address
        super().__init__(host, port, context, CONNECT_SECONDS)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), timeout or CONNECT_SECONDS)
        return tls.wrap_socket(sock, self.ssl_context, self.host)  # type: ignore[no-any-return]


class _PinnedClient(IMAPClient):  # type: ignore[misc]
    def __init__(
        self, host: str, port: int, address: str, use_tls: bool, context: ssl.SSLContext
    ) -> None:
        self._address = address
        super().__init__(host, port, ssl=use_tls, ssl_context=context, timeout=READ_SECONDS)

    def _create_IMAP4(self) -> imaplib.IMAP4:
        if self.ssl:
            return _PinnedIMAP4TLS(self.host, self.port, self._address, self.ssl_context)
        return _PinnedIMAP4(self.host, self.port, self._address)
