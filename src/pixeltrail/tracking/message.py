"""Instrumenting a whole RFC 5322 message: its text/html and text/plain parts, nothing else.

The message is never re-serialized by a MIME library (that would refold headers and
re-encode every part). Parts are located in the raw bytes; only the bodies of the
inline text parts that change are replaced, re-encoded in their own transfer encoding.
Attachments, other parts, headers, preamble and epilogue stay byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from pixeltrail.tracking.charsets import UnsupportedCharset
from pixeltrail.tracking.htmlpart import instrument_html
from pixeltrail.tracking.textpart import instrument_text
from pixeltrail.tracking.tracker import MessageTracker

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_SMTP_LINE_LIMIT = 998
_MAX_DEPTH = 20
# The whole field, folded continuation lines included.
_CTE_HEADER = re.compile(rb"(?im)^content-transfer-encoding[ \t]*:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*")


@dataclass(frozen=True)
class _Part:
    """A MIME entity inside the raw message: where its header and body are."""

    header_start: int
    header_end: int
    body_start: int
    end: int
    headers: Message


def _part_at(raw: bytes, start: int, end: int) -> _Part:
    if raw.startswith((b"\r\n", b"\n"), start):
        # No headers at all: the body starts after the empty line.
        body_start = start + (2 if raw.startswith(b"\r\n", start) else 1)
        return _Part(start, start, body_start, end, Message())
    m = _HEADER_END.search(raw, start, end)
    header_end, body_start = (m.start(), m.end()) if m else (end, end)
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[start:header_end])
    return _Part(start, header_end, body_start, end, headers)


def _children(raw: bytes, part: _Part) -> list[tuple[int, int]]:
    """The (start, end) spans of a multipart's body parts, per RFC 2046 delimiters."""
    boundary = part.headers.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return []
    delimiter = re.compile(
        rb"(?:^|(?<=\n))--"
        + re.escape(boundary.encode("ascii", "replace"))
        + rb"(--)?[ \t]*(\r?\n|\Z)",
        re.MULTILINE,
    )
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for m in delimiter.finditer(raw, part.body_start, part.end):
        if start is not None:
            # The line break before a delimiter belongs to the delimiter.
            end = m.start()
            end -= 2 if raw[end - 2 : end] == b"\r\n" else 1 if raw[end - 1 : end] == b"\n" else 0
            spans.append((start, max(start, end)))
        if m.group(1):  # close delimiter
            return spans
        start = m.end()
    if start is not None and start < part.end:
        # Unterminated multipart: as mail clients read it, the last part runs to the end.
        spans.append((start, part.end))
    return spans


def _is_attachment(headers: Message) -> bool:
    disposition = headers.get_content_disposition()
    return disposition == "attachment" or headers.get_filename() is not None


def _decode(body: bytes, cte: str) -> bytes | None:
    if cte == "base64":
        try:
            return base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", body))
        except binascii.Error:
            return None
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    if cte in {"", "7bit", "8bit", "binary"}:
        return body
    return None  # x-uuencode and friends: leave alone


def _line_ending(*samples: bytes) -> bytes:
    """The line ending of the first sample that has a line break (LF if none has)."""
    for sample in samples:
        if b"\n" in sample:
            return b"\r\n" if b"\r\n" in sample else b"\n"
    return b"\n"


def _encode(data: bytes, cte: str, original: bytes, eol: bytes) -> bytes:
    if cte == "base64":
        first, newline, _ = original.partition(b"\n")
        first = first.rstrip(b"\r")
        # Keep the original width; a one-line body says nothing about it.
        width = len(first) - len(first) % 4 if newline and len(first) >= 4 else 76
        encoded = base64.b64encode(data)
        lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
        tail = eol if original.endswith(b"\n") else b""
        return eol.join(lines) + tail
    if cte == "quoted-printable":
        text = data.replace(b"\r\n", b"\n")
        encoded = binascii.b2a_qp(text, quotetabs=False, istext=True)
        return encoded.replace(b"\n", eol)
    return data


def _max_line(data: bytes) -> int:
    return max((len(line.rstrip(b"\r")) for line in data.split(b"\n")), default=0)


class _Instrumenter:
    def __init__(self, raw: bytes, tracker: MessageTracker) -> None:
        self.raw = raw
        self.tracker = tracker
        self.edits: list[tuple[int, int, bytes]] = []

    def visit(self, part: _Part, depth: int = 0) -> None:
        headers = part.headers
        ctype = headers.get_content_type()
        if ctype.startswith("multipart/") and depth < _MAX_DEPTH:
            for start, end in _children(self.raw, part):
                self.visit(_part_at(self.raw, start, end), depth + 1)
        elif ctype in {"text/html", "text/plain"} and not _is_attachment(headers):
            self._leaf(part, ctype)

    def _leaf(self, part: _Part, ctype: str) -> None:
        body = self.raw[part.body_start : part.end]
        cte = str(part.headers.get("Content-Transfer-Encoding", "")).strip().lower()
        decoded = _decode(body, cte)
        if decoded is None:
            self.tracker.notes.append(f"{ctype} part with transfer encoding {cte!r} left as it is")
            return
        charset = part.headers.get_content_charset()
        try:
            if ctype == "text/html":
                changed = instrument_html(decoded, self.tracker, charset)
            else:
                changed = instrument_text(decoded, self.tracker, charset or "us-ascii")
        except UnsupportedCharset as exc:
            self.tracker.notes.append(f"{ctype} part left as it is: {exc}")
            return
        if changed == decoded:
            return
        grows_too_long = _max_line(changed) > _SMTP_LINE_LIMIT >= _max_line(decoded)
        if cte in {"", "7bit", "8bit"} and grows_too_long:
            # Longer links would break SMTP's line limit: move this part to
            # quoted-printable rather than send lines a server may cut.
            self._set_cte(part, b"quoted-printable")
            cte = "quoted-printable"
        # A one-line body has no line break of its own: the part's header has one.
        eol = _line_ending(body, self.raw[part.header_start : part.body_start], self.raw)
        self.edits.append((part.body_start, part.end, _encode(changed, cte, body, eol)))

    def _set_cte(self, part: _Part, value: bytes) -> None:
        m = _CTE_HEADER.search(self.raw, part.header_start, part.header_end)
        if m:
            self.edits.append((m.start(), m.end(), b"Content-Transfer-Encoding: " + value))
        else:
            eol = _line_ending(self.raw[part.header_end : part.body_start])
            # With no header lines at all, the new field goes before the empty line.
            has_headers = part.header_end > part.header_start
            at = part.header_end + len(eol) if has_headers else part.header_start
            self.edits.append((at, at, b"Content-Transfer-Encoding: " + value + eol))

    def result(self) -> bytes:
        out, last = [], 0
        for start, end, replacement in sorted(self.edits, key=lambda e: e[0]):
            out += [self.raw[last:start], replacement]
            last = end
        out.append(self.raw[last:])
        return b"".join(out)


def instrument_message(raw: bytes, tracker: MessageTracker) -> bytes:
    """The message with its inline HTML and text parts instrumented; all else byte for byte."""
    instrumenter = _Instrumenter(raw, tracker)
    instrumenter.visit(_part_at(raw, 0, len(raw)))
    return instrumenter.result()
