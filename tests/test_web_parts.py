"""Small pure parts of the web layer: client address behind proxies, Location encoding."""

from __future__ import annotations

from typing import Any

import pytest

from pixeltrail.web.client_ip import ClientAddress
from pixeltrail.web.location import to_location


def _scope(peer: str, *forwarded: str) -> dict[str, Any]:
    return {
        "client": (peer, 1234),
        "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded],
    }


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    client = ClientAddress(["10.0.0.0/8", "::1"])
    assert client.of(_scope("10.1.2.3", "203.0.113.7")) == "203.0.113.7"
    assert client.of(_scope("198.51.100.1", "203.0.113.7")) == "198.51.100.1"
    # A client-written first hop is not believed past our own proxies.
    assert client.of(_scope("10.1.2.3", "1.2.3.4, 203.0.113.7, 10.9.9.9")) == "203.0.113.7"
    assert client.of(_scope("10.1.2.3", "1.2.3.4", "203.0.113.7")) == "203.0.113.7"
    assert client.of(_scope("10.1.2.3", "not-an-ip")) == "10.1.2.3"
    assert client.of(_scope("10.1.2.3")) == "10.1.2.3"
    assert ClientAddress().of(_scope("10.1.2.3", "203.0.113.7")) == "10.1.2.3"


def test_forwarded_hops_written_with_a_port_or_brackets_name_their_client() -> None:
    client = ClientAddress(["10.0.0.0/8"])
    assert client.of(_scope("10.1.2.3", "203.0.113.7:41234")) == "203.0.113.7"
    assert client.of(_scope("10.1.2.3", "[2001:db8::7]:41234")) == "2001:db8::7"
    assert client.of(_scope("10.1.2.3", "[2001:db8::7]")) == "2001:db8::7"
    assert client.of(_scope("10.1.2.3", "2001:db8::7")) == "2001:db8::7"
    assert client.of(_scope("10.1.2.3", "203.0.113.7:41234, 10.9.9.9:80")) == "203.0.113.7"
    assert client.of(_scope("10.1.2.3", "[not-an-ip]:1")) == "10.1.2.3"


@pytest.mark.parametrize(
    ("destination", "location"),
    [
        ("https://example.com/a?b=c&d=%20e#f", "https://example.com/a?b=c&d=%20e#f"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://bücher.example/ü", "https://xn--bcher-kva.example/%C3%BC"),
        ("https://user@bücher.example:8443/", "https://user@xn--bcher-kva.example:8443/"),
        ("https://[2001:db8::1]/x", "https://[2001:db8::1]/x"),
    ],
)
def test_location(destination: str, location: str) -> None:
    assert to_location(destination) == location
