"""Mailers deliver finished messages: over SMTP, or into the built-in outbox on disk."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import Protocol, TypeVar

import aiosmtplib

from pixeltrail.platform.address_policy import Resolver, UnsafeAddress, resolve
from pixeltrail.platform.mail.servers import mail_server_addresses
from pixeltrail.platform.mail.smtp_urls import SmtpEndpoint

_T = TypeVar("_T")


class DeliveryError(Exception):
    """A failed delivery; `permanent` for 5xx answers (the address bounced)."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    async def send(
        self,
        message_id: str,
        sender: str,
        recipient: str,
        data: bytes,
        ready: Awaitable[None] | None = None,
    ) -> None:
        """Deliver `data`. `ready`, if given, is awaited before the message itself goes: once
        the server has taken the envelope (sender and recipient), before DATA. If it raises,
        nothing more is sent and that is raised."""
        ...

    async def close(self) -> None: ...


class OutboxMailer:
    """The built-in outbox: each message is kept as an .eml file for viewing, nothing leaves."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(
        self,
        message_id: str,
        sender: str,
        recipient: str,
        data: bytes,
        ready: Awaitable[None] | None = None,
    ) -> None:
        if ready is not None:
            await ready
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, self.directory / f"{message_id}.eml")

    async def close(self) -> None:
        return None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the system's CA certificates takes tens of milliseconds: once per process, not
    # once per connection (a worker opens several per mailbox).
    return ssl.create_default_context()


class SmtpMailer:
    """One reused connection to one SMTP server.

    Each connection resolves the server's name, refuses it if any address is one the instance
    may not reach (mail_servers.py; `allow_local` is PIXELTRAIL_MAIL_ALLOW_LOCAL), and connects
    to a checked address; TLS still verifies the certificate against the name.
    """

    def __init__(
        self,
        target: SmtpEndpoint,
        timeout: float = 30.0,
        *,
        allow_local: bool = False,
        resolver: Resolver = resolve,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.allow_local = allow_local
        self.resolver = resolver
        self._tls = tls_context  # None: the system's CA certificates
        self._client: aiosmtplib.SMTP | None = None

    async def _socket(self) -> socket.socket:
        """A socket connected to one of the server's checked addresses, in the resolver's order."""
        t = self.target
        try:
            addresses = await asyncio.to_thread(
                mail_server_addresses, t.host, t.port, self.allow_local, self.resolver
            )
        except UnsafeAddress as exc:
            raise DeliveryError(f"not connecting to the mail server: {exc}", False) from None
        loop = asyncio.get_running_loop()
        failure: OSError = OSError(f"{t.host} has no address")
        for address in addresses:
            sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
            sock.setblocking(False)
            try:
                async with asyncio.timeout(self.timeout):
                    await loop.sock_connect(sock, (address, t.port))
            except OSError as exc:  # refused, unreachable or timed out: the next address
                sock.close()
                failure = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise aiosmtplib.SMTPConnectError(
            f"Error connecting to {t.host} on port {t.port}: {str(failure) or 'timed out'}"
        )

    async def _connect(self) -> aiosmtplib.SMTP:
        t = self.target
        sock = await self._socket()
        client = aiosmtplib.SMTP(
            # The name, not the address: what TLS verifies the server's certificate against.
            hostname=t.host,
            sock=sock,
            use_tls=t.security == "tls",
            # STARTTLS is required, never optional: no silent fall-back to plain text.
            start_tls=t.security == "starttls",
            timeout=self.timeout,
            tls_context=None if t.security == "none" else self._tls or _tls_context(),
        )
        try:
            await client.connect()
        except BaseException:
            sock.close()  # a failed handshake leaves it open
            raise
        if t.username:
            await client.login(t.username, t.password or "")
        if client.is_ehlo_or_helo_needed:  # the extensions (SIZE) are known before MAIL
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
        return client

    async def send(
        self,
        message_id: str,
        sender: str,
        recipient: str,
        data: bytes,
        ready: Awaitable[None] | None = None,
    ) -> None:
        # MAIL, RCPT and DATA one by one rather than `sendmail`, which parses both addresses
        # twice and scans the whole message twice for line ends: `ready` goes between them.
        client = await self._step(self._envelope(sender, recipient, len(data)))
        if ready is not None:
            try:
                await ready
            except BaseException:
                await self._drop()  # the envelope open on it is never finished
                raise
        await self._step(self._data(client, data))

    async def _envelope(self, sender: str, recipient: str, size: int) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            self._client = await self._connect()
        client = self._client
        # The message is built with CRLF line ends, as it goes on the wire: `size` is exact.
        options = [f"SIZE={size}"] if client.supports_extension("size") else []
        # One deadline for the envelope rather than a timer for each command and its answer.
        try:
            async with asyncio.timeout(self.timeout):
                await client.mail(sender, options=options, timeout=None)
                await client.rcpt(recipient, timeout=None)
        except aiosmtplib.SMTPRecipientRefused as exc:
            await self._reset()
            raise DeliveryError(f"{exc.code} {exc.message}", exc.code >= 500) from None
        return client

    async def _data(self, client: aiosmtplib.SMTP, data: bytes) -> None:
        async with asyncio.timeout(self.timeout):
            await client.data(data, timeout=None)

    async def _step(self, step: Awaitable[_T]) -> _T:
        """`step`'s result; its SMTP and network errors as DeliveryError."""
        try:
            return await step
        except DeliveryError:
            raise
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop()
            raise DeliveryError(f"{exc.code} {exc.message}", exc.code >= 500) from None
        except aiosmtplib.SMTPException as exc:  # its own timeouts too (connecting)
            await self._drop()
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from None
        except TimeoutError:
            await self._drop()
            raise DeliveryError(
                f"no answer from the SMTP server within {self.timeout:g} s", permanent=False
            ) from None
        except OSError as exc:
            await self._drop()
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from None
        except BaseException:
            await self._drop()  # cancelled midway: the connection is not used again
            raise

    async def _reset(self) -> None:
        """A refused recipient: the envelope is reset (RSET) for the next message."""
        if self._client is None:
            return
        try:
            await self._client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self._drop()

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                client.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
