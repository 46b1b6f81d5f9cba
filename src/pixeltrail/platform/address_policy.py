"""Which addresses the server may connect to for an account (webhooks, mail servers): public ones.

An account chooses the host and the server makes the connection, so a host must never let an
account reach what only the server can (SSRF): cloud metadata at 169.254.169.254, a database
or mail relay on 127.0.0.1, the office network. Each kind of connection checks its host when
it is saved and again when it connects, after resolving the name: every address the name
resolves to must be allowed, and the connection goes to one of those checked addresses, never
resolving the name again (so a name cannot answer with a public address for the check and a
private one for the connection).

`allow_local` (set per kind by the instance, for local testing or a relay on the same host)
also allows loopback and private addresses, unique-local IPv6 among them. Link-local addresses
(metadata services), multicast, unspecified and reserved ones are refused whatever the setting.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class UnsafeAddress(ValueError):
    """A host that resolves to an address the server may not connect to; the message says why."""


def parse_ip(text: str) -> IPAddress | None:
    """`text` as an IP address (an IPv4-mapped IPv6 one as IPv4), None if it is a name."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# IPv6 prefixes that carry an IPv4 address a gateway forwards to (NAT64's well-known prefix;
# 6to4 is `sixtofour`): the IPv4 address inside is checked as well.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_refusal(address: IPAddress, allow_local: bool) -> str | None:
    """Why the server may not connect to `address` for an account (None when it may)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None and (refusal := address_refusal(embedded, allow_local)):
        return f"carries {embedded}, which {refusal}"
    if address.is_link_local:
        return "is a link-local address (cloud metadata services live there)"
    if address.is_loopback:  # before is_reserved: ::1 is in the reserved ::/8
        return None if allow_local else "is a loopback address (this server itself)"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "is not an address a server has"
    if address.is_global or allow_local:
        return None
    return "is a private address (an internal network)"


def is_loopback_name(host: str) -> bool:
    """`localhost` and names under it, which are this machine (RFC 6761)."""
    return host == "localhost" or host.endswith(".localhost")


def resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host`, in its order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found


def checked_host_addresses(
    host: str, port: int, allow_local: bool, resolver: Resolver = resolve
) -> list[str]:
    """The addresses to connect to for `host` (a name or an IP), every one of them allowed.

    Raises UnsafeAddress if any address the host resolves to is refused (an attacker's DNS
    could answer with a public and a private address), OSError if it does not resolve.
    """
    literal = parse_ip(host)
    addresses = [str(literal)] if literal is not None else resolver(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    for text in addresses:
        address = parse_ip(text)
        reason = (
            "is not an IP address" if address is None else address_refusal(address, allow_local)
        )
        if reason:
            shown = host if literal is not None else f"{host} resolves to {text}, which"
            raise UnsafeAddress(f"refused: {shown} {reason}")
    return addresses
