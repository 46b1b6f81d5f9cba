"""Instrumenting HTML byte-exactly: rewrite link hrefs, insert the open pixel, change nothing else.

The document is never parsed into a tree and re-serialized. The scan (htmlscan.py) finds
the href values to replace and the `</body>` to put the pixel before; every other byte is
copied.
"""

from __future__ import annotations

import functools

from pixeltrail.tracking.charsets import sniff_html_charset, through_ascii_view
from pixeltrail.tracking.entities import decode_attribute
from pixeltrail.tracking.htmlscan import IMAGE, Scan, scan
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.tracker import OPT_OUT_VALUES, MessageTracker, link_destination
from pixeltrail.tracking.urls import browser_url

PIXEL_STYLE = (
    "display:block;width:1px;height:1px;border:0;margin:0;padding:0;"
    "max-height:1px;max-width:1px;overflow:hidden"
)
HONEYPOT_STYLE = (
    "display:none !important;mso-hide:all;font-size:0;line-height:0;max-height:0;overflow:hidden"
)


# Printable ASCII: a value of these bytes alone needs no decoding beyond `&amp;`, and no
# browser cleanup (no whitespace or control character to strip or remove).
_PRINTABLE = bytes(range(0x21, 0x7F))


@functools.lru_cache(maxsize=64)
def _reads_printable_as_ascii(charset: str) -> bool:
    try:
        return _PRINTABLE.decode(charset) == _PRINTABLE.decode("ascii")
    except (UnicodeDecodeError, LookupError):
        return False


def _value(raw: bytes, charset: str) -> str:
    """The URL a browser reads from an attribute value; "" if it cannot be read exactly."""
    if not raw.translate(None, _PRINTABLE) and _reads_printable_as_ascii(charset):
        # The common case, without the general path's copies (same result).
        if b"&" not in raw:
            return raw.decode("ascii")
        if raw.count(b"&") == raw.count(b"&amp;"):
            return raw.replace(b"&amp;", b"&").decode("ascii")
    return _read_value(raw, charset)


def _read_value(raw: bytes, charset: str) -> str:
    try:
        text = raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return ""  # a URL no one can read exactly is left alone
    return browser_url(decode_attribute(text))


# A campaign instruments the same template for every recipient: what a link value means
# (its destination, or None to leave it) is worked out once per value, not per message.
_CACHED_VALUE_BYTES = 2048


@functools.lru_cache(maxsize=4096)
def _destination(raw: bytes, charset: str, links: LinkBuilder) -> str | None:
    return link_destination(_value(raw, charset), links)


def _tracking_markup(tracker: MessageTracker, has_pixel: bool, has_honeypot: bool) -> bytes:
    parts = []
    if tracker.options.honeypot and not has_honeypot and not has_pixel:
        parts.append(
            f'<a href="{tracker.honeypot_url()}" aria-hidden="true" tabindex="-1" '
            f'style="{HONEYPOT_STYLE}"></a>'
        )
    if tracker.options.opens and not has_pixel:
        parts.append(
            f'<img src="{tracker.open_url()}" width="1" height="1" alt="" border="0" '
            f'style="{PIXEL_STYLE}" />'
        )
    return "".join(parts).encode("ascii")


def _rewrite(data: bytes, charset: str, tracker: MessageTracker, scanner: Scan) -> bytes:
    # <img> tags matter only to find a pixel of ours already there (instrumenting twice).
    open_prefix = tracker.links.open_prefix
    found, body_end = scanner(data, open_prefix.encode("ascii") in data)
    honeypot, clicks = tracker.options.honeypot, tracker.options.clicks
    has_pixel = has_honeypot = False
    edits: list[tuple[int, int, bytes]] = []
    for kind, start, stop, track_start, track_stop in found:
        if kind == IMAGE:
            if _value(data[start:stop], charset).startswith(open_prefix):
                has_pixel = True
            continue
        if (
            track_start >= 0
            and _value(data[track_start:track_stop], charset).strip().lower() in OPT_OUT_VALUES
        ):
            continue
        raw = data[start:stop]
        if honeypot and tracker.is_honeypot_url(_value(raw, charset)):
            has_honeypot = True
        if not clicks:
            continue
        if len(raw) <= _CACHED_VALUE_BYTES:
            destination = _destination(raw, charset, tracker.links)
        else:
            destination = link_destination(_value(raw, charset), tracker.links)
        if destination is not None:
            edits.append((start, stop, tracker.click_url(destination).encode("ascii")))
    if markup := _tracking_markup(tracker, has_pixel, has_honeypot):
        at = body_end if body_end >= 0 else len(data)
        edits.append((at, at, markup))
        edits.sort(key=lambda edit: edit[0])  # links may follow the last </body>
    if not edits:
        return data
    out, last = [], 0
    for start, stop, replacement in edits:
        out += [data[last:start], replacement]
        last = stop
    out.append(data[last:])
    return b"".join(out)


def instrument_html(
    data: bytes, tracker: MessageTracker, charset: str | None = None, scanner: Scan = scan
) -> bytes:
    """The HTML with its links tracked and the pixel inserted, in its own charset.

    `charset` is the one declared outside the document (a MIME Content-Type); without
    it the document's BOM or <meta> decides. Raises UnsupportedCharset when the text
    cannot be rewritten byte-exactly; callers then leave it as it is. `scanner` is the
    compiled scan unless a test asks for the Python reference.
    """
    charset = charset or sniff_html_charset(data)
    return through_ascii_view(data, charset, lambda raw, cs: _rewrite(raw, cs, tracker, scanner))
