"""SMTP URLs: defaults, TLS modes, and errors that never repeat the password."""

from __future__ import annotations

import pytest

from pixeltrail.platform.errors import Invalid
from pixeltrail.platform.mail.smtp_urls import parse_smtp_url

PASSWORD = "hunter2-Zq9"


@pytest.mark.parametrize(
    ("url", "port", "security", "masked"),
    [
        ("smtp://ada:pw@Mail.Example.com", 587, "starttls", "smtp://ada:***@mail.example.com:587"),
        ("smtps://ada:pw@mail.example.com", 465, "tls", "smtps://ada:***@mail.example.com:465"),
        ("SMTP://mail.example.com:2525", 2525, "starttls", "smtp://mail.example.com:2525"),
        ("smtp://localhost:1025?starttls=off", 1025, "none", "smtp://localhost:1025?starttls=off"),
        ("smtp://[::1]:25/", 25, "starttls", "smtp://[::1]:25"),
        (
            "smtp://a%40b.example:p%3Aw@h.example",
            587,
            "starttls",
            "smtp://a%40b.example:***@h.example:587",
        ),
    ],
)
def test_parsing_and_masking(url: str, port: int, security: str, masked: str) -> None:
    endpoint = parse_smtp_url(url)
    assert (endpoint.port, endpoint.security) == (port, security)
    assert endpoint.url(masked=True) == masked
    assert parse_smtp_url(endpoint.url()) == endpoint


def test_user_and_password_are_percent_decoded_and_hidden_from_repr() -> None:
    endpoint = parse_smtp_url("smtp://a%40b.example:p%3Aw%2F@h.example")
    assert (endpoint.username, endpoint.password) == ("a@b.example", "p:w/")
    assert "p:w/" not in repr(endpoint)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"http://ada:{PASSWORD}@h.example", "use smtp://"),
        (f"smtp://ada:{PASSWORD}@", "host name is missing"),
        (f"smtp://ada:{PASSWORD}@h.example:99999", "port"),
        (f"smtp://ada:{PASSWORD}@h.example:x1", "port"),
        (f"smtp://ada:{PASSWORD}@h.example/path", "no path"),
        (f"smtp://ada:{PASSWORD}@h.example#{PASSWORD}", "fragment"),
        (f"smtp://ada:{PASSWORD}@h.example?starttls=off", "password in clear"),
        (f"smtps://ada:{PASSWORD}@h.example?starttls=on", "does not apply to smtps"),
        (f"smtp://ada:{PASSWORD}@h.example?password={PASSWORD}", "unknown option 'password'"),
        (f"smtp://:{PASSWORD}@h.example", "both a user name and a password"),
        ("smtp://ada@h.example", "both a user name and a password"),
        (f"smtp://ada:{PASSWORD} x@h.example", "spaces"),
        (f"smtp://ada:pa/{PASSWORD}@h.example", "%2F"),
        ("smtp://h.example/" + "x" * 3000, "at most 2048"),
    ],
)
def test_bad_urls_say_why_without_the_password(url: str, reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_smtp_url(url)
    assert caught.value.field == "smtp_url"
    assert reason in caught.value.message
    assert PASSWORD not in caught.value.message
    assert PASSWORD not in repr(caught.value) and PASSWORD not in str(caught.value)
