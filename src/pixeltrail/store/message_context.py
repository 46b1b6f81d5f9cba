"""What the flusher needs to know about the messages hits belong to (if pixeltrail sent them)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, select

from pixeltrail.store.schema import accounts, messages

_CHUNK = 500


@dataclass(frozen=True)
class MessageContext:
    account_id: str
    sent_at_ms: int | None
    anonymize_ips: bool
    link_count: int | None
    destination_count: int | None


def message_contexts(conn: Connection, message_ids: Collection[str]) -> dict[str, MessageContext]:
    """Contexts of the messages this instance sent; ids it did not send are simply absent."""
    ids = list(message_ids)
    found: dict[str, MessageContext] = {}
    for start in range(0, len(ids), _CHUNK):
        query = (
            select(
                messages.c.id,
                messages.c.account_id,
                messages.c.sent_at_ms,
                messages.c.link_count,
                messages.c.destination_count,
                accounts.c.anonymize_ips,
            )
            .join(accounts, accounts.c.id == messages.c.account_id)
            .where(messages.c.id.in_(ids[start : start + _CHUNK]))
        )
        for row in conn.execute(query):
            found[row.id] = MessageContext(
                row.account_id,
                row.sent_at_ms,
                row.anonymize_ips,
                row.link_count,
                row.destination_count,
            )
    return found
