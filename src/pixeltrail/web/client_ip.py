"""Who sent a request: the peer address, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies
        )

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def of(self, scope: MutableMapping[str, Any]) -> str:
        """The client of an ASGI request."""
        client = scope.get("client")
        return self.of_peer(
            client[0] if client else "",
            lambda: [
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"x-forwarded-for"
            ],
        )

    def of_peer(self, peer: str, forwarded: Callable[[], Iterable[str]]) -> str:
        """The client of a request from `peer`, given its X-Forwarded-For values (read only
        when the peer is a trusted proxy)."""
        if not self.trusted or not self._is_trusted(peer):
            return peer
        return self.behind(peer, forwarded())

    def behind(self, peer: str, forwarded: Iterable[str]) -> str:
        """The client behind the trusted proxy `peer`, from the X-Forwarded-For values."""
        hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
        # Walk from the nearest hop back: the first address not one of our proxies is the
        # client. Anything further left was written by the client and cannot be believed.
        for written in reversed(hops):
            hop = _without_port(written)
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer
            if not self._is_trusted(hop):
                return hop
        return _without_port(hops[0]) if hops else peer


def _without_port(hop: str) -> str:
    """The address of a hop some proxies write with its port (`203.0.113.7:41234`,
    `[2001:db8::1]:41234`) or in brackets (`[2001:db8::1]`)."""
    if hop.startswith("["):
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop
