"""Where webhooks may be sent: https URLs of public hosts, checked when saved and when sent.

An account chooses the URL and the server makes the request, so a URL must never let an
account reach what only the server can (SSRF): cloud metadata at 169.254.169.254, a database
on 127.0.0.1, the office network. Two checks:

- when an endpoint is saved, its URL is https, carries no user name, and an IP written in it
  is a public address;
- when a delivery is sent, the host is resolved, every address it resolves to must be public,
  and the request connects to one of those checked addresses (never resolving the name again,
  so a name cannot answer with a public address for the check and a private one for the call).

PIXELTRAIL_WEBHOOKS_ALLOW_LOCAL=1 (local testing) also allows loopback and private addresses,
and plain http to loopback hosts. Link-local (metadata services), multicast, unspecified and
reserved addresses are refused whatever the setting. The address rule is address_policy's,
shared with mail servers.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

from pixeltrail.platform.address_policy import (
    Resolver,
    UnsafeAddress,
    address_refusal,
    checked_host_addresses,
    is_loopback_name,
    parse_ip,
    resolve,
)
from pixeltrail.platform.errors import Invalid

# Importable from here too: the webhook deliverer and its tests use them.
__all__ = [
    "Resolver",
    "UnsafeAddress",
    "check_endpoint_url",
    "checked_addresses",
    "pinned_target",
    "resolve",
]

MAX_URL = 2000
DEFAULT_PORTS = {"https": 443, "http": 80}


def check_endpoint_url(value: object, allow_local: bool, field: str = "url") -> str:
    """The URL as it will be stored; Invalid naming the reason when webhooks cannot go there."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a webhook URL is required, like https://hooks.example.com/pixeltrail", field)
    text = value.strip()
    if len(text) > MAX_URL:
        raise Invalid(f"a webhook URL has at most {MAX_URL} characters", field)
    if any(c.isspace() or ord(c) < 32 for c in text):
        raise Invalid("a webhook URL cannot contain spaces or control characters", field)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"not a valid URL: {exc}", field) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in DEFAULT_PORTS or not host:
        raise Invalid("a webhook URL starts with https:// and names a host", field)
    if "@" in parts.netloc:
        raise Invalid(
            "a webhook URL cannot carry a user name or password: deliveries are signed, "
            "verify the signature instead",
            field,
        )
    if parts.fragment:
        raise Invalid("a webhook URL has no #fragment (it is never sent to the server)", field)
    if port == 0:
        raise Invalid("port 0 is not a port a web server listens on", field)
    address = parse_ip(host)
    if address is not None:
        reason = address_refusal(address, allow_local)
        if reason:
            raise Invalid(f"{host} {reason}: webhooks go to public addresses only", field)
        loopback = address.is_loopback
    else:
        _check_hostname(host, field)
        if is_loopback_name(host) and not allow_local:
            raise Invalid(f"{host} is this server itself: webhooks go to public hosts", field)
        loopback = is_loopback_name(host)
    if scheme == "http" and not (allow_local and loopback):
        raise Invalid(
            "a webhook URL must use https (deliveries carry contact data); plain http is "
            "allowed only to loopback hosts with PIXELTRAIL_WEBHOOKS_ALLOW_LOCAL=1",
            field,
        )
    return text


def _check_hostname(host: str, field: str) -> None:
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Invalid(f"{host!r} is not a valid hostname", field) from None
    last = ascii_host.rsplit(".", 1)[-1]
    # 127.1, 2130706433 or 0x7f.1 are read as addresses by resolvers: refuse the disguise.
    if last.isdigit() or last.startswith("0x"):
        raise Invalid(
            f"{host!r} looks like an IP address in an unusual form: write it as a.b.c.d", field
        )


def checked_addresses(
    url: str, allow_local: bool, resolver: Resolver = resolve
) -> tuple[SplitResult, list[str]]:
    """The URL's parts and the addresses to connect to, every one of them allowed.

    Raises UnsafeAddress if any address the host resolves to is refused (an attacker's DNS
    could answer with a public and a private address), OSError if it does not resolve.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
    addresses = checked_host_addresses(host, port, allow_local, resolver)
    return parts, addresses


def pinned_target(parts: SplitResult, address: str) -> tuple[str, str, str | None]:
    """(URL naming `address` instead of the host, Host header, TLS server name) for one request.

    The connection goes to the address that was checked; TLS still verifies the certificate
    against the hostname, and the server still sees its own name in Host.
    """
    host = (parts.hostname or "").rstrip(".")
    literal = parse_ip(host) is not None
    ascii_host = host if literal else host.encode("idna").decode("ascii")
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    target = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
    host_header = f"[{host}]" if literal and ":" in host else ascii_host
    if parts.port:
        host_header += f":{parts.port}"
    server_name = None if literal or parts.scheme.lower() != "https" else ascii_host
    return target, host_header, server_name
