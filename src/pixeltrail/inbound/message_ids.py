"""Message-IDs found in headers (In-Reply-To, References), and ours among them."""

from __future__ import annotations

import re

from pixeltrail.tracking.tokens import message_id_error

# A msg-id is "<" id-left "@" id-right ">" (RFC 5322 3.6.4); real mail also carries ids without
# brackets or with stray spaces, so take anything bracketed, then bare words holding an "@".
_BRACKETED = re.compile(r"<([^<>\s]{1,250})>")
_BARE = re.compile(r"(?<![<\w.@-])([^<>\s,;\"()]{1,250}@[^<>\s,;\"()]{1,250})")
_MAX_IDS = 100


def parse_message_ids(value: str | None) -> tuple[str, ...]:
    """The message ids in a header value, in order, each once, without angle brackets (at most
    100: a References header of a long thread holds every ancestor, the newest last)."""
    if not value:
        return ()
    found = _BRACKETED.findall(value) or _BARE.findall(value)
    unique = tuple(dict.fromkeys(found))
    return unique[-_MAX_IDS:]


def our_message_id(message_id: str) -> str | None:
    """Our 16-character message id inside a Message-ID we sent (`<id@sender-domain>`, brackets
    optional), or None when it is no Message-ID of ours."""
    value = message_id.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    local, at, domain = value.rpartition("@")
    if not at or not domain or message_id_error(local) is not None:
        return None
    return local
