"""Contacts' display names by id, for pages that list people (a report's contacts)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from pixeltrail.store.schema import contacts


def contact_names(conn: Connection, account_id: str, contact_ids: Sequence[str]) -> dict[str, str]:
    """First and last name of each of these contacts of the account ('' when neither is set)."""
    if not contact_ids:
        return {}
    query = select(contacts.c.id, contacts.c.first_name, contacts.c.last_name).where(
        contacts.c.account_id == account_id, contacts.c.id.in_(list(contact_ids))
    )
    return {row.id: f"{row.first_name} {row.last_name}".strip() for row in conn.execute(query)}
