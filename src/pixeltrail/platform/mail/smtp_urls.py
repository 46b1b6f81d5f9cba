"""SMTP URLs: `smtp://` (STARTTLS) and `smtps://` (TLS), parsed, checked and shown masked.

    smtp://user:password@smtp.example.com          port 587, STARTTLS required
    smtps://user:password@smtp.example.com         port 465, TLS from the first byte
    smtp://localhost:1025?starttls=off             no encryption: local test servers only

`smtp://` never falls back to plain text: a server that does not offer STARTTLS is an error
when sending. `?starttls=off` is refused when the URL holds a password, so a password is never
sent in clear. User name and password are percent-decoded (`%40` for `@`, `%3A` for `:`).

Parsing checks the URL's form only. Whether the instance may connect to its host (public hosts
only, unless PIXELTRAIL_MAIL_ALLOW_LOCAL=1 allows this host and its network, as the example
on localhost needs) is mail_servers.py's rule, applied when a mailbox is saved and at every
connection.

No message here ever contains the URL or its password: errors name the part that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pixeltrail.platform.errors import Invalid

Security = Literal["starttls", "tls", "none"]
MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
MASK = "***"
_ENCODE_HINT = " (in a user name or password, write / ? # @ : as %2F %3F %23 %40 %3A)"


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where and how to send; the password never shows in its repr."""

    scheme: Literal["smtp", "smtps"]
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def url(self, *, masked: bool = False) -> str:
        """The canonical URL; `masked` puts *** where the password is."""
        auth = ""
        if self.username is not None:
            secret = MASK if masked else quote(self.password or "", safe="")
            auth = f"{quote(self.username, safe='')}:{secret}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "?starttls=off" if self.security == "none" else ""
        return f"{self.scheme}://{auth}{host}:{self.port}{query}"


def parse_smtp_url(url: str, field_name: str = "smtp_url") -> SmtpEndpoint:
    def bad(reason: str) -> Invalid:
        return Invalid(f"{field_name}: {reason}", field_name)

    if not isinstance(url, str) or not url.strip():
        raise bad("an SMTP URL is required, like smtp://user:password@smtp.example.com:587")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise bad(f"an SMTP URL has at most {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise bad("an SMTP URL cannot contain spaces or control characters")
    scheme, _, _ = url.partition("://")
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise bad("use smtp:// (STARTTLS, port 587) or smtps:// (TLS, port 465)")
    parts = urlsplit(url)
    # The parts of the URL after the host, which cannot hold the password.
    if parts.path not in ("", "/"):
        raise bad(f"an SMTP URL has no path after the host{_ENCODE_HINT}")
    if parts.fragment:
        raise bad("an SMTP URL has no #fragment")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise bad("the server's host name is missing")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise bad(f"the port is a number from 1 to 65535{_ENCODE_HINT}") from None
    if not 1 <= port <= 65535:
        raise bad("the port is a number from 1 to 65535")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if (username is None) != (password is None) or username == "":
        raise bad("give both a user name and a password (user:password@host), or neither")
    security: Security = "tls" if scheme == "smtps" else "starttls"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "starttls":
            raise bad(f"unknown option {name[:40]!r} (the only one is starttls=off)")
        if value not in ("on", "off"):
            raise bad("starttls is on or off")
        if scheme == "smtps":
            raise bad("starttls does not apply to smtps://, which is TLS from the start")
        if value == "off":
            security = "none"
    if security == "none" and password is not None:
        raise bad("starttls=off would send the password in clear: use STARTTLS or smtps://")
    return SmtpEndpoint(
        scheme="smtps" if scheme == "smtps" else "smtp",
        host=host.lower(),
        port=port,
        security=security,
        username=username,
        password=password,
    )
