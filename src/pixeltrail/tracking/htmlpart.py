"""Instrumenting HTML byte-exactly: rewrite link hrefs, insert the open pixel, change nothing else.

The document is never parsed into a tree and re-serialized. A scanner that follows the
HTML tokenizer (tags, quoted attributes, comments, raw-text elements) finds the href
values to replace and the `</body>` to put the pixel before; every other byte is copied.
Conditional comments (`<!--[if mso]>...<![endif]-->`) are scanned too, since Outlook
renders their markup (VML buttons).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pixeltrail.tracking.charsets import sniff_html_charset, through_ascii_view
from pixeltrail.tracking.entities import decode_attribute
from pixeltrail.tracking.tracker import OPT_OUT_ATTRIBUTE, OPT_OUT_VALUES, MessageTracker
from pixeltrail.tracking.urls import browser_url

_WS = rb"\t\n\f\r "
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


_SCAN = _scanner(with_img=False)
_SCAN_WITH_IMG = _scanner(with_img=True)
_ATTRIBUTE = re.compile(
    rb"[\t\n\f\r /]*+(?P<name>[^\t\n\f\r />][^\t\n\f\r /=>]*+)"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"(?P<dq>[^\"]*+)\"|'(?P<sq>[^']*+)'|(?P<uq>[^\t\n\f\r >]*+)))?+"
)
_CONDITIONAL = re.compile(rb"<!--\[if[^\]]*\]>([\s\S]*)<!\[endif\]\s*-->\Z", re.IGNORECASE)

PIXEL_STYLE = (
    "display:block;width:1px;height:1px;border:0;margin:0;padding:0;"
    "max-height:1px;max-width:1px;overflow:hidden"
)
HONEYPOT_STYLE = (
    "display:none !important;mso-hide:all;font-size:0;line-height:0;max-height:0;overflow:hidden"
)


@dataclass
class _Scan:
    data: bytes
    charset: str
    tracker: MessageTracker
    edits: list[tuple[int, int, bytes]] = field(default_factory=list)
    body_end: int | None = None
    has_pixel: bool = False
    has_honeypot: bool = False
    scanner: re.Pattern[bytes] = _SCAN

    def run(self, pos: int, end: int, top_level: bool) -> None:
        data = self.data
        while True:
            m = self.scanner.match(data, pos, end)
            assert m is not None  # the pattern always matches, at worst the empty end
            if m.group("comment") is not None:
                inner = _CONDITIONAL.match(m.group("comment"))
                if inner:
                    start = m.start("comment") + inner.start(1)
                    self.run(start, start + len(inner.group(1)), top_level=False)
                pos = m.end()
            elif m.group("tag") is not None:
                pos = self._tag(m)
            elif m.group("bodyend") is not None:
                if top_level:
                    self.body_end = m.start("bodyend")
                pos = m.end()
            elif m.group("lt") is not None:
                pos = m.end()
            else:
                return

    def _tag(self, m: re.Match[bytes]) -> int:
        name = m.group("name").lower()
        attributes = self._attributes(m.end("name"), m.end())
        if name == b"img":
            src = attributes.get(b"src")
            if src and self._value(src).startswith(self.tracker.links.open_prefix):
                self.has_pixel = True
            return m.end()
        href = attributes.get(b"href")
        group = _value_group(href) if href is not None else None
        if href is None or group is None:
            return m.end()
        opt_out = attributes.get(OPT_OUT_ATTRIBUTE.encode())
        if opt_out is not None and self._value(opt_out).strip().lower() in OPT_OUT_VALUES:
            return m.end()
        url = self._value(href)
        if self.tracker.options.honeypot and self.tracker.is_honeypot_url(url):
            self.has_honeypot = True
        if not self.tracker.options.clicks:
            return m.end()
        destination = self.tracker.destination_for(url)
        if destination is not None:
            tracked = self.tracker.click_url(destination).encode("ascii")
            self.edits.append((href.start(group), href.end(group), tracked))
        return m.end()

    def _attributes(self, start: int, end: int) -> dict[bytes, re.Match[bytes]]:
        found: dict[bytes, re.Match[bytes]] = {}
        for a in _ATTRIBUTE.finditer(self.data, start, end - 1):
            # The first of two same-named attributes wins, as in a browser.
            found.setdefault(a.group("name").lower(), a)
        return found

    def _value(self, attribute: re.Match[bytes]) -> str:
        group = _value_group(attribute)
        raw = attribute.group(group) if group else b""
        try:
            text = raw.decode(self.charset)
        except (UnicodeDecodeError, LookupError):
            return ""  # a URL no one can read exactly is left alone
        return browser_url(decode_attribute(text))


def _value_group(attribute: re.Match[bytes]) -> str | None:
    """Which group holds the attribute's value: double-, single- or unquoted; None if no value."""
    for group in ("dq", "sq", "uq"):
        if attribute.group(group) is not None:
            return group
    return None


def _tracking_markup(tracker: MessageTracker, scan: _Scan) -> bytes:
    parts = []
    if tracker.options.honeypot and not scan.has_honeypot and not scan.has_pixel:
        parts.append(
            f'<a href="{tracker.honeypot_url()}" aria-hidden="true" tabindex="-1" '
            f'style="{HONEYPOT_STYLE}"></a>'
        )
    if tracker.options.opens and not scan.has_pixel:
        parts.append(
            f'<img src="{tracker.open_url()}" width="1" height="1" alt="" border="0" '
            f'style="{PIXEL_STYLE}" />'
        )
    return "".join(parts).encode("ascii")


def _rewrite(data: bytes, charset: str, tracker: MessageTracker) -> bytes:
    # <img> tags matter only to find a pixel of ours already there (instrumenting twice).
    maybe_pixel = tracker.links.open_prefix.encode("ascii") in data
    scan = _Scan(data, charset, tracker, scanner=_SCAN_WITH_IMG if maybe_pixel else _SCAN)
    scan.run(0, len(data), top_level=True)
    if markup := _tracking_markup(tracker, scan):
        at = scan.body_end if scan.body_end is not None else len(data)
        scan.edits.append((at, at, markup))
    if not scan.edits:
        return data
    out, last = [], 0
    for start, stop, replacement in sorted(scan.edits, key=lambda edit: edit[0]):
        out += [data[last:start], replacement]
        last = stop
    out.append(data[last:])
    return b"".join(out)


def instrument_html(data: bytes, tracker: MessageTracker, charset: str | None = None) -> bytes:
    """The HTML with its links tracked and the pixel inserted, in its own charset.

    `charset` is the one declared outside the document (a MIME Content-Type); without
    it the document's BOM or <meta> decides. Raises UnsupportedCharset when the text
    cannot be rewritten byte-exactly; callers then leave it as it is.
    """
    charset = charset or sniff_html_charset(data)
    return through_ascii_view(data, charset, lambda raw, cs: _rewrite(raw, cs, tracker))
