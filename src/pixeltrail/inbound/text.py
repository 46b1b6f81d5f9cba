"""Text of a message whatever it claims: headers and parts decoded with their charset, or
replaced characters when the charset is wrong, unknown or no charset at all; HTML as plain text."""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Iterator
from email.header import decode_header
from email.message import Message
from html.parser import HTMLParser

# Codecs Python knows that are no character set of text (transforms, and names that decode
# anything into something else): a part naming one is read as UTF-8 with replacements.
_NOT_CHARSETS = frozenset(
    {"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "charmap"}
)
# Deeper than any real message: a report inside a forward inside a digest is five.
MAX_DEPTH = 12


def charset_codec(name: str | None) -> str:
    """Python's codec for a charset a message names; UTF-8 for no name, an unknown one, or one
    that is no character set (rot13, base64, undefined, ...)."""
    if not name:
        return "utf-8"
    try:
        codec = codecs.lookup(name.strip().strip('"'))
    except (LookupError, ValueError):
        return "utf-8"
    if not codec._is_text_encoding or codec.name in _NOT_CHARSETS:
        return "utf-8"
    # Mail says us-ascii and sends Latin-1 or UTF-8: ascii would replace every accent.
    return "utf-8" if codec.name == "ascii" else codec.name


def decode_bytes(data: bytes, charset: str | None) -> str:
    codec = charset_codec(charset)
    try:
        return data.decode(codec, errors="replace")
    except Exception:  # a codec that raises anyway (some CJK codecs on broken input)
        return data.decode("utf-8", errors="replace")


def header_text(msg: Message, name: str) -> str:
    """A header's value as text: RFC 2047 words decoded, raw 8-bit bytes read as UTF-8."""
    value = msg.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):  # an email.header.Header of a surrogate-escaped value
        value = str(value)
    raw = value.encode("utf-8", errors="surrogateescape")
    try:
        chunks = decode_header(raw.decode("ascii", errors="replace"))
    except Exception:
        return raw.decode("utf-8", errors="replace")
    if not any(charset for _, charset in chunks):
        return raw.decode("utf-8", errors="replace").strip()
    out = []
    for chunk, charset in chunks:
        data = chunk if isinstance(chunk, bytes) else chunk.encode("ascii", errors="replace")
        out.append(decode_bytes(data, charset))
    return " ".join(" ".join(out).split())


def part_text(part: Message) -> str:
    """A leaf part's content as text, its transfer encoding undone; never raises."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        data = b""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data, charset)


def walk(msg: Message, depth: int = 0) -> Iterator[Message]:
    """Every part, depth first, at most MAX_DEPTH levels down (the library's own walk recurses
    without a limit)."""
    yield msg
    if depth < MAX_DEPTH:
        for sub in subparts(msg):
            yield from walk(sub, depth + 1)


def subparts(msg: Message) -> list[Message]:
    """A multipart's parts, or an attached message; [] for a leaf. (A leaf's get_payload()
    decodes with the part's charset and raises on some, so it is never called here.)"""
    if not msg.is_multipart():
        return []
    payload = msg.get_payload()
    return [sub for sub in payload if isinstance(sub, Message)] if isinstance(payload, list) else []


def is_attachment(part: Message) -> bool:
    disposition = str(part.get("content-disposition", "")).split(";")[0].strip().lower()
    return disposition == "attachment"


def body_text(msg: Message) -> str:
    """The message's own text: its first inline text/plain part, else its first inline
    text/html part as text. Attachments and attached messages (a quoted original) are skipped."""
    html = None
    for part in _own_parts(msg, 0):
        ctype = part.get_content_type()
        if ctype == "text/plain":
            return part_text(part)
        if ctype == "text/html" and html is None:
            html = part
    return html_text(part_text(html)) if html is not None else ""


def _own_parts(msg: Message, depth: int) -> Iterator[Message]:
    if is_attachment(msg) or depth > MAX_DEPTH:
        return
    if msg.get_content_maintype() == "message" and depth:  # an attached message: someone else's
        return
    if msg.is_multipart():
        for sub in subparts(msg):
            yield from _own_parts(sub, depth + 1)
    elif msg.get_content_maintype() == "text":
        yield msg


def html_text(html: str) -> str:
    """Visible text of an HTML document: tags dropped, entities decoded, scripts, styles and
    head left out, blocks on their own lines. HTMLParser never raises on bad markup."""
    parser = _TextParser()
    with contextlib.suppress(Exception):  # defensive: bad markup is data, never an error here
        parser.feed(html)
        parser.close()
    text = "".join(parser.chunks)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _TextParser(HTMLParser):
    _HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})
    _BLOCKS = frozenset(
        {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.chunks.append(data)


def first_bytes(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut on a character boundary."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")
