"""IMAP URLs: `imap://` (STARTTLS) and `imaps://` (TLS), where a mailbox's INBOX is read.

    imap://user:password@imap.example.com          port 143, STARTTLS required
    imaps://user:password@imap.example.com         port 993, TLS from the first byte
    imap://user:password@127.0.0.1:1143?starttls=off   no encryption: a test server on loopback

Parsed, checked and masked by the same code as SMTP URLs (smtp_urls.py): a user name and a
password are required (the INBOX is read after logging in), `imap://` never falls back to plain
text, and no message ever contains the URL or its password. `?starttls=off` sends the password
in clear, so it is accepted only for a loopback host (an address or `localhost`) and only where
PIXELTRAIL_MAIL_ALLOW_LOCAL=1; the reader checks again that every address it connects to is
loopback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pixeltrail.platform.address_policy import is_loopback_name, parse_ip
from pixeltrail.platform.errors import Invalid
from pixeltrail.platform.mail.servers import ALLOW_LOCAL
from pixeltrail.platform.mail.smtp_urls import Security, parse_server_url, server_url

DEFAULT_PORTS = {"imap": 143, "imaps": 993}


@dataclass(frozen=True)
class ImapEndpoint:
    """Where to read an INBOX; the password never shows in its repr."""

    scheme: Literal["imap", "imaps"]
    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)

    def url(self, *, masked: bool = False) -> str:
        """The canonical URL; `masked` puts *** where the password is."""
        return server_url(
            self.scheme, self.host, self.port, self.security, self.username, self.password, masked
        )


def parse_imap_url(url: str, allow_local: bool, field_name: str = "imap_url") -> ImapEndpoint:
    """The endpoint of an IMAP URL; Invalid naming `field_name` and the part that is wrong."""
    parsed = parse_server_url(
        url,
        field_name,
        protocol="IMAP",
        default_ports=DEFAULT_PORTS,
        tls_scheme="imaps",
        example="imaps://user:password@imap.example.com:993",
        needs_login=True,
        clear_password_allowed=True,
    )
    if parsed.security == "none" and not (allow_local and is_loopback_host(parsed.host)):
        raise Invalid(
            f"{field_name}: starttls=off would send the password in clear: it is only for a "
            f"test server on this machine (127.0.0.1, ::1 or localhost) with {ALLOW_LOCAL}=1; "
            "use STARTTLS or imaps://",
            field_name,
        )
    assert parsed.username is not None
    assert parsed.password is not None
    return ImapEndpoint(
        scheme="imaps" if parsed.scheme == "imaps" else "imap",
        host=parsed.host,
        port=parsed.port,
        security=parsed.security,
        username=parsed.username,
        password=parsed.password,
    )


def is_loopback_host(host: str) -> bool:
    """A loopback address, or a name only this machine answers to (`localhost`)."""
    address = parse_ip(host)
    return address.is_loopback if address is not None else is_loopback_name(host)
