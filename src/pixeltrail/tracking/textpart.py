"""Instrumenting plain text: http(s) URLs in the text become tracking links, nothing else moves."""

from __future__ import annotations

import functools
import re

from pixeltrail.tracking.charsets import DEFAULT_CHARSET, through_ascii_view
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.tracker import MessageTracker, link_destination

# A URL runs to whitespace, a quote or an angle bracket. Bytes outside printable ASCII
# end it too: the rule below then leaves such a URL alone.
_URL = re.compile(rb"(?<![A-Za-z0-9+.\-])[Hh][Tt][Tt][Pp][Ss]?://[!#-;=?-~]++")
_TRAILING = b".,;:!?'\"*_"
_PAIRS = {ord(")"): ord("("), ord("]"): ord("["), ord("}"): ord("{")}


def _trim(url: bytes) -> bytes:
    """Drop punctuation that ends a sentence rather than the URL, and unbalanced closers."""
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _PAIRS and url.count(last) > url.count(_PAIRS[last])):
            url = url[:-1]
        else:
            break
    return url


# A campaign's text parts carry the same few URLs in every message: what each means (its
# destination, or None to leave it) is worked out once, as for the HTML part's links.
_CACHED_URL_BYTES = 2048


@functools.lru_cache(maxsize=4096)
def _destination(url: bytes, links: LinkBuilder) -> str | None:
    return link_destination(url.decode("ascii"), links)


def _rewrite(data: bytes, tracker: MessageTracker) -> bytes:
    out, last = [], 0
    for m in _URL.finditer(data):
        url = _trim(m.group(0))
        end = m.start() + len(url)
        if m.end() < len(data) and data[m.end()] >= 0x80 and end == m.end():
            # Glued to non-ASCII text: a mail client might link more than we would, and
            # a tracking link with text stuck to it would break. Leave it.
            continue
        if len(url) <= _CACHED_URL_BYTES:
            destination = _destination(url, tracker.links)
        else:
            destination = tracker.destination_for(url.decode("ascii"))
        if destination is None:
            continue
        out += [data[last : m.start()], tracker.click_url(destination).encode("ascii")]
        last = end
    if not out:
        return data
    out.append(data[last:])
    return b"".join(out)


def instrument_text(data: bytes, tracker: MessageTracker, charset: str | None = None) -> bytes:
    """The text with its http(s) URLs tracked (when text links and clicks are on)."""
    if not (tracker.options.clicks and tracker.options.text_links):
        return data
    return through_ascii_view(
        data, charset or DEFAULT_CHARSET, lambda raw, _cs: _rewrite(raw, tracker)
    )
