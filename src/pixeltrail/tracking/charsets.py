"""Which charset a part is in, and a byte view of it in which HTML syntax is plain ASCII."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

DEFAULT_CHARSET = "utf-8"
_PROBE = "<a href=\"x\" data-y='z'>=/ \t\n\r\f!-[]{}%*|:#?&;</a>\n"
# Encodings that write ASCII as ASCII but switch state with escape sequences: a byte
# scan would read their multi-byte text as markup.
_STATEFUL = ("iso2022", "hz", "utf_7")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META_CHARSET = re.compile(
    rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE
)
_SNIFF_BYTES = 4096


class UnsupportedCharset(ValueError):
    """The part cannot be rewritten byte-exactly in its charset; it is left as it is."""


def codec_name(label: str | None) -> str | None:
    """Python's codec name for a charset label, or None if unknown."""
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None


def sniff_html_charset(data: bytes) -> str:
    """A BOM, else a <meta> charset near the top, else UTF-8."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    match = _META_CHARSET.search(data, 0, _SNIFF_BYTES)
    declared = codec_name(match.group(1).decode("ascii")) if match else None
    return declared or DEFAULT_CHARSET


def is_ascii_compatible(charset: str) -> bool:
    name = codec_name(charset) or DEFAULT_CHARSET
    if name.startswith(_STATEFUL):
        return False
    try:
        return _PROBE.encode(name) == _PROBE.encode("ascii")
    except (UnicodeError, LookupError):  # LookupError: a transform (rot13, base64), no charset
        return False


def through_ascii_view(data: bytes, charset: str, rewrite: Callable[[bytes, str], bytes]) -> bytes:
    """Apply a byte-level rewrite to `data` in `charset`.

    In an ASCII-compatible charset the rewrite sees the raw bytes, so undecodable bytes
    and text it does not touch pass through as they are. Other charsets (UTF-16,
    ISO-2022-JP, ...) are decoded, rewritten as UTF-8 and encoded back, but only when
    that round trip reproduces the input exactly; otherwise UnsupportedCharset.
    """
    if is_ascii_compatible(charset):
        return rewrite(data, charset)
    name = codec_name(charset) or charset
    try:
        text = data.decode(name)
        exact = text.encode(name) == data
    except (UnicodeError, LookupError):
        exact = False
    if not exact:
        raise UnsupportedCharset(f"{charset} text here does not survive a round trip")
    out = rewrite(text.encode("utf-8", "surrogatepass"), "utf-8")
    return out.decode("utf-8", "surrogatepass").encode(name)
