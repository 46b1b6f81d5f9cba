"""Signatures as the Standard Webhooks spec computes them; which URLs webhooks may go to."""

from __future__ import annotations

import base64

import pytest

from pixeltrail.platform.errors import Invalid
from pixeltrail.platform.webhooks.delivery import sign
from pixeltrail.platform.webhooks.endpoints import check_event_types, new_signing_secret
from pixeltrail.platform.webhooks.urls import (
    UnsafeAddress,
    check_endpoint_url,
    checked_addresses,
    pinned_target,
)


def test_signature_matches_the_published_test_vector() -> None:
    # standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py
    # (test_sign_function): the reference implementation's expected signature.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signing_secrets_follow_the_spec_format() -> None:
    secrets = {new_signing_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) <= 64


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/pixeltrail",
        "https://hooks.example.com:8443/in?token=abc",
        "https://8.8.8.8/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://bücher.example/hook",
    ],
)
def test_public_https_urls_are_accepted(url: str) -> None:
    assert check_endpoint_url(url, allow_local=False) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "https"),
        ("ftp://hooks.example.com/x", "https://"),
        ("hooks.example.com/x", "https://"),
        ("https:///x", "https://"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://127.8.9.10:8080/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://localhost/x", "this server itself"),
        ("https://api.localhost/x", "this server itself"),
        ("https://10.1.2.3/x", "private"),
        ("https://192.168.0.10/x", "private"),
        ("https://172.16.5.4/x", "private"),
        ("https://[fd00::1]/x", "private"),
        ("https://[::ffff:10.0.0.1]/x", "private"),
        ("https://[2002:7f00:1::]/x", "carries 127.0.0.1, which is a loopback"),
        ("https://[2002:a9fe:a9fe::1]/x", "carries 169.254.169.254, which is a link-local"),
        ("https://[64:ff9b::a00:1]/x", "carries 10.0.0.1, which is a private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://0.0.0.0/x", "not an address"),
        ("https://2130706433/x", "unusual form"),
        ("https://0x7f.1/x", "unusual form"),
        ("https://127.1/x", "unusual form"),
        ("https://user:pass@hooks.example.com/x", "user name"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("https://hooks.example.com:99999/x", "not a valid URL"),
        ("https://hooks.example.com/a b", "spaces"),
        ("", "required"),
        ("https://" + "a" * 2000 + ".example", "at most"),
    ],
)
def test_unsafe_or_malformed_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(Invalid, match=why) as refused:
        check_endpoint_url(url, allow_local=False)
    assert refused.value.field == "url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost:8080/hook",
        "http://[::1]:8080/hook",
        "https://10.1.2.3/hook",
        "https://receiver.internal/hook",
    ],
)
def test_local_testing_allows_loopback_and_private_addresses(url: str) -> None:
    assert check_endpoint_url(url, allow_local=True) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://10.1.2.3/hook", "https"),
        ("http://hooks.example.com/hook", "https"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
    ],
)
def test_local_testing_still_refuses_plain_http_off_loopback_and_metadata(
    url: str, why: str
) -> None:
    with pytest.raises(Invalid, match=why):
        check_endpoint_url(url, allow_local=True)


def test_every_resolved_address_must_be_allowed() -> None:
    def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("evil.example", 443)
        return ["93.184.216.34", "10.0.0.7"]

    with pytest.raises(UnsafeAddress, match=r"evil\.example resolves to 10\.0\.0\.7"):
        checked_addresses("https://evil.example/x", False, resolver)
    _parts, addresses = checked_addresses("https://evil.example/x", True, resolver)
    assert addresses == ["93.184.216.34", "10.0.0.7"]

    def metadata(_host: str, _port: int) -> list[str]:
        return ["169.254.169.254"]

    with pytest.raises(UnsafeAddress, match="link-local"):
        checked_addresses("https://evil.example/x", True, metadata)


def test_requests_are_pinned_to_the_checked_address() -> None:
    parts, _ = checked_addresses(
        "https://hooks.example.com:8443/in?a=1", False, lambda _h, _p: ["93.184.216.34"]
    )
    assert pinned_target(parts, "93.184.216.34") == (
        "https://93.184.216.34:8443/in?a=1",
        "hooks.example.com:8443",
        "hooks.example.com",
    )
    assert pinned_target(parts, "2606:4700::1111")[0] == "https://[2606:4700::1111]:8443/in?a=1"
    parts, _ = checked_addresses("https://bücher.example", False, lambda _h, _p: ["8.8.8.8"])
    assert pinned_target(parts, "8.8.8.8") == (
        "https://8.8.8.8/",
        "xn--bcher-kva.example",
        "xn--bcher-kva.example",
    )
    parts, _ = checked_addresses("https://8.8.8.8/x", False)
    assert pinned_target(parts, "8.8.8.8") == ("https://8.8.8.8/x", "8.8.8.8", None)


def test_event_types_are_checked() -> None:
    assert check_event_types(["message.clicked", "message.opened", "message.clicked"]) == (
        "message.opened",
        "message.clicked",
    )
    for bad in ([], "message.opened", ["message.complained"], [1], None):
        with pytest.raises(Invalid) as refused:
            check_event_types(bad)
        assert refused.value.field == "event_types"
