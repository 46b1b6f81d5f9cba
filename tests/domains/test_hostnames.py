"""Hostnames as users type them: normalised, or refused with a reason naming the field."""

from __future__ import annotations

import pytest

from pixeltrail.platform.domains.domains import normalize_hostname
from pixeltrail.platform.errors import Invalid


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("track.acme.com", "track.acme.com"),
        ("  Track.ACME.com.  ", "track.acme.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("ＢÜCHER．example", "xn--bcher-kva.example"),  # full-width letters and dot
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("1track.example", "1track.example"),
    ],
)
def test_hostnames_are_stored_lowercase_ascii(given: str, stored: str) -> None:
    assert normalize_hostname(given) == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("203.0.113.7", "is an IP address"),
        ("2001:db8::1", "is an IP address"),
        ("[2001:db8::1]", "is an IP address"),
        ("203.0.113.7:443", "is an IP address"),
        ("127.1", "looks like an IP address"),
        ("https://track.acme.com", "has a scheme"),
        ("mailto:track.acme.com", "has a scheme"),
        ("track.acme.com/links", "has a path"),
        ("track.acme.com?x=1", "has a path"),
        ("track.acme.com:8443", "has a port"),
        ("user@track.acme.com", "has a user name"),
        ("*.acme.com", "is a wildcard"),
        ("localhost", "is a single label"),
        ("track..acme.com", "has an empty label"),
        (".acme.com", "has an empty label"),
        ("tr_ack.acme.com", "characters a hostname cannot have"),
        ("-track.acme.com", "characters a hostname cannot have"),
        ("track .acme.com", "has spaces"),
        ("xn--zz.acme.com", "not valid IDNA"),
        ("a" * 64 + ".acme.com", "longer than 63"),
        (".".join(["abcdefghij"] * 23) + ".com", "at most 253"),
        ("", "is required"),
    ],
)
def test_bad_hostnames_are_refused_saying_why(given: str, reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_hostname(given)
    assert caught.value.field == "hostname"
    assert reason in caught.value.message


def test_the_longest_valid_hostname_is_accepted() -> None:
    name = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters
    assert len(name) == 253
    assert normalize_hostname(name) == name
    with pytest.raises(Invalid):
        normalize_hostname(name + "b")
