"""/contacts (list, add, change, import, export) and /suppressions: thin over the platform.

POST /contacts/import takes the CSV file itself as the body (Content-Type text/csv; a
`charset` parameter names its character set, such as windows-1252, never a transform such as
rot13 or base64; else UTF-8 or a BOM decides) and, optionally, a `mapping` query parameter:
a JSON object of column names to fields, such as {"Email Address": "email", "Org":
"company", "Plan": "fields.plan", "Notes": "ignore"}; "#3" names the third column, for a
header that repeats a name.
The file is checked before the write lock is taken, then saved in one transaction.
"""

from __future__ import annotations

import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from pixeltrail.platform.contacts.contacts import (
    create_contact,
    delete_contact,
    get_contact,
    list_contacts,
    update_contact,
)
from pixeltrail.platform.contacts.csv_export import export_contacts_csv
from pixeltrail.platform.contacts.csv_import import check_contacts_csv
from pixeltrail.platform.contacts.imports import ImportResult, save_contacts
from pixeltrail.platform.contacts.suppressions import list_suppressions, suppress, unsuppress
from pixeltrail.platform.errors import Invalid, PlatformError
from pixeltrail.store.db import write_transaction
from pixeltrail.web.api.deps import account_id, connection, engine_of

router = APIRouter(tags=["contacts"])

# deps.Conn uses FastAPI's default "request" scope, whose exit (the commit) runs after the
# response is sent: a client acting on a 201 at once could miss the row, and a failed commit
# would follow a success answer. Here the transaction ends before the answer goes out.
Conn = Annotated[Connection, Depends(connection, scope="function")]


def _account(request: Request, conn: Conn) -> str:
    return account_id(request, conn)


AccountId = Annotated[str, Depends(_account)]

CSV_TYPES = {
    "text/csv",
    "text/plain",
    "text/tab-separated-values",
    "application/csv",
    "application/vnd.ms-excel",
    "application/octet-stream",
}


class UnsupportedMediaType(PlatformError):
    status = 415
    code = "unsupported_media_type"


class ContactOut(BaseModel):
    id: str
    email: str
    first_name: str
    last_name: str
    company: str
    fields: dict[str, str]
    suppressed: str | None
    do_not_track: bool
    created_at: str
    updated_at: str


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    fields: dict[str, str] | None = None


class ContactPatch(BaseModel):
    """Only what is sent changes; in `fields`, null removes that field."""

    model_config = ConfigDict(extra="forbid", strict=True)

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    fields: dict[str, str | None] | None = None
    do_not_track: bool | None = None


class Rejection(BaseModel):
    line: int
    reason: str


class DuplicateRow(BaseModel):
    line: int
    email: str
    first_line: int
    reason: str


class ImportOut(BaseModel):
    """read = created + updated + rejected + duplicates (the first row of an address wins)."""

    read: int
    created: int
    updated: int
    rejected: list[Rejection]
    duplicates: list[DuplicateRow]


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: str
    reason: str = "manual"


class SuppressionOut(BaseModel):
    email: str
    reason: str
    created_at: str


class SuppressionPage(BaseModel):
    items: list[SuppressionOut]
    next_cursor: str | None


@router.get("/contacts", response_model=ContactPage)
def read_contacts(
    conn: Conn,
    account: AccountId,
    cursor: str | None = None,
    limit: int | None = None,
    q: str | None = None,
) -> dict[str, Any]:
    items, next_cursor = list_contacts(conn, account, cursor, limit, search=q)
    return {"items": [item.as_record() for item in items], "next_cursor": next_cursor}


@router.post("/contacts", response_model=ContactOut, status_code=201)
def add_contact(body: ContactIn, conn: Conn, account: AccountId, response: Response) -> Any:
    """Add a contact; an address the account already has is merged (200) instead."""
    contact, created = create_contact(conn, account, **body.model_dump())
    response.status_code = 201 if created else 200
    return contact.as_record()


def _upload_account(request: Request) -> str:
    # Not the request-wide write transaction: the upload is read and checked before any lock.
    with engine_of(request).begin() as conn:
        return account_id(request, conn)


def _mapping(raw: str | None) -> dict[str, str]:
    if raw is None or not raw.strip():
        return {}
    try:
        mapping = json.loads(raw)
    except ValueError:
        mapping = None
    if not isinstance(mapping, dict):
        raise Invalid(
            'mapping is a JSON object of column names to fields, such as {"Org": "company"}',
            "mapping",
        )
    return mapping


def _import(
    engine: Engine, account: str, data: bytes, mapping: dict[str, str], encoding: str | None
) -> ImportResult:
    checked = check_contacts_csv(data, mapping, encoding)
    with write_transaction(engine) as conn:
        return save_contacts(conn, account, checked)


@router.post(
    "/contacts/import",
    response_model=ImportOut,
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def import_contacts(
    request: Request,
    account: Annotated[str, Depends(_upload_account)],
    mapping: str | None = None,
) -> dict[str, Any]:
    """Import a CSV file (the body): rows read, created, updated, each rejected row with its
    reason, and each row left out because an earlier row has its address (the first wins)."""
    media, *params = request.headers.get("content-type", "text/csv").split(";")
    if media.strip().lower() not in CSV_TYPES:
        raise UnsupportedMediaType(
            "send the CSV file itself as the body, with Content-Type: text/csv", "content-type"
        )
    charsets = [
        p.split("=", 1)[1].strip(' "') for p in params if p.strip().lower().startswith("charset=")
    ]
    columns = _mapping(mapping)
    data = await request.body()
    engine = engine_of(request)
    result = await run_in_threadpool(
        _import, engine, account, data, columns, charsets[0] if charsets else None
    )
    return result.as_record()


@router.get(
    "/contacts/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export_contacts(conn: Conn, account: AccountId) -> Response:
    """Every contact as CSV, cells escaped so that none runs as a spreadsheet formula."""
    out = io.StringIO()
    export_contacts_csv(conn, account, out)
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
    )


@router.get("/contacts/{contact_id}", response_model=ContactOut)
def read_contact(contact_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    return get_contact(conn, account, contact_id).as_record()


@router.patch("/contacts/{contact_id}", response_model=ContactOut)
def change_contact(
    contact_id: str, body: ContactPatch, conn: Conn, account: AccountId
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return update_contact(conn, account, contact_id, changes).as_record()


@router.delete("/contacts/{contact_id}", status_code=204)
def remove_contact(contact_id: str, conn: Conn, account: AccountId) -> Response:
    delete_contact(conn, account, contact_id)
    return Response(status_code=204)


@router.get("/suppressions", response_model=SuppressionPage, tags=["suppressions"])
def read_suppressions(
    conn: Conn, account: AccountId, cursor: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    items, next_cursor = list_suppressions(conn, account, cursor, limit)
    return {"items": [item.as_record() for item in items], "next_cursor": next_cursor}


@router.post("/suppressions", response_model=SuppressionOut, status_code=201, tags=["suppressions"])
def add_suppression(
    body: SuppressionIn, conn: Conn, account: AccountId, response: Response
) -> dict[str, Any]:
    """Never write to this address again (201), or it was already listed (200)."""
    found, added = suppress(conn, account, body.email, body.reason)
    response.status_code = 201 if added else 200
    return found.as_record()


@router.delete("/suppressions/{email}", status_code=204, tags=["suppressions"])
def remove_suppression(email: str, conn: Conn, account: AccountId) -> Response:
    """Take a bounced or manual entry off the list; an unsubscribe stays (409)."""
    unsuppress(conn, account, email)
    return Response(status_code=204)
