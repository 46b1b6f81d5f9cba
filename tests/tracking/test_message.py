"""Whole RFC 5322 messages: only the inline text parts change, everything else byte for byte.

Each test decodes the result the way a mail client does (the stdlib parser) and checks what
a reader would see: the HTML is the original with only href values replaced and the pixel
inserted, text URLs go through the tracking host, every tracking link verifies, and the
bytes around the changed bodies (headers, boundaries, attachments) are untouched.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import functools
import html
import json
import re
from collections.abc import Callable
from email.message import EmailMessage, Message
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pixeltrail.tracking.htmlpart import instrument_html
from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.links import LinkBuilder, parse_tracking_url
from pixeltrail.tracking.message import instrument_message
from pixeltrail.tracking.textpart import instrument_text
from pixeltrail.tracking.tokens import TokenSigner
from pixeltrail.tracking.tracker import MessageTracker

from ..conftest import BASE_URL, CORPUS, SECRET, TrackerFactory

MID = "AAECAwQFBgcICQoL"
LF, CRLF = b"\n", b"\r\n"
BLANK_LINE = re.compile(rb"\r?\n\r?\n")
BARE_LF = re.compile(rb"(?<!\r)\n")
CLICK = re.compile(re.escape(BASE_URL) + r"/c/[A-Za-z0-9_-]+")
PIXEL = re.compile(r'<img src="' + re.escape(BASE_URL) + r'/o/[A-Za-z0-9_-]+"[^>]*/>')

# --------------------------------------------------------------------------- content

CATALOGUE = (
    "https://shop.example.com/catalogue/2024/autumn-winter/collection"
    "?utm_source=newsletter&utm_medium=email&utm_campaign=autumn"
)
EVENTS = "http://example.org/events#berlin"
UNSUBSCRIBE = "https://example.com/unsubscribe?u=42&list=7"
LINKS = [CATALOGUE, EVENTS, UNSUBSCRIBE]

HTML_UTF8 = f"""<!DOCTYPE html>
<html lang="de">
<head><meta charset="utf-8"><title>Neuigkeiten</title></head>
<body style="margin:0">
<!-- not a link: <a href="https://example.com/in-comment">x</a> -->
<p>Grüße aus München! Unser neuer Katalog ist da: <a href="{html.escape(CATALOGUE)}">Katalog \
ansehen</a>.</p>
<p><a href='{EVENTS}' class="btn">Events</a> · <a href="mailto:hallo@example.com">Schreiben \
Sie uns</a> · <a href="#top">nach oben</a></p>
<table><tr><td><a href="{html.escape(UNSUBSCRIBE)}">Abmelden</a></td></tr></table>
</body>
</html>
"""
HTML_ASCII = HTML_UTF8.encode("ascii", "xmlcharrefreplace").decode("ascii")

TEXT_UTF8 = f"""Grüße aus München!

Unser neuer Katalog: {CATALOGUE}

Events ({EVENTS}).
Schreiben Sie uns: hallo@example.com
Abmelden: <{UNSUBSCRIBE}>
"""
TEXT_ASCII = TEXT_UTF8.replace("ü", "ue").replace("ß", "ss")

# A PDF whose bytes hold a link: an attachment is never looked into.
PDF = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Annot /Subtype /Link /Rect [0 0 100 20]\n"
    b"   /A << /S /URI /URI (https://example.com/in-pdf) >> >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
ATTACHED_HTML = '<html><body><a href="https://example.com/attached-page">page</a></body></html>\n'
FORWARDED_HTML = (
    '<html><body><p>Forwarded: <a href="https://example.com/forwarded">link</a></p></body></html>\n'
)
ATTACHED_TEXT = "Notes: https://example.com/attached-notes\n"

# --------------------------------------------------------------------------- helpers


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def inline_parts(msg: EmailMessage, ctype: str) -> list[EmailMessage]:
    """The inline parts of this type, in document order, not looking into attached messages."""
    found: list[EmailMessage] = []

    def walk(part: EmailMessage) -> None:
        if part.get_content_type() == "message/rfc822":
            return
        if part.is_multipart():
            for child in part.iter_parts():
                assert isinstance(child, EmailMessage)
                walk(child)
        elif part.get_content_type() == ctype and not part.is_attachment():
            found.append(part)

    walk(msg)
    return found


def only_part(raw: bytes, ctype: str) -> EmailMessage:
    parts = inline_parts(parse(raw), ctype)
    assert len(parts) == 1, f"expected one inline {ctype} part, found {len(parts)}"
    return parts[0]


def header_block(raw: bytes) -> bytes:
    m = BLANK_LINE.search(raw)
    assert m is not None
    return raw[: m.start()]


def pieces(raw: bytes, boundary: str) -> list[bytes]:
    """The message cut at the delimiter lines of one boundary (preamble first, epilogue last)."""
    return raw.split(b"\n--" + boundary.encode("ascii"))


def body_lines(piece: bytes) -> list[bytes]:
    m = BLANK_LINE.search(piece)
    assert m is not None
    return [line for line in piece[m.end() :].splitlines() if line]


def replay(tracker: MessageTracker, already: int) -> MessageTracker:
    """A fresh tracker for the same message that has handed out `already` links."""
    return MessageTracker(
        tracker.links, tracker.message_id, tracker.options, tracked=list(tracker.tracked[:already])
    )


def untrack(text: str, tracker: MessageTracker, *, in_html: bool) -> str:
    """The text with the pixel removed and each tracking link turned back into its destination."""
    by_url = {t.url: t.destination for t in tracker.tracked}
    text = PIXEL.sub("", text)

    def back(m: re.Match[str]) -> str:
        destination = by_url[m.group(0)]
        return html.escape(destination, quote=False) if in_html else destination

    return CLICK.sub(back, text)


def lf(text: str) -> str:
    """Decoded text with CRLF read as LF: base64 keeps the line breaks of the source text."""
    return text.replace("\r\n", "\n")


def assert_links_verify(tracker: MessageTracker, signer: TokenSigner) -> None:
    positions = [t.position for t in tracker.tracked]
    assert positions == list(range(1, len(positions) + 1))
    for t in tracker.tracked:
        claims = parse_tracking_url(t.url, signer)
        assert claims.kind == "click"
        assert claims.destination == t.destination
        assert claims.link == t.position
        assert claims.message_id == tracker.message_id
        assert not claims.honeypot


def assert_line_endings(out: bytes, eol: bytes) -> None:
    if eol == CRLF:
        bare = BARE_LF.search(out)
        near = out[bare.start() - 60 : bare.end()] if bare else b""
        assert bare is None, f"bare LF in a CRLF message near {near!r}"
    else:
        assert CRLF not in out


def assert_pixel_before_body_end(html_text: str) -> None:
    pixels = PIXEL.findall(html_text)
    assert len(pixels) == 1
    assert pixels[0] + "</body>" in html_text


def headers_of(msg: EmailMessage, name: str) -> list[str]:
    return [str(v) for v in msg.get_all(name, [])]


# --------------------------------------------------------------------------- messages


def alternative(cte: str, eol: bytes) -> bytes:
    """multipart/alternative, text/plain then text/html, both in one transfer encoding."""
    text, markup = (TEXT_ASCII, HTML_ASCII) if cte == "7bit" else (TEXT_UTF8, HTML_UTF8)
    msg = EmailMessage()
    msg["From"] = "Newsletter <news@example.com>"
    msg["To"] = "reader@example.net"
    msg["Subject"] = "Grüße aus München: unser neuer Katalog"
    msg["Message-ID"] = "<20240101120000.1@example.com>"
    msg["List-Unsubscribe"] = f"<{UNSUBSCRIBE}>"
    msg.set_content(text, cte=cte)
    msg.add_alternative(markup, subtype="html", cte=cte)
    msg.set_boundary("alt-7f3a")
    policy = email.policy.SMTP if eol == CRLF else email.policy.default
    return msg.as_bytes(policy=policy)


def mixed(eol: bytes = CRLF) -> bytes:
    """mixed[alternative[text, related[html, png]], pdf, html file, text file, message]."""
    msg = EmailMessage()
    msg["From"] = "Sales <sales@example.com>"
    msg["To"] = "lead@example.net"
    msg["Subject"] = "Our brochure"
    msg.set_content(TEXT_UTF8, cte="quoted-printable")
    msg.add_alternative(HTML_UTF8, subtype="html", cte="quoted-printable")
    html_part = list(msg.iter_parts())[1]
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(PNG, "image", "png", cid="<logo@example.com>")
    msg.add_attachment(PDF, "application", "pdf", filename="brochure.pdf")
    msg.add_attachment(ATTACHED_HTML, subtype="html", filename="page.html")
    msg.add_attachment(ATTACHED_TEXT, filename="notes.txt", cte="7bit")
    forwarded = EmailMessage()
    forwarded["From"] = "someone@example.org"
    forwarded["Subject"] = "Fwd"
    forwarded.set_content(FORWARDED_HTML, subtype="html")
    msg.add_attachment(forwarded)
    msg.set_boundary("mixed-01")
    policy = email.policy.SMTP if eol == CRLF else email.policy.default
    return msg.as_bytes(policy=policy)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("ascii")


# Hand-written quoted-printable with exact control: an href cut by soft line breaks in the
# host, right after `href=`, and between `=` and `3D`.
QP_BY_HAND = crlf(
    "From: a@example.com\n"
    "To: b@example.net\n"
    "Subject: qp\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="qp-b"\n'
    "\n"
    "--qp-b\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Gr=C3=BC=C3=9Fe! https://exa=\n"
    "mple.com/path?a=3D1&b=3D2 and more\n"
    "--qp-b\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    '<html><body><p>Gr=C3=BC=C3=9Fe! <a href=3D"https://exa=\n'
    'mple.com/path?a=3D1&amp;b=3D2">one</a></p>\n'
    "<p><a href=3D=\n"
    '"https://example.com/two">two</a> <a href=\n'
    '=3D"https://example.com/three?x=\n'
    '=3Dy">three</a></p></body></html>\n'
    "--qp-b--\n"
)
QP_BY_HAND_LINKS = [
    "https://example.com/path?a=1&b=2",
    "https://example.com/path?a=1&b=2",
    "https://example.com/two",
    "https://example.com/three?x=y",
]


def base64_by_hand(width: int) -> bytes:
    """An HTML part in base64 wrapped at `width`, as some mailers write it."""
    markup = HTML_UTF8.encode("utf-8")
    encoded = base64.b64encode(markup)
    wrapped = b"\r\n".join(encoded[i : i + width] for i in range(0, len(encoded), width))
    return (
        crlf(
            "From: a@example.com\n"
            "Subject: b64\n"
            "MIME-Version: 1.0\n"
            'Content-Type: multipart/alternative; boundary="b64-b"\n'
            "\n"
            "This is a multi-part message in MIME format.\n"
            "--b64-b\n"
            "Content-Type: text/html; charset=UTF-8\n"
            "Content-Transfer-Encoding: base64\n"
            "\n"
        )
        + wrapped
        + crlf("\n--b64-b--\nepilogue\n")
    )


def long_line_html(count: int = 16) -> str:
    anchors = " ".join(f'<a href="https://example.com/p/{i}">link {i}</a>' for i in range(count))
    return f"<html><body><p>{anchors}</p></body></html>"


# --------------------------------------------------------------------------- alternative


CTES = ["quoted-printable", "base64", "8bit", "7bit"]
EOLS = [pytest.param(LF, id="lf"), pytest.param(CRLF, id="crlf")]


@pytest.mark.parametrize("eol", EOLS)
@pytest.mark.parametrize("cte", CTES)
def test_alternative_in_every_transfer_encoding(
    cte: str, eol: bytes, make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    raw = alternative(cte, eol)
    original = parse(raw)
    tracker = make_tracker(MID)

    out = instrument_message(raw, tracker)

    # What the reader sees: the same text and HTML, links through the tracking host.
    assert [t.destination for t in tracker.tracked] == LINKS + LINKS
    assert_links_verify(tracker, signer)
    text_in, html_in = only_part(raw, "text/plain"), only_part(raw, "text/html")
    text_out, html_out = only_part(out, "text/plain"), only_part(out, "text/html")
    assert untrack(text_out.get_content(), tracker, in_html=False) == text_in.get_content()
    assert untrack(html_out.get_content(), tracker, in_html=True) == html_in.get_content()
    assert_pixel_before_body_end(html_out.get_content())
    assert "https://example.com/in-comment" in html_out.get_content()

    # The decoded bytes are exactly what instrumenting the decoded parts alone gives.
    charset = html_in.get_content_charset()
    expected_text = instrument_text(payload(text_in), replay(tracker, 0), charset)
    expected_html = instrument_html(payload(html_in), replay(tracker, len(LINKS)), charset)
    assert payload(text_out) == expected_text
    assert payload(html_out) == expected_html

    # Headers, boundaries and part headers byte for byte; same structure.
    assert header_block(out) == header_block(raw)
    before, after = pieces(raw, "alt-7f3a"), pieces(out, "alt-7f3a")
    assert len(before) == len(after) == 4
    assert before[0] == after[0]
    assert before[-1] == after[-1]
    for i in (1, 2):
        assert header_block(after[i]) == header_block(before[i])
    assert [p.get_content_type() for p in parse(out).walk()] == [
        p.get_content_type() for p in original.walk()
    ]
    assert html_out["Content-Transfer-Encoding"] == cte
    assert parse(out).defects == []
    assert_line_endings(out, eol)

    if cte == "base64":
        for piece in after[1:3]:
            lines = body_lines(piece)
            assert all(len(line) == 76 for line in lines[:-1])
            assert 0 < len(lines[-1]) <= 76
    if cte == "quoted-printable":
        # The catalogue href was cut by a soft line break, with `=3D` in it.
        assert re.search(rb'href=3D"[^"]*=\r?\n[^"]*=3D[^"]*">Katalog', before[2])
        assert all(len(line) <= 76 for piece in after[1:3] for line in body_lines(piece))


def test_quoted_printable_soft_breaks_inside_hrefs(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    tracker = make_tracker(MID)
    out = instrument_message(QP_BY_HAND, tracker)

    assert [t.destination for t in tracker.tracked] == QP_BY_HAND_LINKS
    assert_links_verify(tracker, signer)
    text_out, html_out = only_part(out, "text/plain"), only_part(out, "text/html")
    assert text_out.get_content() == f"Grüße! {tracker.tracked[0].url} and more"
    assert untrack(html_out.get_content(), tracker, in_html=True) == (
        '<html><body><p>Grüße! <a href="https://example.com/path?a=1&amp;b=2">one</a></p>\r\n'
        '<p><a href="https://example.com/two">two</a> '
        '<a href="https://example.com/three?x=y">three</a></p></body></html>'
    )
    assert header_block(out) == header_block(QP_BY_HAND)
    before, after = pieces(QP_BY_HAND, "qp-b"), pieces(out, "qp-b")
    assert [header_block(p) for p in after[1:3]] == [header_block(p) for p in before[1:3]]
    assert after[-1] == before[-1] == b"--\r\n"
    assert_line_endings(out, CRLF)
    assert all(len(line) <= 76 for piece in after[1:3] for line in body_lines(piece))


@pytest.mark.parametrize("width", [64, 72, 76])
def test_base64_keeps_its_line_width(
    width: int, make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    raw = base64_by_hand(width)
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)

    assert [t.destination for t in tracker.tracked] == LINKS
    assert_links_verify(tracker, signer)
    html_out = only_part(out, "text/html")
    assert untrack(html_out.get_content(), tracker, in_html=True) == HTML_UTF8
    before, after = pieces(raw, "b64-b"), pieces(out, "b64-b")
    assert before[0] == after[0]
    assert before[-1] == after[-1] == b"--\r\nepilogue\r\n"
    lines = body_lines(after[1])
    assert len(lines) > len(body_lines(before[1]))
    assert all(len(line) == width for line in lines[:-1])
    assert 0 < len(lines[-1]) <= width
    assert_line_endings(out, CRLF)


# --------------------------------------------------------------------------- attachments


def test_mixed_message_leaves_attachments_byte_for_byte(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    raw = mixed()
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)

    destinations = [t.destination for t in tracker.tracked]
    assert destinations == LINKS + LINKS
    for untouched in ("in-pdf", "attached-page", "attached-notes", "forwarded"):
        assert not any(untouched in d for d in destinations)
    assert_links_verify(tracker, signer)

    assert header_block(out) == header_block(raw)
    before, after = pieces(raw, "mixed-01"), pieces(out, "mixed-01")
    # preamble, alternative, pdf, html file, text file, message, epilogue
    assert len(before) == len(after) == 7
    assert before[0] == after[0]
    assert before[2:] == after[2:]
    assert before[1] != after[1]

    msg = parse(out)
    attachments = {p.get_filename() or p.get_content_type(): p for p in msg.iter_attachments()}
    assert isinstance(attachments["brochure.pdf"], EmailMessage)
    assert payload(attachments["brochure.pdf"]) == PDF
    assert attachments["page.html"].get_content() == ATTACHED_HTML.replace("\n", "\r\n")
    assert attachments["notes.txt"].get_content() == ATTACHED_TEXT.replace("\n", "\r\n")
    forwarded = attachments["message/rfc822"].get_content()
    assert isinstance(forwarded, EmailMessage)
    assert only_part(forwarded.as_bytes(), "text/html").get_content() == FORWARDED_HTML

    html_out = only_part(out, "text/html")
    assert lf(untrack(html_out.get_content(), tracker, in_html=True)) == HTML_UTF8
    assert_pixel_before_body_end(html_out.get_content())
    (image,) = inline_parts(msg, "image/png")
    assert payload(image) == PNG
    assert image["Content-ID"] == "<logo@example.com>"
    assert_line_endings(out, CRLF)


def test_attachment_disposition_without_filename_is_left_alone(
    make_tracker: TrackerFactory,
) -> None:
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="m"\n'
        "\n"
        "--m\n"
        "Content-Type: text/html; charset=utf-8\n"
        "\n"
        '<html><body><a href="https://example.com/body">b</a></body></html>\n'
        "--m\n"
        "Content-Type: text/html; charset=utf-8\n"
        "Content-Disposition: attachment\n"
        "\n"
        '<html><body><a href="https://example.com/attached">a</a></body></html>\n'
        "--m\n"
        "Content-Type: application/octet-stream\n"
        "\n"
        '<a href="https://example.com/binary">x</a> https://example.com/binary-text\n'
        "--m--\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert [t.destination for t in tracker.tracked] == ["https://example.com/body"]
    before, after = pieces(raw, "m"), pieces(out, "m")
    assert before[2:] == after[2:]


def test_a_part_in_a_transform_instead_of_a_charset_is_left_alone(
    make_tracker: TrackerFactory,
) -> None:
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/html; charset=rot13\n"
        "\n"
        '<html><body><a href="https://example.com/x">x</a></body></html>\n'
    )
    tracker = make_tracker(MID)
    assert instrument_message(raw, tracker) == raw
    assert tracker.tracked == []
    assert tracker.notes == [
        "text/html part left as it is: rot13 text here does not survive a round trip"
    ]


# --------------------------------------------------------------------------- charsets

CHARSETS = [
    pytest.param(
        "windows-1251",
        "Привет, мир! Скидки до 50% на весь каталог.",
        "https://example.com/каталог?q=скидка",
        id="windows-1251",
    ),
    pytest.param(
        "iso-8859-1",
        "Grüße aus Köln: café, crème brûlée.",
        "https://example.com/café?für=Öl",
        id="iso-8859-1",
    ),
    pytest.param(
        "gbk",
        "你好，世界！新产品上市，欢迎选购。",
        "https://example.cn/产品?分类=新品",
        id="gbk",
    ),
]


@pytest.mark.parametrize("cte", ["quoted-printable", "base64", "8bit"])
@pytest.mark.parametrize(("charset", "words", "local_url"), CHARSETS)
def test_html_in_its_own_charset(
    charset: str,
    words: str,
    local_url: str,
    cte: str,
    make_tracker: TrackerFactory,
    signer: TokenSigner,
) -> None:
    markup = (
        f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
        f"</head>\n<body><p>{html.escape(words)}</p>\n"
        f'<p><a href="{local_url}">{words[:6]}</a> '
        f'<a href="https://example.com/plain?a=1&amp;b=2">plain</a></p>\n</body></html>\n'
    )
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["Subject"] = words
    msg.set_content(f"{words}\nhttps://example.com/text-link\n", charset=charset, cte=cte)
    msg.add_alternative(markup, subtype="html", charset=charset, cte=cte)
    msg.set_boundary("cs-b")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    tracker = make_tracker(MID)

    out = instrument_message(raw, tracker)

    assert [t.destination for t in tracker.tracked] == [
        "https://example.com/text-link",
        local_url,
        "https://example.com/plain?a=1&b=2",
    ]
    assert_links_verify(tracker, signer)
    text_out, html_out = only_part(out, "text/plain"), only_part(out, "text/html")
    assert html_out.get_content_charset() == charset
    assert text_out.get_content_charset() == charset
    # The parts still decode in their charset, and read the same.
    decoded_html = payload(html_out).decode(charset)
    assert words in decoded_html
    assert lf(untrack(decoded_html, tracker, in_html=True)) == markup
    assert untrack(text_out.get_content(), tracker, in_html=False).startswith(words)
    assert_pixel_before_body_end(decoded_html)
    expected = instrument_html(payload(only_part(raw, "text/html")), replay(tracker, 1), charset)
    assert payload(html_out) == expected
    assert header_block(out) == header_block(raw)
    assert_line_endings(out, CRLF)


def test_gbk_8bit_by_hand(make_tracker: TrackerFactory, signer: TokenSigner) -> None:
    body = '<html><body><p>新产品</p><a href="https://example.cn/产品">看看</a></body></html>'
    raw = (
        crlf(
            "From: a@example.com\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/html; charset=GBK\n"
            "Content-Transfer-Encoding: 8bit\n"
            "\n"
        )
        + body.encode("gbk")
        + b"\r\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert [t.destination for t in tracker.tracked] == ["https://example.cn/产品"]
    assert_links_verify(tracker, signer)
    assert header_block(out) == header_block(raw)
    decoded = out[len(header_block(raw)) + 4 :].decode("gbk")
    assert untrack(decoded, tracker, in_html=True) == body + "\r\n"


# --------------------------------------------------------------------------- options


def test_no_text_links_leaves_text_part_byte_for_byte(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    raw = alternative("quoted-printable", CRLF)
    tracker = make_tracker(MID, text_links=False)
    out = instrument_message(raw, tracker)

    before, after = pieces(raw, "alt-7f3a"), pieces(out, "alt-7f3a")
    assert after[1] == before[1]
    assert [t.destination for t in tracker.tracked] == LINKS
    assert_links_verify(tracker, signer)
    html_out = only_part(out, "text/html").get_content()
    assert_pixel_before_body_end(html_out)
    assert untrack(html_out, tracker, in_html=True) == HTML_UTF8.replace("\n", "\r\n")


def test_no_clicks_changes_no_link(make_tracker: TrackerFactory) -> None:
    raw = alternative("quoted-printable", CRLF)
    tracker = make_tracker(MID, clicks=False)
    out = instrument_message(raw, tracker)

    assert tracker.tracked == []
    assert b"/c/" not in out
    before, after = pieces(raw, "alt-7f3a"), pieces(out, "alt-7f3a")
    assert after[1] == before[1]
    html_in, html_out = only_part(raw, "text/html"), only_part(out, "text/html")
    assert_pixel_before_body_end(html_out.get_content())
    assert PIXEL.sub("", html_out.get_content()) == html_in.get_content()


def test_no_opens_inserts_no_pixel(make_tracker: TrackerFactory, signer: TokenSigner) -> None:
    raw = alternative("base64", LF)
    tracker = make_tracker(MID, opens=False)
    out = instrument_message(raw, tracker)

    html_out = only_part(out, "text/html").get_content()
    assert "/o/" not in html_out
    assert [t.destination for t in tracker.tracked] == LINKS + LINKS
    assert_links_verify(tracker, signer)
    assert untrack(html_out, tracker, in_html=True) == HTML_UTF8


def test_nothing_to_do_returns_the_input(make_tracker: TrackerFactory) -> None:
    raw = mixed()
    tracker = make_tracker(MID, opens=False, clicks=False)
    assert instrument_message(raw, tracker) == raw
    assert tracker.tracked == []


# --------------------------------------------------------------------------- idempotence


def single_part_html(eol: bytes = CRLF) -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["Subject"] = "single"
    msg.set_content(HTML_UTF8, subtype="html", cte="quoted-printable")
    return msg.as_bytes(policy=email.policy.SMTP if eol == CRLF else email.policy.default)


def seven_bit_long_line() -> bytes:
    return crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/html; charset=us-ascii\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\n" + long_line_html() + "\n"
    )


MESSAGES: dict[str, Callable[[], bytes]] = {
    **{
        f"alternative-{cte}-{name}": functools.partial(alternative, cte, eol)
        for cte in CTES
        for name, eol in (("lf", LF), ("crlf", CRLF))
    },
    "mixed": mixed,
    "qp-by-hand": lambda: QP_BY_HAND,
    "base64-by-hand": lambda: base64_by_hand(64),
    "single-part": single_part_html,
    "seven-bit-long-line": seven_bit_long_line,
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_instrumenting_twice_changes_nothing(name: str, make_tracker: TrackerFactory) -> None:
    once = instrument_message(MESSAGES[name](), make_tracker(MID))
    again = make_tracker(MID)
    assert instrument_message(once, again) == once
    assert again.tracked == []
    assert again.notes == []


# --------------------------------------------------------------------------- single part


def test_single_part_html(make_tracker: TrackerFactory, signer: TokenSigner) -> None:
    raw = single_part_html()
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)

    assert [t.destination for t in tracker.tracked] == LINKS
    assert_links_verify(tracker, signer)
    assert header_block(out) == header_block(raw)
    msg = parse(out)
    assert msg.get_content_type() == "text/html"
    assert untrack(msg.get_content(), tracker, in_html=True) == HTML_UTF8.replace("\n", "\r\n")
    assert_pixel_before_body_end(msg.get_content())
    assert_line_endings(out, CRLF)


def test_single_part_text_without_mime_headers(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    raw = b"From: a@example.com\nSubject: plain\n\nSee https://example.com/a, or not.\n"
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert [t.destination for t in tracker.tracked] == ["https://example.com/a"]
    assert_links_verify(tracker, signer)
    assert out == raw.replace(b"https://example.com/a", tracker.tracked[0].url.encode())


# --------------------------------------------------------------------------- long lines


def assert_moved_to_quoted_printable(
    raw: bytes, out: bytes, tracker: MessageTracker, signer: TokenSigner, markup: str
) -> EmailMessage:
    assert max(len(line) for line in raw.splitlines()) <= 998  # the input was fine
    assert_links_verify(tracker, signer)
    assert [t.destination for t in tracker.tracked] == [
        f"https://example.com/p/{i}" for i in range(16)
    ]
    part = only_part(out, "text/html")
    assert headers_of(part, "Content-Transfer-Encoding") == ["quoted-printable"]
    assert part.defects == []
    assert untrack(part.get_content(), tracker, in_html=True) == markup
    assert_pixel_before_body_end(part.get_content())
    assert max(len(line) for line in out.splitlines()) <= 998
    assert_line_endings(out, CRLF)
    return part


def test_seven_bit_line_too_long_after_rewriting_moves_to_quoted_printable(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    raw = seven_bit_long_line()
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)

    assert_moved_to_quoted_printable(raw, out, tracker, signer, long_line_html() + "\r\n")
    # Only the transfer encoding header changed.
    assert header_block(out) == header_block(raw).replace(b"7bit", b"quoted-printable")
    assert payload(only_part(out, "text/html")) == instrument_html(
        (long_line_html() + "\r\n").encode(), replay(tracker, 0)
    )


def test_long_line_without_transfer_encoding_header_gets_one(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/html\n"
        "\n" + long_line_html() + "\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert_moved_to_quoted_printable(raw, out, tracker, signer, long_line_html() + "\r\n")
    added = b"\r\nContent-Transfer-Encoding: quoted-printable"
    assert header_block(out) == header_block(raw) + added


def test_long_line_in_8bit_utf8(make_tracker: TrackerFactory, signer: TokenSigner) -> None:
    markup = long_line_html().replace("<p>", "<p>Grüße ")
    raw = (
        crlf(
            "From: a@example.com\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit\n"
            "\n"
        )
        + markup.encode("utf-8")
        + b"\r\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert_moved_to_quoted_printable(raw, out, tracker, signer, markup + "\r\n")


def test_short_lines_stay_in_seven_bit(make_tracker: TrackerFactory) -> None:
    markup = long_line_html(3)
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/html\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\n" + markup + "\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert header_block(out) == header_block(raw)
    assert len(tracker.tracked) == 3
    assert untrack(parse(out).get_content(), tracker, in_html=True) == markup + "\r\n"


def test_long_line_in_a_multipart_keeps_crlf(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    # As most mailers write it: the line break before the delimiter belongs to the
    # delimiter, so the body itself is one line without a line break.
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="ll"\n'
        "\n"
        "--ll\n"
        "Content-Type: text/html; charset=us-ascii\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\n" + long_line_html() + "\n"
        "--ll--\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert_moved_to_quoted_printable(raw, out, tracker, signer, long_line_html())
    before, after = pieces(raw, "ll"), pieces(out, "ll")
    assert before[0] == after[0]
    assert before[-1] == after[-1]


def test_single_line_base64_body_keeps_crlf(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    markup = '<a href="https://example.com/x">x</a>'  # 52 characters in base64
    raw = (
        crlf(
            "From: a@example.com\n"
            "MIME-Version: 1.0\n"
            'Content-Type: multipart/alternative; boundary="sb"\n'
            "\n"
            "--sb\n"
            "Content-Type: text/html; charset=us-ascii\n"
            "Content-Transfer-Encoding: base64\n"
            "\n"
        )
        + base64.b64encode(markup.encode())
        + crlf("\n--sb--\n")
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert [t.destination for t in tracker.tracked] == ["https://example.com/x"]
    assert_links_verify(tracker, signer)
    assert untrack(only_part(out, "text/html").get_content(), tracker, in_html=True) == markup
    assert all(len(line) <= 76 for line in body_lines(pieces(out, "sb")[1]))
    assert_line_endings(out, CRLF)


def test_long_line_in_a_part_without_headers(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    # A body part with no header lines at all is text/plain; us-ascii, 7bit (RFC 2046 5.1).
    text = "Links: " + " ".join(f"https://example.com/p/{i}" for i in range(16))
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="nh"\n'
        "\n"
        "--nh\n"
        "\n" + text + "\n"
        "--nh--\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert len(tracker.tracked) == 16
    assert_links_verify(tracker, signer)
    part = only_part(out, "text/plain")
    assert headers_of(part, "Content-Transfer-Encoding") == ["quoted-printable"]
    assert untrack(part.get_content(), tracker, in_html=False) == text
    assert_line_endings(out, CRLF)


def test_folded_transfer_encoding_header_is_replaced_whole(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/html\n"
        "Content-Transfer-Encoding:\n"
        " 7bit\n"
        "\n" + long_line_html() + "\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert_moved_to_quoted_printable(raw, out, tracker, signer, long_line_html() + "\r\n")


# --------------------------------------------------------------------------- broken input


def broken_alternative(closing: bool = True, boundary_param: bool = True) -> bytes:
    ctype = 'multipart/alternative; boundary="br"' if boundary_param else "multipart/alternative"
    return crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        f"Content-Type: {ctype}\n"
        "\n"
        "--br\n"
        "Content-Type: text/plain\n"
        "\n"
        "Text: https://example.com/text\n"
        "--br\n"
        "Content-Type: text/html\n"
        "\n"
        '<html><body><a href="https://example.com/html">x</a></body></html>\n'
        + ("--br--\n" if closing else "")
    )


def test_missing_close_delimiter_keeps_everything_else(make_tracker: TrackerFactory) -> None:
    raw = broken_alternative(closing=False)
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert tracker.tracked[0].destination == "https://example.com/text"
    assert out.startswith(raw[: raw.index(b"Text: ")])
    assert b"\r\n--br\r\nContent-Type: text/html\r\n\r\n<html><body><a href=" in out


def test_missing_close_delimiter_still_instruments_the_last_part(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    # Mail clients (and the stdlib parser, with a CloseBoundaryNotFoundDefect) show the
    # last part of an unterminated multipart: it runs to the end of the message.
    raw = broken_alternative(closing=False)
    assert [p.get_content_type() for p in parse(raw).walk()][-1] == "text/html"
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert [t.destination for t in tracker.tracked] == [
        "https://example.com/text",
        "https://example.com/html",
    ]
    assert_links_verify(tracker, signer)
    assert_pixel_before_body_end(only_part(out, "text/html").get_content())


def test_missing_boundary_parameter_changes_nothing(make_tracker: TrackerFactory) -> None:
    raw = broken_alternative(boundary_param=False)
    tracker = make_tracker(MID)
    assert instrument_message(raw, tracker) == raw
    assert tracker.tracked == []


def test_unknown_transfer_encoding_is_left_alone_with_a_note(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    markup = b'<html><body><a href="https://example.com/uu">x</a></body></html>\n'
    chunks = [markup[i : i + 45] for i in range(0, len(markup), 45)]
    uuencoded = (
        "begin 644 mail.html\n"
        + "".join(binascii.b2a_uu(chunk).decode("ascii") for chunk in chunks)
        + "`\nend\n"
    )
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="uu"\n'
        "\n"
        "--uu\n"
        "Content-Type: text/plain\n"
        "\n"
        "Text: https://example.com/text\n"
        "--uu\n"
        "Content-Type: text/html\n"
        "Content-Transfer-Encoding: x-uuencode\n"
        "\n" + uuencoded + "--uu--\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert [t.destination for t in tracker.tracked] == ["https://example.com/text"]
    assert_links_verify(tracker, signer)
    before, after = pieces(raw, "uu"), pieces(out, "uu")
    assert after[2:] == before[2:]
    assert any("x-uuencode" in note for note in tracker.notes)


def test_corrupt_base64_is_left_alone_with_a_note(make_tracker: TrackerFactory) -> None:
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/html\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "PGEgaHJlZj0iaHR0cHM6Ly9leGFtcGxlLmNvbS8iPng8L2E+P\n"
    )
    tracker = make_tracker(MID)
    assert instrument_message(raw, tracker) == raw
    assert tracker.tracked == []
    assert tracker.notes


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n",
        b"Subject: headers only\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n",
        b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    ],
)
def test_degenerate_messages_do_not_raise(raw: bytes, make_tracker: TrackerFactory) -> None:
    instrument_message(raw, make_tracker(MID))


# --------------------------------------------------------------------------- positions


def test_link_positions_are_unique_across_parts(
    make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    # Two inline HTML parts and two text parts, nested: positions run 1..n in document order.
    raw = crlf(
        "From: a@example.com\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="outer"\n'
        "\n"
        "--outer\n"
        'Content-Type: multipart/alternative; boundary="inner"\n'
        "\n"
        "--inner\n"
        "Content-Type: text/plain\n"
        "\n"
        "https://example.com/1 https://example.com/2\n"
        "--inner\n"
        "Content-Type: text/html\n"
        "\n"
        '<a href="https://example.com/3">3</a><a href="https://example.com/1">1</a>\n'
        "--inner--\n"
        "--outer\n"
        "Content-Type: text/html\n"
        "Content-Disposition: inline\n"
        "\n"
        '<a href="https://example.com/4">4</a>\n'
        "--outer\n"
        "Content-Type: text/plain\n"
        "\n"
        "P.S. https://example.com/5\n"
        "--outer--\n"
    )
    tracker = make_tracker(MID)
    out = instrument_message(raw, tracker)
    assert [t.destination for t in tracker.tracked] == [
        f"https://example.com/{n}" for n in (1, 2, 3, 1, 4, 5)
    ]
    assert_links_verify(tracker, signer)
    urls = CLICK.findall(out.decode("ascii"))
    assert urls == [t.url for t in tracker.tracked]
    assert len(set(urls)) == len(urls)
    assert [parse_tracking_url(u, signer).link for u in urls] == [1, 2, 3, 4, 5, 6]


# --------------------------------------------------------------------------- corpus


CORPUS_FILES = sorted(CORPUS.glob("*.html"))


@pytest.mark.parametrize("cte", ["quoted-printable", "base64"])
@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.stem[:60] for p in CORPUS_FILES])
def test_corpus_email_wrapped_in_a_message(
    path: Path, cte: str, make_tracker: TrackerFactory, signer: TokenSigner
) -> None:
    markup = path.read_text(encoding="utf-8")
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["Subject"] = path.stem
    msg.set_content("See https://example.com/plain-version\n", cte=cte)
    msg.add_alternative(markup, subtype="html", cte=cte)
    raw = msg.as_bytes(policy=email.policy.SMTP)
    tracker = make_tracker(MID)

    out = instrument_message(raw, tracker)

    assert tracker.tracked[0].destination == "https://example.com/plain-version"
    assert_links_verify(tracker, signer)
    html_in, html_out = only_part(raw, "text/html"), only_part(out, "text/html")
    assert payload(html_out) == instrument_html(payload(html_in), replay(tracker, 1), "utf-8")
    assert header_block(out) == header_block(raw)
    assert_line_endings(out, CRLF)
    assert instrument_message(out, make_tracker(MID)) == out


# --------------------------------------------------------------------------- CLI


def cli() -> click.Command:
    # Imported here: the message tests above do not depend on the command-line layer.
    from pixeltrail.cli import main

    return main


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {"PIXELTRAIL_SECRET_KEY": SECRET, "PIXELTRAIL_DATA_DIR": str(tmp_path / "data")}


def cli_instrument(tmp_path: Path, env: dict[str, str], raw: bytes, *args: str) -> bytes:
    path = tmp_path / "message.eml"
    path.write_bytes(raw)
    result = CliRunner().invoke(
        cli(),
        ["instrument", str(path), "--message-id", MID, "--base-url", BASE_URL, *args],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert f"message {MID}: " in result.stderr
    return result.stdout_bytes


def test_cli_instruments_an_eml_file(
    tmp_path: Path, cli_env: dict[str, str], links: LinkBuilder, signer: TokenSigner
) -> None:
    raw = mixed()
    out = cli_instrument(tmp_path, cli_env, raw)

    # Exactly what the library gives for the same message id and key.
    assert out == instrument_message(raw, MessageTracker(links, MID))
    msg = parse(out)
    html_out = only_part(out, "text/html").get_content()
    text_out = only_part(out, "text/plain").get_content()
    urls = CLICK.findall(text_out) + CLICK.findall(html_out)
    claims = [parse_tracking_url(u, signer) for u in urls]
    assert [c.destination for c in claims] == LINKS + LINKS
    assert [c.link for c in claims] == list(range(1, 7))
    assert {c.message_id for c in claims} == {MID}
    assert_pixel_before_body_end(html_out)
    assert msg["Subject"] == "Our brochure"
    assert header_block(out) == header_block(raw)


def test_cli_no_text_links_on_an_eml_file(tmp_path: Path, cli_env: dict[str, str]) -> None:
    raw = alternative("quoted-printable", CRLF)
    out = cli_instrument(tmp_path, cli_env, raw, "--no-text-links", "--no-opens")
    assert pieces(out, "alt-7f3a")[1] == pieces(raw, "alt-7f3a")[1]
    assert "/o/" not in only_part(out, "text/html").get_content()
    assert len(CLICK.findall(only_part(out, "text/html").get_content())) == 3


def test_cli_inspect_a_link_from_an_eml(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = cli_instrument(tmp_path, cli_env, alternative("base64", CRLF))
    url = CLICK.findall(only_part(out, "text/html").get_content())[0]
    key_id = KeyRing.parse(SECRET).signing_key.key_id_hex

    result = CliRunner().invoke(cli(), ["inspect", url], env=cli_env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].split()[0] == "click"
    assert lines[0].endswith(f"-> {CATALOGUE}")
    assert MID in lines[0]
    assert "link 4" in lines[0]
    assert key_id in lines[0]

    result = CliRunner().invoke(cli(), ["inspect", "--json", url], env=cli_env)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert isinstance(record, dict)
    assert set(record) >= {"kind", "destination", "message_id", "link", "key_id"}
    assert record["kind"] == "click"
    assert record["destination"] == CATALOGUE
    assert record["message_id"] == MID
    assert record["link"] == 4
    assert record["key_id"] == key_id


def test_cli_inspect_rejects_a_tampered_link(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = cli_instrument(tmp_path, cli_env, alternative("7bit", LF))
    url = CLICK.findall(only_part(out, "text/plain").get_content())[0]
    tampered = url[:-2] + ("A" if url[-2] != "A" else "B") + url[-1]
    result = CliRunner().invoke(cli(), ["inspect", tampered], env=cli_env)
    assert result.exit_code == 1
    assert result.stdout.startswith("invalid")
