"""Opaque random ids with a prefix naming the kind of thing: acct_, key_, dom_, mbx_, ct_, cmp_."""

from __future__ import annotations

import base64
import secrets
import time


def new_id(prefix: str) -> str:
    """`prefix_` then 16 random base32 characters (80 bits): unguessable, never sequential."""
    return f"{prefix}_{base64.b32encode(secrets.token_bytes(10)).decode().lower()}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000
