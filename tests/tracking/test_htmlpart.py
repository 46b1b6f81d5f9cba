"""Hostile and unusual HTML: each case states what a reader's mail client must end up with."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixeltrail.tracking.charsets import UnsupportedCharset
from pixeltrail.tracking.htmlpart import _read_value, _value, instrument_html
from pixeltrail.tracking.htmlscan import scan_python
from pixeltrail.tracking.links import LinkBuilder, parse_tracking_url
from pixeltrail.tracking.tokens import TokenSigner
from pixeltrail.tracking.tracker import MessageTracker, TrackingOptions

from ..conftest import TrackerFactory

CLICK = b"https://t.example.com/c/"
PIXEL = re.compile(rb'<img src="https://t\.example\.com/o/[A-Za-z0-9_-]+"[^>]*/>')


def _run(
    make_tracker: TrackerFactory, html: bytes, **options: bool
) -> tuple[bytes, MessageTracker]:
    tracker = make_tracker(**options)
    out = instrument_html(html, tracker)
    # The Python reference scan gives the same output, link for link.
    reference = make_tracker(tracker.message_id, **options)
    assert instrument_html(html, reference, scanner=scan_python) == out
    assert reference.tracked == tracker.tracked
    return out, tracker


def _destinations(tracker: MessageTracker) -> list[str]:
    return [link.destination for link in tracker.tracked]


def _strip_tracking(out: bytes, tracker: MessageTracker) -> bytes:
    """The output with the pixel taken out and each tracking URL put back as its destination."""
    out = PIXEL.sub(b"", out)
    for link in tracker.tracked:
        out = out.replace(link.url.encode(), b"\x00", 1)
    return out


@pytest.mark.parametrize(
    ("html", "destinations"),
    [
        # Quoting, case and spacing as authored.
        (b"<A HREF = 'https://a.example/x'>a</A>", ["https://a.example/x"]),
        (b"<a href=https://a.example/x?y=1&amp;z=2>a</a>", ["https://a.example/x?y=1&z=2"]),
        (b'<a\n  href="https://a.example/"\n>a</a>', ["https://a.example/"]),
        (b'<a/href="https://a.example/">a</a>', ["https://a.example/"]),
        (b'<a title=\'He said "<a href=x>"\' href="https://a.example/">', ["https://a.example/"]),
        # The href a browser uses: not data-href, and the first of two.
        (
            b'<a data-href="https://no.example/" href="https://yes.example/">',
            ["https://yes.example/"],
        ),
        (
            b'<a href="https://first.example/" href="https://second.example/">',
            ["https://first.example/"],
        ),
        # Entities decoded once, as in an attribute.
        (b'<a href="https://a.example/?a=1&amp;amp;b=2">', ["https://a.example/?a=1&amp;b=2"]),
        (b'<a href="https://a.example/?a=1&copy=2">', ["https://a.example/?a=1&copy=2"]),
        (b'<a href="https://a.example/?q=&#x41;&#66;">', ["https://a.example/?q=AB"]),
        (b'<a href="&#104;ttps://a.example/">', ["https://a.example/"]),
        # Whitespace: trimmed at the ends, tabs and newlines removed inside.
        (b'<a href="  https://a.example/p \n">', ["https://a.example/p"]),
        (b'<a href="https://a.exa\tmple/p\r\nq">', ["https://a.example/pq"]),
        (b'<a href="HTTPS://A.EXAMPLE/Path#Frag">', ["HTTPS://A.EXAMPLE/Path#Frag"]),
        # Userinfo and encoded CRLF stay exactly as authored (the redirect is the author's).
        (b'<a href="https://good@evil.example/">', ["https://good@evil.example/"]),
        (
            b'<a href="https://a.example/%0d%0aSet-Cookie:x">',
            ["https://a.example/%0d%0aSet-Cookie:x"],
        ),
        # Not links a reader can click, or not ours to touch.
        (b'<a href="&#106;avascript:alert(1)">', []),
        (b'<a href="java\tscript:alert(1)">', []),
        (b'<a href=" JavaScript:alert(1)">', []),
        (b'<a href="data:text/html,hi">', []),
        (b'<a href="//evil.example/">', []),
        (b'<a href="mailto:a@example.com">', []),
        (b'<a href="tel:+15551234">', []),
        (b'<a href="sms:+15551234">', []),
        (b'<a href="#top">', []),
        (b'<a href="/relative">', []),
        (b'<a href="page.html">', []),
        (b'<a href="">', []),
        (b"<a href>", []),
        (b'<a href="http://">', []),
        (b'<a name="https://a.example/">', []),
        (b'<link href="https://a.example/style.css" rel="stylesheet">', []),
        (b'<img src="https://a.example/logo.png">', []),
        (b'<base href="https://base.example/"><a href="page.html">', []),
        # Merge tags are for a template engine, later.
        (b'<a href="{{ unsubscribe_url }}">', []),
        (b'<a href="https://a.example/?u={{id}}">', []),
        (b'<a href="*|ARCHIVE|*">', []),
        (b'<a href="<%= url %>">', []),
        (b'<a href="[%url%]">', []),
        (b'<a href="https://a.example/{% raw %}">', []),
        # Opted out by the author.
        (b'<a data-track="off" href="https://a.example/">', []),
        (b'<a href="https://a.example/" DATA-TRACK="OFF">', []),
        # Markup where nothing is a link.
        (b'<!-- <a href="https://c.example/"> -->', []),
        (b"<script>var s = '<a href=\"https://s.example/\">';</script>", []),
        (b'<style>/* <a href="https://s.example/"> */</style>', []),
        (b'<textarea><a href="https://t.example.org/"></textarea>', []),
        (b'<title><a href="https://t.example.org/"></title>', []),
        (b"<img alt=\"<a href='https://in-attr.example/'>\">", []),
        # Outlook markup in conditional comments is read by Outlook: tracked.
        (
            b'<!--[if mso]><v:roundrect href="https://vml.example/btn" arcsize="10%">'
            b"<w:anchorlock/></v:roundrect><![endif]-->",
            ["https://vml.example/btn"],
        ),
        (
            b'<!--[if !mso]><!--><a href="https://not-mso.example/">x</a><!--<![endif]-->',
            ["https://not-mso.example/"],
        ),
        (b'<svg><a href="https://svg.example/"><text>x</text></a></svg>', ["https://svg.example/"]),
        (b'<map><area shape="rect" href="https://area.example/"></map>', ["https://area.example/"]),
    ],
)
def test_links(make_tracker: TrackerFactory, html: bytes, destinations: list[str]) -> None:
    out, tracker = _run(make_tracker, html, opens=False)
    assert _destinations(tracker) == destinations
    if not destinations:
        assert out == html
    # Outside the href values, not a byte moved.
    values = re.sub(rb"https://t\.example\.com/c/[A-Za-z0-9_-]+", b"\x00", out)
    assert values.count(b"\x00") == len(destinations)


def test_every_tracked_token_verifies_to_its_destination(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    out, tracker = _run(
        make_tracker, b'<a href="https://a.example/?x=1&amp;y=2#f">a</a><a href=https://b.example>'
    )
    for link in tracker.tracked:
        claims = parse_tracking_url(link.url, signer)
        assert (claims.destination, claims.link, claims.message_id) == (
            link.destination,
            link.position,
            tracker.message_id,
        )
    assert [link.position for link in tracker.tracked] == [1, 2]
    assert out.count(CLICK) == 2


def test_pixel_goes_before_the_real_body_end(make_tracker: TrackerFactory) -> None:
    html = (
        b"<html><body><p>hi</p><!-- </body> -->"
        b"<script>'</body>'</script><p>end</p></BODY >\n</html>"
    )
    out, _ = _run(make_tracker, html)
    pixel = PIXEL.search(out)
    assert pixel is not None
    assert out[pixel.end() :] == b"</BODY >\n</html>"
    assert PIXEL.sub(b"", out) == html


def test_pixel_goes_at_the_end_without_body(make_tracker: TrackerFactory) -> None:
    out, _ = _run(make_tracker, b"<p>No body tag here</p>")
    assert out.startswith(b"<p>No body tag here</p><img src=")
    assert out.endswith(b"/>")


def test_opens_and_clicks_can_be_switched_off(make_tracker: TrackerFactory) -> None:
    html = b'<body><a href="https://a.example/">a</a></body>'
    out, _ = _run(make_tracker, html, opens=False, clicks=False)
    assert out == html
    out, _ = _run(make_tracker, html, clicks=False)
    assert PIXEL.search(out) and CLICK not in out
    out, _ = _run(make_tracker, html, opens=False)
    assert not PIXEL.search(out) and CLICK in out


def test_instrumenting_twice_changes_nothing(make_tracker: TrackerFactory) -> None:
    html = b'<body><a href="https://a.example/">a</a></body>'
    out, tracker = _run(make_tracker, html, honeypot=True)
    again = make_tracker(tracker.message_id, honeypot=True)
    assert instrument_html(out, again) == out
    assert again.tracked == []


def test_honeypot_is_hidden_and_recognisable(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    out, tracker = _run(make_tracker, b"<body><p>Hello</p></body>", honeypot=True)
    hidden = re.search(
        rb'<a href="([^"]+)" aria-hidden="true" tabindex="-1" style="([^"]+)"></a>', out
    )
    assert hidden is not None
    assert b"display:none" in hidden.group(2)
    claims = parse_tracking_url(hidden.group(1).decode(), signer)
    assert claims.honeypot and claims.link == 0 and claims.message_id == tracker.message_id
    # Off by default.
    out, _ = _run(make_tracker, b"<body><p>Hello</p></body>")
    assert b"aria-hidden" not in out


def test_ten_thousand_links(make_tracker: TrackerFactory) -> None:
    html = (
        b"<body>"
        + b"".join(
            b'<a href="https://a.example/p/%d?x=1&amp;y=2">l</a>\n' % i for i in range(10_000)
        )
        + b"</body>"
    )
    out, tracker = _run(make_tracker, html)
    assert len(tracker.tracked) == 10_000
    assert tracker.tracked[-1].destination == "https://a.example/p/9999?x=1&y=2"
    assert [link.position for link in tracker.tracked] == list(range(1, 10_001))
    assert out.count(CLICK) == 10_000


def test_a_ten_megabyte_message(make_tracker: TrackerFactory) -> None:
    block = b'<tr><td style="padding:0">' + b"x" * 1000 + b"</td></tr>\n"
    html = (
        b"<html><body><table>"
        + block * 10_000
        + b'<a href="https://a.example/">end</a></table></body></html>'
    )
    assert len(html) > 10_000_000
    out, tracker = _run(make_tracker, html)
    assert _destinations(tracker) == ["https://a.example/"]
    assert _strip_tracking(out, tracker) == html.replace(b"https://a.example/", b"\x00")


def test_invalid_utf8_is_preserved(make_tracker: TrackerFactory) -> None:
    html = (
        b'<body><p>caf\xe9 \xff\xfe</p><a href="https://a.example/\xff">bad</a>'
        b'<a href="https://b.example/">ok</a></body>'
    )
    out, tracker = _run(make_tracker, html)
    # An href no one can decode exactly is left alone; the text bytes are untouched.
    assert _destinations(tracker) == ["https://b.example/"]
    assert b"caf\xe9 \xff\xfe" in out and b'href="https://a.example/\xff"' in out


def test_unterminated_tag_and_broken_markup(make_tracker: TrackerFactory) -> None:
    html = b'<body><a href="https://a.example/">ok</a><div <p></a></b></i><a href="https://b.ex'
    out, tracker = _run(make_tracker, html, opens=False)
    assert _destinations(tracker) == ["https://a.example/"]
    assert out.endswith(b'<div <p></a></b></i><a href="https://b.ex')


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("windows-1251", "Привет, мир — скидки"),
        ("iso-8859-1", "Café déjà vu"),
        ("iso-8859-15", "Prix: 5 €"),
        ("gbk", "你好，世界。欢迎"),
        ("shift_jis", "こんにちは世界、ソフト表"),
        ("big5", "你好，世界"),
        ("euc-kr", "안녕하세요 세계"),
    ],
)
def test_declared_charsets_come_out_unchanged(
    make_tracker: TrackerFactory, charset: str, text: str
) -> None:
    html = (
        f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
        f'</head><body><p>{text}</p><a href="https://a.example/{text}?q={text}">{text}</a>'
        f"</body></html>"
    ).encode(charset)
    out, tracker = _run(make_tracker, html)
    assert _destinations(tracker) == [f"https://a.example/{text}?q={text}"]
    assert out.decode(charset).count(text) == 2
    assert _strip_tracking(out, tracker) == html.replace(
        f"https://a.example/{text}?q={text}".encode(charset), b"\x00"
    )


def test_charset_from_outside_wins_over_meta(make_tracker: TrackerFactory) -> None:
    html = '<meta charset="utf-8"><a href="https://a.example/é">é</a>'.encode("latin-1")
    tracker = make_tracker()
    instrument_html(html, tracker, charset="latin-1")
    assert _destinations(tracker) == ["https://a.example/é"]


@pytest.mark.parametrize("charset", ["utf-16", "iso-2022-jp"])
def test_non_ascii_compatible_charsets(make_tracker: TrackerFactory, charset: str) -> None:
    html = '<body><p>日本語のテキスト</p><a href="https://a.example/">リンク</a></body>'.encode(
        charset
    )
    tracker = make_tracker()
    out = instrument_html(html, tracker, charset=charset)
    assert _destinations(tracker) == ["https://a.example/"]
    decoded = out.decode(charset)
    assert "日本語のテキスト" in decoded and "リンク" in decoded
    assert PIXEL.search(decoded.encode()) is not None


def test_undecodable_non_ascii_charset_is_refused_not_mangled(make_tracker: TrackerFactory) -> None:
    html = "<body>テキスト</body>".encode("utf-16-le") + b"\x00\xd8"  # a lone surrogate
    with pytest.raises(UnsupportedCharset):
        instrument_html(html, make_tracker(), charset="utf-16-le")


@pytest.mark.parametrize("charset", ["rot13", "base64", "zlib_codec", "undefined"])
def test_a_charset_that_is_no_character_set_is_refused(
    make_tracker: TrackerFactory, charset: str
) -> None:
    html = b'<body><a href="https://a.example/">x</a></body>'
    with pytest.raises(UnsupportedCharset):
        instrument_html(html, make_tracker(), charset=charset)
    with pytest.raises(UnsupportedCharset):  # as the document declares it
        instrument_html(f'<meta charset="{charset}">'.encode() + html, make_tracker())


@settings(max_examples=500)
@given(
    st.lists(
        st.sampled_from(
            [b"https://a.example/", b"?q=1", b"&amp;", b"&", b"amp;", b"&copy", b"&#65;", b" ",
             b"\t", b"\n", b"\x00", b"~", b"\\", b"\xe9", b"\xff", b"%20", b"=", b"#"]
        ),
        max_size=12,
    ).map(b"".join),
    st.sampled_from(["utf-8", "UTF-8", "latin-1", "cp1252", "shift_jis", "euc-kr", "ascii"]),
)  # fmt: skip
def test_plain_values_read_the_same_the_short_way(raw: bytes, charset: str) -> None:
    assert _value(raw, charset) == _read_value(raw, charset)


def test_link_decisions_are_per_tracking_base(make_tracker: TrackerFactory) -> None:
    """A link that is ours under one base is someone else's under another: tracked there."""
    html = b'<a href="https://t.example.com/c/abc">x</a>'
    _, tracker = _run(make_tracker, html, opens=False)
    assert tracker.tracked == []
    other = LinkBuilder("https://other.example", tracker.links.signer)
    elsewhere = MessageTracker(other, tracker.message_id, TrackingOptions(opens=False))
    instrument_html(html, elsewhere)
    assert _destinations(elsewhere) == ["https://t.example.com/c/abc"]
    again = MessageTracker(tracker.links, tracker.message_id, TrackingOptions(opens=False))
    assert instrument_html(html, again) == html
