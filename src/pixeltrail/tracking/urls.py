"""What counts as a trackable destination, read the way a browser reads an href."""

from __future__ import annotations

import re

MAX_DESTINATION_BYTES = 4096

# WHATWG URL parsing: leading/trailing C0 controls and spaces are stripped,
# and ASCII tab/LF/CR are removed wherever they occur.
_EDGE_JUNK = "".join(chr(c) for c in range(0x21))
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def browser_url(value: str) -> str:
    """The URL a browser would open for this (already entity-decoded) attribute value."""
    return _TAB_NEWLINE.sub("", value.strip(_EDGE_JUNK))


def scheme_of(url: str) -> str | None:
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else None


# The shape of nearly every real link, accepted without the slower checks below.
_PLAIN_HTTP = re.compile(
    r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:[/?#][^\x00-\x1f\x7f\\]*)?"
)


def http_destination_error(url: str) -> str | None:
    """Why this URL may not be signed as a redirect destination, or None when it may.

    Only absolute http(s) URLs with a host are accepted: anything else could make a
    tracking link into a `javascript:` link or a redirect that resolves against the
    tracking host itself.
    """
    if len(url) <= MAX_DESTINATION_BYTES // 4 and url.isascii() and _PLAIN_HTTP.fullmatch(url):
        return None
    if len(url.encode("utf-8", "surrogatepass")) > MAX_DESTINATION_BYTES:
        return f"destination is longer than {MAX_DESTINATION_BYTES} bytes"
    if scheme_of(url) not in {"http", "https"}:
        return "destination is not an http(s) URL"
    if _CONTROL.search(url):
        return "destination contains control characters"
    rest = url.split(":", 1)[1]
    if not rest.startswith("//"):
        return "destination has no //host part"
    authority = re.split(r"[/?#\\]", rest[2:], maxsplit=1)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        host = host.partition("]")[0] + "]" if "]" in host else ""
    else:
        host = host.partition(":")[0]
    if not host.strip("[]"):
        return "destination has an empty host"
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        return "destination is not valid Unicode"
    return None
