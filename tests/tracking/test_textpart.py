"""Plain-text parts: URLs in running text become tracking links; the text around them stays."""

from __future__ import annotations

import pytest

from pixeltrail.tracking.textpart import instrument_text

from ..conftest import TrackerFactory


@pytest.mark.parametrize(
    ("text", "destinations"),
    [
        (b"See https://a.example/pricing.", ["https://a.example/pricing"]),
        (b"(https://a.example/x_(y))", ["https://a.example/x_(y)"]),
        (b"(see https://a.example/x)", ["https://a.example/x"]),
        (b"<https://a.example/angle>", ["https://a.example/angle"]),
        (b'"https://a.example/q?a=1&b=2"', ["https://a.example/q?a=1&b=2"]),
        (b"Go: HTTP://A.EXAMPLE/Up, then", ["HTTP://A.EXAMPLE/Up"]),
        (
            b"one https://a.example/1\ntwo https://b.example/2!",
            ["https://a.example/1", "https://b.example/2"],
        ),
        (b"https://a.example/#frag?", ["https://a.example/#frag"]),
        (b"no link: mailto:a@example.com, ftp://f.example/, www.example.com", []),
        (b"https:// alone", []),
        (b"https://a.example/{{token}}", []),
        (b"xhttps://a.example/ is not a URL start", []),
        (b"Glued to text: https://a.example/\xe3\x83\x91\xe3\x82\xb9", []),
    ],
)
def test_text_urls(make_tracker: TrackerFactory, text: bytes, destinations: list[str]) -> None:
    tracker = make_tracker()
    out = instrument_text(text, tracker)
    assert [link.destination for link in tracker.tracked] == destinations
    restored = out
    for link in tracker.tracked:
        restored = restored.replace(link.url.encode(), link.destination.encode(), 1)
    assert restored == text


def test_text_links_can_be_switched_off(make_tracker: TrackerFactory) -> None:
    text = b"Book a call: https://a.example/book\n"
    assert instrument_text(text, make_tracker(text_links=False)) == text
    assert instrument_text(text, make_tracker(clicks=False)) == text


def test_text_is_idempotent(make_tracker: TrackerFactory) -> None:
    tracker = make_tracker()
    once = instrument_text(b"Visit https://a.example/ today.", tracker)
    again = make_tracker(tracker.message_id)
    assert instrument_text(once, again) == once
    assert again.tracked == []


def test_text_in_a_legacy_charset(make_tracker: TrackerFactory) -> None:
    text = "Подробнее: https://a.example/info - спасибо".encode("koi8-r")
    tracker = make_tracker()
    out = instrument_text(text, tracker, "koi8-r")
    assert [link.destination for link in tracker.tracked] == ["https://a.example/info"]
    assert out.decode("koi8-r").startswith("Подробнее: https://t.example.com/c/")
    assert out.decode("koi8-r").endswith(" - спасибо")
