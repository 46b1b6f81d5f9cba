"""Every real email of the corpus survives instrumentation byte for byte, every link tracked."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pixeltrail.tracking.htmlpart import instrument_html
from pixeltrail.tracking.links import parse_tracking_url
from pixeltrail.tracking.tokens import TokenSigner

from ..conftest import CORPUS, TrackerFactory

FILES = sorted(CORPUS.glob("*.html"))
_CONDITIONAL = re.compile(r"\[if[^\]]*\]>(.*)<!\[endif\]\s*$", re.DOTALL | re.IGNORECASE)
_MERGE = ("{{", "{%", "*|", "<%", "[%", "%%", "${")


class _LinkOracle(HTMLParser):
    """An independent reading of the links a mail client shows, with the stdlib parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"a", "area"} or tag.startswith("v:"):
            values = dict(reversed(attrs))  # the first of duplicate attributes wins
            href = values.get("href")
            if href is not None and values.get("data-track") != "off":
                self.links.append(href)

    def handle_comment(self, data: str) -> None:
        m = _CONDITIONAL.match(data)
        if m:
            inner = _LinkOracle()
            inner.feed(m.group(1))
            inner.close()
            self.links += inner.links


def _trackable(href: str) -> str | None:
    url = re.sub(r"[\t\n\r]", "", href.strip("".join(chr(c) for c in range(0x21))))
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    if any(m in url for m in _MERGE):
        return None
    return url


def _expected_destinations(data: bytes) -> list[str]:
    oracle = _LinkOracle()
    oracle.feed(data.decode("utf-8", "surrogateescape"))
    oracle.close()
    return [url for href in oracle.links if (url := _trackable(href)) is not None]


def test_corpus_is_present() -> None:
    assert len(FILES) == 84


def _filled(data: bytes) -> bytes:
    """The template with its placeholder links ("http://", "#") made real, VML included."""
    data = data.replace(b'href="http://"', b'href="https://example.com/filled?a=1&amp;b=2#x"')
    return re.sub(
        rb'(<v:[a-z]+[^>]*href=")#(")', rb"\1https://example.com/vml?id=7&amp;go=1\2", data
    )


@pytest.mark.parametrize("filled", [False, True], ids=["as-is", "filled"])
@pytest.mark.parametrize("path", FILES, ids=[p.name[:60] for p in FILES])
def test_corpus_email_is_instrumented_exactly(
    path: Path, filled: bool, make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    original = _filled(path.read_bytes()) if filled else path.read_bytes()
    tracker = make_tracker()
    out = instrument_html(original, tracker)

    # 1. The pixel is in, once, right before the last </body>.
    pixel = re.search(rb'<img src="https://t\.example\.com/o/[A-Za-z0-9_-]+"[^>]*/>', out)
    assert pixel is not None
    assert len(re.findall(rb"/o/", out)) == 1
    assert re.match(rb"</body\s*>", out[pixel.end() :], re.IGNORECASE)
    assert parse_tracking_url(pixel.group(0).split(b'"')[1].decode(), signer).kind == "open"
    without_pixel = out[: pixel.start()] + out[pixel.end() :]

    # 2. Outside the replaced href values, every byte is the original's; each replaced
    #    value is exactly the attribute text that decodes to the recorded destination.
    segments = without_pixel.split(b"https://t.example.com/c/")
    assert len(segments) == len(tracker.tracked) + 1
    pos = len(segments[0])
    assert original[:pos] == segments[0]
    for link, segment in zip(tracker.tracked, segments[1:], strict=True):
        token = re.match(rb"[A-Za-z0-9_-]+", segment)
        assert token is not None
        rest = segment[token.end() :]
        found = original.find(rest, pos)
        assert found >= pos, f"bytes after link {link.position} differ from the original"
        value = original[pos:found].decode("utf-8")
        assert html.unescape(value).strip() == link.destination
        pos = found + len(rest)
        assert parse_tracking_url(link.url, signer).destination == link.destination
    assert pos == len(original)

    # 3. Every http(s) link a mail client shows is tracked, in document order.
    assert [link.destination for link in tracker.tracked] == _expected_destinations(original)

    # 4. Instrumenting again changes nothing.
    again = make_tracker(tracker.message_id)
    assert instrument_html(out, again) == out
    assert again.tracked == []


def test_corpus_has_outlook_buttons_and_they_are_tracked(make_tracker: TrackerFactory) -> None:
    vml = [p for p in FILES if b"<v:roundrect" in p.read_bytes()]
    assert vml
    tracked = 0
    for path in vml:
        original = _filled(path.read_bytes())
        out = instrument_html(original, make_tracker())
        before = re.findall(rb"<v:roundrect[^>]*>", original)
        after = re.findall(rb"<v:roundrect[^>]*>", out)
        assert len(before) == len(after)
        for old, new in zip(before, after, strict=True):
            href = re.search(rb'href="([^"]*)"', old)
            if href and _trackable(html.unescape(href.group(1).decode())):
                assert b'href="https://t.example.com/c/' in new, path.name
                tracked += 1
            else:
                assert new == old
    assert tracked >= 9
