"""Contacts out as CSV for spreadsheets, safe to open: no cell can run as a formula.

Values are stored exactly as given (an import keeps "=HYPERLINK(...)" as text); the escaping
happens here, on the way out, as OWASP's CSV injection guidance says: a cell that starts with
= + - @, a tab or a carriage return (or their full-width forms) gets a leading '. The file is
UTF-8 with a BOM, so Excel reads accents right, and re-imports as it is: fields.<name>
columns become those custom fields, the bookkeeping columns are left out.
"""

from __future__ import annotations

import csv
from typing import Any, TextIO

from sqlalchemy import Connection, select

from pixeltrail.platform.contacts.contacts import SUPPRESSED, iso_time, with_suppression
from pixeltrail.store.schema import contacts

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
HEAD = ["id", "email", "first_name", "last_name", "company"]
TAIL = ["suppressed", "created_at", "updated_at"]


def escape_cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


def export_contacts_csv(conn: Connection, account_id: str, out: TextIO) -> int:
    """Write the account's contacts (oldest first) to `out`; returns how many."""
    keys: set[str] = set()
    for (stored,) in conn.execute(
        select(contacts.c.fields).where(contacts.c.account_id == account_id)
    ):
        keys.update(stored or {})
    custom = sorted(keys)
    writer = csv.writer(out)
    out.write("\ufeff")
    writer.writerow([*HEAD, *(f"fields.{key}" for key in custom), *TAIL])
    count = 0
    rows = conn.execute(
        select(contacts, SUPPRESSED)
        .select_from(with_suppression(contacts))
        .where(contacts.c.account_id == account_id)
        .order_by(contacts.c.created_at_ms, contacts.c.id)
    )
    for row in rows:
        fields: dict[str, Any] = row.fields or {}
        cells = [row.id, row.email, row.first_name, row.last_name, row.company]
        cells += [fields.get(key, "") for key in custom]
        writer.writerow(
            [escape_cell(str(cell)) for cell in cells]
            + [row.suppressed or "", iso_time(row.created_at_ms), iso_time(row.updated_at_ms)]
        )
        count += 1
    return count
