"""Mailers deliver finished messages: over SMTP, or into the built-in outbox on disk."""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
import tempfile
from pathlib import Path
from typing import Protocol

import aiosmtplib

from pixeltrail.platform.smtp_urls import SmtpEndpoint


class DeliveryError(Exception):
    """A failed delivery; `permanent` for 5xx answers (the address bounced)."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    async def send(self, message_id: str, sender: str, recipient: str, data: bytes) -> None: ...

    async def close(self) -> None: ...


class OutboxMailer:
    """The built-in outbox: each message is kept as an .eml file for viewing, nothing leaves."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message_id: str, sender: str, recipient: str, data: bytes) -> None:
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
    """One reused connection to one SMTP server."""

    def __init__(self, target: SmtpEndpoint, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        self._client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        t = self.target
        client = aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            use_tls=t.security == "tls",
            # STARTTLS is required, never optional: no silent fall-back to plain text.
            start_tls=t.security == "starttls",
            timeout=self.timeout,
            tls_context=None if t.security == "none" else _tls_context(),
        )
        await client.connect()
        if t.username:
            await client.login(t.username, t.password or "")
        return client

    async def send(self, message_id: str, sender: str, recipient: str, data: bytes) -> None:
        try:
            if self._client is None or not self._client.is_connected:
                self._client = await self._connect()
            errors, _ = await self._client.sendmail(sender, [recipient], data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            raise DeliveryError(f"{refused.code} {refused.message}", refused.code >= 500) from None
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop()
            raise DeliveryError(f"{exc.code} {exc.message}", exc.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._drop()
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from None
        if errors:
            code, text = next(iter(errors.values()))
            raise DeliveryError(f"{code} {text}", code >= 500)

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
