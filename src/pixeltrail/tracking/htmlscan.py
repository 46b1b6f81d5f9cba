"""Finding the attribute values instrumentation may rewrite: the scan, in Python and compiled.

A scanner that follows the HTML tokenizer (tags, quoted attributes, comments, raw-text
elements) reports, in document order, the byte spans of the values of interest: each
link's href (with its `data-track` value, if any) and, when asked, each `<img src>`.
It also reports where the last top-level `</body>` starts. Conditional comments
(`<!--[if mso]>...<![endif]-->`) are scanned too, since Outlook renders their markup
(VML buttons).

`scan_python` is the reference. `_htmlscan` is the same scanner in C; `scan` is the
compiled one when it is importable, else the reference (and a warning is logged once).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

# (kind, value start, value end, data-track start, data-track end); -1, -1 without data-track.
Found = tuple[int, int, int, int, int]
Scan = Callable[[bytes, bool], tuple[list[Found], int]]
LINK = 0  # an href of <a>, <area> or a VML element, with a value
IMAGE = 1  # an <img src> with a value

_NAME_REST = rb"[^\t\n\f\r />]*+"
# The attributes and end of a tag, as the tokenizer reads them. Possessive everywhere:
# the tokenizer never backtracks, and neither may this (no catastrophic cases).
_TAG_REST = (
    rb"(?:[\t\n\f\r /]*+[^\t\n\f\r />][^\t\n\f\r /=>]*+"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >]*+))?+)*+"
    rb"[\t\n\f\r /]*+>"
)
_SEP = rb"(?=[\t\n\f\r />])"
_COMMENT_BODY = rb"(?:-?>|(?:[^-]++|-(?!-!?>))*+(?:--!?>|\Z))"
_RAW_TEXT = (b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes")
_LINK_TAGS = rb"a|area|v:[^\t\n\f\r />]*+"


def _raw_text_element(name: bytes) -> bytes:
    """A raw-text element, start tag to (not including) its end tag: no markup inside."""
    return (
        rb"<(?i:"
        + name
        + rb")"
        + _SEP
        + _NAME_REST
        + _TAG_REST
        + rb"(?:[^<]++|<(?!/(?i:"
        + name
        + rb")"
        + _SEP
        + rb"))*+"
    )


def _scanner(with_img: bool) -> re.Pattern[bytes]:
    """One match = everything of no interest (in C), then one token the scan acts on.

    Of interest: link tags, conditional comments (scanned inside), `</body>`, and `<img>`
    only when the document may already hold our pixel.
    """
    interesting = rb"(?i:" + _LINK_TAGS + (rb"|img" if with_img else b"") + rb")" + _SEP
    skip = (
        rb"(?:[^<]++"
        rb"|<(?![A-Za-z!/?])"  # a '<' that starts nothing is text
        + rb"|<!--(?!\[(?i:if))"
        + _COMMENT_BODY
        + b"".join(rb"|" + _raw_text_element(name) for name in _RAW_TEXT)
        + rb"|<(?i:plaintext)"
        + _SEP
        + rb"[\s\S]*+"  # the rest is text, for good
        + rb"|<(?!"
        + interesting
        + rb")[A-Za-z]"
        + _NAME_REST
        + _TAG_REST
        + rb"|</(?!(?i:body)"
        + _SEP
        + rb")[A-Za-z]"
        + _NAME_REST
        + _TAG_REST
        + rb"|</(?![A-Za-z])[^>]*+(?:>|\Z)"  # bogus comment (or '</>')
        + rb"|<!(?!--)[^>]*+(?:>|\Z)"  # doctype, CDATA outside foreign content, bogus comment
        + rb"|<\?[^>]*+(?:>|\Z)"
        + rb")*+"
    )
    return re.compile(
        skip
        + rb"(?:(?P<comment><!--"
        + _COMMENT_BODY
        + rb")"
        + rb"|(?P<tag><(?P<name>"
        + interesting
        + rb")"
        + _NAME_REST
        + _TAG_REST
        + rb")"
        + rb"|(?P<bodyend></(?i:body)"
        + _SEP
        + _TAG_REST
        + rb")"
        + rb"|(?P<lt><)"  # an unterminated tag: the tokenizer drops it, so nothing to do
        + rb"|\Z)"
    )


_SCANNERS = {False: _scanner(with_img=False), True: _scanner(with_img=True)}
_ATTRIBUTE = re.compile(
    rb"[\t\n\f\r /]*+(?P<name>[^\t\n\f\r />][^\t\n\f\r /=>]*+)"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"(?P<dq>[^\"]*+)\"|'(?P<sq>[^']*+)'|(?P<uq>[^\t\n\f\r >]*+)))?+"
)
_CONDITIONAL = re.compile(rb"<!--\[if[^\]]*\]>([\s\S]*)<!\[endif\]\s*-->\Z", re.IGNORECASE)


def scan_python(data: bytes, with_img: bool) -> tuple[list[Found], int]:
    """The values of interest in document order, and where the last `</body>` starts (or -1)."""
    found: list[Found] = []
    body_end = _run(data, 0, len(data), _SCANNERS[with_img], found, top_level=True)
    return found, body_end


def _run(
    data: bytes, pos: int, end: int, scanner: re.Pattern[bytes], found: list[Found], top_level: bool
) -> int:
    body_end = -1
    while True:
        m = scanner.match(data, pos, end)
        assert m is not None  # the pattern always matches, at worst the empty end
        if m.group("comment") is not None:
            inner = _CONDITIONAL.match(m.group("comment"))
            if inner:
                start = m.start("comment") + inner.start(1)
                # Inside, no comment can be conditional (it would end the outer one).
                _run(data, start, start + len(inner.group(1)), scanner, found, top_level=False)
        elif m.group("tag") is not None:
            _tag(data, m, found)
        elif m.group("bodyend") is not None:
            if top_level:
                body_end = m.start("bodyend")
        elif m.group("lt") is None:
            return body_end
        pos = m.end()


def _tag(data: bytes, m: re.Match[bytes], found: list[Found]) -> None:
    attributes: dict[bytes, re.Match[bytes]] = {}
    for a in _ATTRIBUTE.finditer(data, m.end("name"), m.end() - 1):
        # The first of two same-named attributes wins, as in a browser.
        attributes.setdefault(a.group("name").lower(), a)
    if m.group("name").lower() == b"img":
        src = attributes.get(b"src")
        if src is not None and (span := _value_span(src)) is not None:
            found.append((IMAGE, *span, -1, -1))
        return
    href = attributes.get(b"href")
    span = _value_span(href) if href is not None else None
    if span is None:
        return
    track = attributes.get(b"data-track")
    track_span = (-1, -1) if track is None else _value_span(track) or (track.end(), track.end())
    found.append((LINK, *span, *track_span))


def _value_span(attribute: re.Match[bytes]) -> tuple[int, int] | None:
    """Where the attribute's value is (double-, single- or unquoted); None if it has none."""
    for group in ("dq", "sq", "uq"):
        if attribute.group(group) is not None:
            return attribute.span(group)
    return None


def _compiled() -> Scan:
    try:
        from pixeltrail.tracking import _htmlscan  # noqa: PLC0415
    except ImportError as error:
        logging.getLogger(__name__).warning(
            "compiled HTML scanner not available (%s); using the slower Python scanner", error
        )
        return scan_python
    return _htmlscan.scan


scan: Scan = _compiled()
