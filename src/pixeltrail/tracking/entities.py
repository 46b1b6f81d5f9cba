"""Character references in attribute values, decoded exactly as an HTML parser does."""

from __future__ import annotations

import html
import re
from html.entities import html5

_LONGEST_NAME = max(len(name) for name in html5)
_REFERENCE = re.compile(r"&(#[xX][0-9A-Fa-f]+;?|#[0-9]+;?|[A-Za-z][A-Za-z0-9]*;?)")


def _replace(match: re.Match[str]) -> str:
    ref = match.group(1)
    if ref.startswith("#"):
        # Numeric references: the stdlib applies the spec's rules for 0, surrogates,
        # C1 controls and out-of-range code points.
        return html.unescape("&" + ref if ref.endswith(";") else "&" + ref + ";")
    # Named references: the longest known name wins, with or without ';'.
    for size in range(min(len(ref), _LONGEST_NAME), 0, -1):
        name = ref[:size]
        if name in html5:
            rest = ref[size:]
            following = rest[:1] or _next_char(match)
            # In an attribute, a legacy reference without ';' followed by '=' or an
            # alphanumeric is left as it is (`?a=1&copy=2` keeps its `&copy`).
            if not name.endswith(";") and (following == "=" or following.isalnum()):
                return match.group(0)
            return html5[name] + rest
    return match.group(0)


def _next_char(match: re.Match[str]) -> str:
    return match.string[match.end() : match.end() + 1]


def decode_attribute(value: str) -> str:
    """Decode character references in an attribute value once (`&amp;amp;` -> `&amp;`)."""
    if "&" not in value:
        return value
    plain = value.replace("&amp;", "&")
    if plain.count("&") == value.count("&amp;"):
        return plain  # only &amp; references: the common case in links
    return _REFERENCE.sub(_replace, value)
