"""Writing checked CSV contacts into an account: new ones created, existing ones merged.

The caller's transaction holds the whole import: any failure leaves no contact behind.
Checking (csv_import) needs no database, so a caller can do it before taking a write lock:

    checked = check_contacts_csv(data, mapping)
    with write_transaction(engine) as conn:
        result = save_contacts(conn, account_id, checked)

An existing contact takes the file's non-empty values; an empty cell never erases. It counts
as updated whether or not a value changed (it is only rewritten if one did). Of an address on
several rows only the first row is used (csv_import): the others are the result's duplicates,
so that the rows read are created + updated + rejected + duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from pixeltrail.platform.contacts.contacts import MAX_FIELDS
from pixeltrail.platform.contacts.csv_import import (
    CheckedFile,
    ContactRow,
    Duplicate,
    Progress,
    Rejected,
    check_contacts_csv,
)
from pixeltrail.platform.errors import Conflict
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.store.schema import contacts

# Emails per lookup and rows per executemany: well under SQLite's 32,766 bound parameters.
CHUNK = 1000
_NAMES = ("first_name", "last_name", "company")


@dataclass(frozen=True)
class ImportResult:
    read: int
    created: int
    updated: int
    rejected: list[Rejected]
    duplicates: list[Duplicate]

    def as_record(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "rejected": [item.as_record() for item in self.rejected],
            "duplicates": [item.as_record() for item in self.duplicates],
        }


_UPDATE = (
    update(contacts)
    .where(contacts.c.id == bindparam("b_id"))
    .values(
        first_name=bindparam("b_first_name"),
        last_name=bindparam("b_last_name"),
        company=bindparam("b_company"),
        fields=bindparam("b_fields", type_=contacts.c.fields.type),
        updated_at_ms=bindparam("b_updated_at_ms"),
    )
)


def _merged(existing: Any, row: ContactRow, now: int) -> dict[str, Any] | None:
    """The update for an existing contact, None when the file changes nothing."""
    fields = {**(existing.fields or {}), **row.fields}
    names = {name: row.names.get(name, getattr(existing, name)) for name in _NAMES}
    if fields == (existing.fields or {}) and all(
        names[name] == getattr(existing, name) for name in _NAMES
    ):
        return None
    return {
        "b_id": existing.id,
        **{f"b_{name}": value for name, value in names.items()},
        "b_fields": fields,
        "b_updated_at_ms": now,
    }


def save_contacts(
    conn: Connection, account_id: str, checked: CheckedFile, on_progress: Progress | None = None
) -> ImportResult:
    """Create or merge the file's contacts; `on_progress(done, total)` per chunk written."""
    created = updated = 0
    rejected = list(checked.rejected)
    total = len(checked.contacts)
    now = now_ms()
    for start in range(0, total, CHUNK):
        chunk = checked.contacts[start : start + CHUNK]
        found = conn.execute(
            select(
                contacts.c.id,
                contacts.c.email,
                *(contacts.c[name] for name in _NAMES),
                contacts.c.fields,
            ).where(
                contacts.c.account_id == account_id,
                contacts.c.email.in_([row.email for row in chunk]),
            )
        )
        existing = {row.email: row for row in found}
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for row in chunk:
            old = existing.get(row.email)
            if old is None:
                created += 1
                inserts.append(_new(account_id, row, now))
                continue
            if len({**(old.fields or {}), **row.fields}) > MAX_FIELDS:
                rejected.append(
                    Rejected(
                        row.line, f"the contact would have more than {MAX_FIELDS} custom fields"
                    )
                )
                continue
            updated += 1
            change = _merged(old, row, now)
            if change is not None:
                updates.append(change)
        _write(conn, inserts, updates)
        if on_progress is not None:
            on_progress(start + len(chunk), total)
    rejected.sort(key=lambda item: item.line)
    return ImportResult(checked.rows, created, updated, rejected, list(checked.duplicates))


def _new(account_id: str, row: ContactRow, now: int) -> dict[str, Any]:
    return {
        "id": new_id("ct"),
        "account_id": account_id,
        "email": row.email,
        **{name: row.names.get(name, "") for name in _NAMES},
        "fields": row.fields,
        "created_at_ms": now,
        "updated_at_ms": now,
    }


def _write(conn: Connection, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]) -> None:
    try:
        if inserts:
            conn.execute(insert(contacts), inserts)
    except IntegrityError:
        raise Conflict(
            "some of these contacts were added at the same time by someone else; import the "
            "file again (nothing was imported)"
        ) from None
    if updates:
        conn.execute(_UPDATE, updates)


def import_contacts_csv(
    conn: Connection,
    account_id: str,
    data: bytes,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
) -> ImportResult:
    """Check and save a CSV file in the caller's transaction (see the module's note)."""
    return save_contacts(conn, account_id, check_contacts_csv(data, mapping, encoding))
