"""The suppression list: addresses an account never writes to (unsubscribed, bounced, manual).

Suppressions are by address, not by contact: deleting a contact and importing it again does
not make an unsubscribed address sendable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pixeltrail.platform.contacts.addresses import normalize_email
from pixeltrail.platform.contacts.contacts import iso_time
from pixeltrail.platform.errors import Conflict, Invalid, NotFound
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.paging import check_limit, decode_cursor, encode_cursor
from pixeltrail.store.schema import suppressions

# Strongest first: a stronger reason replaces a weaker one, never the other way round.
REASONS = ("unsubscribed", "bounced", "manual")
_CHUNK = 500


@dataclass(frozen=True)
class Suppression:
    email: str
    reason: str
    created_at_ms: int

    def as_record(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "reason": self.reason,
            "created_at": iso_time(self.created_at_ms),
        }


def check_reason(reason: Any) -> str:
    if reason not in REASONS:
        raise Invalid(f"reason is one of {', '.join(REASONS)}", "reason")
    return str(reason)


def _find(conn: Connection, account_id: str, email: str) -> Suppression | None:
    row = conn.execute(
        select(suppressions).where(
            suppressions.c.account_id == account_id, suppressions.c.email == email
        )
    ).first()
    return None if row is None else Suppression(row.email, row.reason, row.created_at_ms)


def suppress(
    conn: Connection, account_id: str, email: str, reason: str
) -> tuple[Suppression, bool]:
    """Add an address to the list (True if it was not there); a stronger reason replaces a
    weaker one (bounced replaces manual; unsubscribed replaces both), a weaker one changes
    nothing. Safe to call from several workers at once (a bounce and an unsubscribe)."""
    address = normalize_email(email)
    check_reason(reason)
    dialect = conn.dialect.name
    make = postgresql_insert if dialect == "postgresql" else sqlite_insert
    values = {
        "account_id": account_id,
        "email": address,
        "reason": reason,
        "created_at_ms": now_ms(),
    }
    statement = make(suppressions).values(**values).on_conflict_do_nothing()
    added = conn.execute(statement.returning(suppressions.c.email)).first() is not None
    found = _find(conn, account_id, address)
    assert found is not None  # inserted or already there, in this transaction
    if REASONS.index(reason) < REASONS.index(found.reason):
        conn.execute(
            update(suppressions)
            .where(suppressions.c.account_id == account_id, suppressions.c.email == address)
            .values(reason=reason)
        )
        found = Suppression(address, reason, found.created_at_ms)
    return found, added


def unsuppress(conn: Connection, account_id: str, email: str) -> None:
    """Take an address off the list. An unsubscribe is the recipient's decision: it stays."""
    address = normalize_email(email)
    found = _find(conn, account_id, address)
    if found is None:
        raise NotFound(f"{address} is not on the suppression list", "email")
    if found.reason == "unsubscribed":
        raise Conflict(
            f"{address} unsubscribed: only the recipient can change that, so it stays", "email"
        )
    conn.execute(
        delete(suppressions).where(
            suppressions.c.account_id == account_id, suppressions.c.email == address
        )
    )


def is_suppressed(conn: Connection, account_id: str, email: str) -> bool:
    return _find(conn, account_id, email.strip().lower()) is not None


def suppressed_emails(conn: Connection, account_id: str, emails: Iterable[str]) -> set[str]:
    """Those of `emails` that must not be written to (compared case-insensitively), as given."""
    by_key: dict[str, list[str]] = {}
    for email in emails:
        by_key.setdefault(email.strip().lower(), []).append(email)
    keys = list(by_key)
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = conn.execute(
            select(suppressions.c.email).where(
                suppressions.c.account_id == account_id, suppressions.c.email.in_(chunk)
            )
        )
        for row in rows:
            found.update(by_key[row.email])
    return found


def list_suppressions(
    conn: Connection, account_id: str, cursor: str | None = None, limit: int | None = None
) -> tuple[list[Suppression], str | None]:
    """A page of the list, oldest first; paged by (created_at_ms, email): the table has no id."""
    size = check_limit(limit)
    query = select(suppressions).where(suppressions.c.account_id == account_id)
    created, email = suppressions.c.created_at_ms, suppressions.c.email
    if cursor:
        after_ms, after_email = decode_cursor(cursor)
        query = query.where(or_(created > after_ms, and_(created == after_ms, email > after_email)))
    rows = conn.execute(query.order_by(created, email).limit(size + 1)).all()
    items = [Suppression(row.email, row.reason, row.created_at_ms) for row in rows[:size]]
    if len(rows) <= size:
        return items, None
    return items, encode_cursor(items[-1].created_at_ms, items[-1].email)
