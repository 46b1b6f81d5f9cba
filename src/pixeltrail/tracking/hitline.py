"""A tracking request's token check and spool line in one compiled call (_hitline.c).

`compiled_hit_line(signer)` gives `line(token, is_open, ip, user_agent, method, account)`: for
a valid token of that kind that a host serving `account` answers (`LinkClaims.answered_on`),
the hit's spool line (what `spool_line` writes, with a new event id from `new_event_id` and the
time now) and the click's destination (None for the honeypot link and for opens); None for
anything else, which the tracking routes then take through the reference (tokens.py and
hits.py), the path that says why a token is refused. In the HTTP process on
granian it took a click's CPU from 75 to 43 µs and an open's from 58 to 37 µs
(docs/benchmarks.md): far more than the 7 µs the Python it replaces costs in a loop, because
between the HTTP server's own work that Python runs with cold caches.

Without the compiled module (no C compiler or no OpenSSL headers when the package was built),
or with one built for another token layout than tokens.py's, every request takes the reference
path, and a warning says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pixeltrail.tracking.hits import new_event_id
from pixeltrail.tracking.tokens import (
    MAX_TOKEN_CHARS,
    SUBKEY_PURPOSE,
    TOKEN_LAYOUT,
    TokenSigner,
    checked_destination,
)

HitLine = Callable[[str, bool, str, str, str, bytes], "tuple[bytes, str | None] | None"]

log = logging.getLogger(__name__)


def compiled_hit_line(signer: TokenSigner) -> HitLine | None:
    """The compiled check for the tokens `signer` verifies, or None where it is missing."""
    try:
        from pixeltrail.tracking import _hitline  # noqa: PLC0415
    except ImportError as error:
        log.warning(
            "compiled token check not available (%s); tracking requests take the slower "
            "Python path",
            error,
        )
        return None
    keys = [(key.key_id, key.subkey(SUBKEY_PURPOSE)) for key in signer.keys]
    try:
        verifier = _hitline.Verifier(
            keys, TOKEN_LAYOUT, checked_destination, new_event_id, MAX_TOKEN_CHARS
        )
    except ValueError as error:  # built from an older tokens.py
        log.warning(
            "compiled token check not used (%s); tracking requests take the slower Python path",
            error,
        )
        return None
    return verifier.line
