"""Turning a signed destination into a Location header a browser follows to the same place."""

from __future__ import annotations

import re
from urllib.parse import quote

# Everything printable in ASCII passes as it is (so %-escapes stay as authored); spaces,
# non-ASCII and anything else are percent-encoded as UTF-8, as a browser would send them.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
_AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#\\]*)(.*)$", re.DOTALL)


def _ascii_host(authority: str) -> str:
    userinfo, at, hostport = authority.rpartition("@")
    if hostport.isascii():
        return authority
    host, colon, port = (
        hostport.partition(":") if not hostport.startswith("[") else (hostport, "", "")
    )
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = quote(host, safe="")
    return f"{quote(userinfo, safe=_SAFE)}{at}{ascii_host}{colon}{port}"


def to_location(destination: str) -> str:
    if destination.isascii() and destination.isprintable() and " " not in destination:
        return destination  # only 0x21-0x7E: what quote() and the host would leave as is
    m = _AUTHORITY.match(destination)
    if m is None:
        return quote(destination, safe=_SAFE)
    scheme, authority, rest = m.groups()
    return scheme + _ascii_host(authority) + quote(rest, safe=_SAFE)
