"""Contacts tests reuse the API fixtures: a real server over SQLite and over PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from pixeltrail.store.schema import contacts
from pixeltrail.web.api.app import PREFIX

from ..api.conftest import Api, Tenant, api, database

# `api` and `database` are fixtures: importing them here is what makes pytest find them.
__all__ = ["CSV", "Api", "Tenant", "api", "contact_count", "database", "import_csv"]

CSV = {"content-type": "text/csv"}


def import_csv(tenant: Tenant, data: bytes | str, **params: str) -> tuple[int, Any]:
    """POST a CSV file to /contacts/import: (status, JSON body)."""
    body = data.encode() if isinstance(data, str) else data
    r = tenant.client.post(
        PREFIX + "/contacts/import",
        content=body,
        params=params or None,
        headers={**CSV, "Authorization": f"Bearer {tenant.api_key}"},
        # The fixture's client waits 30 s; a 100,000-row file on a busy machine may take longer.
        timeout=300,
    )
    return r.status_code, r.json()


def contact_count(server: Api, account_id: str | None = None) -> int:
    query = select(func.count()).select_from(contacts)
    if account_id is not None:
        query = query.where(contacts.c.account_id == account_id)
    with server.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
