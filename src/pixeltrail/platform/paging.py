"""Cursor paging for every list: stable under inserts, never by offset."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, Table, and_, or_

from pixeltrail.platform.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(created_at_ms: int, row_id: str) -> str:
    raw = json.dumps([created_at_ms, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, row_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise Invalid("this cursor is not one pixeltrail gave out", "cursor") from None
    if not isinstance(created, int) or not isinstance(row_id, str):
        raise Invalid("this cursor is not one pixeltrail gave out", "cursor")
    return created, row_id


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit is between 1 and {MAX_LIMIT}", "limit")
    return limit


def page(
    conn: Connection, query: Select[Any], table: Table, cursor: str | None, limit: int | None
) -> tuple[Sequence[Any], str | None]:
    """Rows of `query` (oldest first by created_at_ms, then id) after `cursor`, and the next one.

    `table` must have `created_at_ms` and `id` columns.
    """
    size = check_limit(limit)
    created, row_id = table.c.created_at_ms, table.c.id
    if cursor:
        after_ms, after_id = decode_cursor(cursor)
        query = query.where(or_(created > after_ms, and_(created == after_ms, row_id > after_id)))
    rows = conn.execute(query.order_by(created, row_id).limit(size + 1)).all()
    if len(rows) <= size:
        return rows, None
    last = rows[size - 1]
    return rows[:size], encode_cursor(last.created_at_ms, last.id)
