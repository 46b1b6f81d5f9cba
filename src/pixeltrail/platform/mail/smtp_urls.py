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
        return server_url(
            self.scheme, self.host, self.port, self.security, self.username, self.password, masked
        )


def parse_smtp_url(url: str, field_name: str = "smtp_url") -> SmtpEndpoint:
    parsed = parse_server_url(
        url,
        field_name,
        protocol="SMTP",
        default_ports=DEFAULT_PORTS,
        tls_scheme="smtps",
        example="smtp://user:password@smtp.example.com:587",
        needs_login=False,
    )
    return SmtpEndpoint(
        scheme="smtps" if parsed.scheme == "smtps" else "smtp",
        host=parsed.host,
        port=parsed.port,
        security=parsed.security,
        username=parsed.username,
        password=parsed.password,
    )


@dataclass(frozen=True)
class ServerUrl:
    """A mail server URL's parts, as parse_server_url found them."""

    scheme: str
    host: str
    port: int
    security: Security
    username: str | None
    password: str | None = field(repr=False)


def server_url(
    scheme: str,
    host: str,
    port: int,
    security: Security,
    username: str | None,
    password: str | None,
    masked: bool,
) -> str:
    """The canonical text of a mail server URL; `masked` puts *** where the password is."""
    auth = ""
    if username is not None:
        secret = MASK if masked else quote(password or "", safe="")
        auth = f"{quote(username, safe='')}:{secret}@"
    shown_host = f"[{host}]" if ":" in host else host
    query = "?starttls=off" if security == "none" else ""
    return f"{scheme}://{auth}{shown_host}:{port}{query}"


def parse_server_url(
    url: str,
    field_name: str,
    *,
    protocol: str,
    default_ports: dict[str, int],
    tls_scheme: str,
    example: str,
    needs_login: bool,
    clear_password_allowed: bool = False,
) -> ServerUrl:
    """The parts of a mail server URL (SMTP, IMAP): Invalid naming `field_name` and the part
    that is wrong, never quoting the URL. `clear_password_allowed` lets `?starttls=off` come
    with a password (the caller restricts where such a server may be)."""

    def bad(reason: str) -> Invalid:
        return Invalid(f"{field_name}: {reason}", field_name)

    plain_scheme = next(name for name in default_ports if name != tls_scheme)
    schemes = (
        f"use {plain_scheme}:// (STARTTLS, port {default_ports[plain_scheme]}) "
        f"or {tls_scheme}:// (TLS, port {default_ports[tls_scheme]})"
    )
    if not isinstance(url, str) or not url.strip():
        raise bad(f"an {protocol} URL is required, like {example}")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise bad(f"an {protocol} URL has at most {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise bad(f"an {protocol} URL cannot contain spaces or control characters")
    scheme, _, _ = url.partition("://")
    scheme = scheme.lower()
    if scheme not in default_ports:
        raise bad(schemes)
    parts = urlsplit(url)
    # The parts of the URL after the host, which cannot hold the password.
    if parts.path not in ("", "/"):
        raise bad(f"an {protocol} URL has no path after the host{_ENCODE_HINT}")
    if parts.fragment:
        raise bad(f"an {protocol} URL has no #fragment")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise bad("the server's host name is missing")
    try:
        port = parts.port or default_ports[scheme]
    except ValueError:
        raise bad(f"the port is a number from 1 to 65535{_ENCODE_HINT}") from None
    if not 1 <= port <= 65535:
        raise bad("the port is a number from 1 to 65535")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if needs_login and (not username or password is None):
        raise bad("give a user name and a password (user:password@host)")
    if (username is None) != (password is None) or username == "":
        raise bad("give both a user name and a password (user:password@host), or neither")
    security: Security = "tls" if scheme == tls_scheme else "starttls"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "starttls":
            raise bad(f"unknown option {name[:40]!r} (the only one is starttls=off)")
        if value not in ("on", "off"):
            raise bad("starttls is on or off")
        if scheme == tls_scheme:
            raise bad(f"starttls does not apply to {tls_scheme}://, which is TLS from the start")
        if value == "off":
            security = "none"
    if security == "none" and password is not None and not clear_password_allowed:
        raise bad(f"starttls=off would send the password in clear: use STARTTLS or {tls_scheme}://")
    return ServerUrl(scheme, host.lower(), port, security, username, password)
