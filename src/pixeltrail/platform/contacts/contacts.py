"""Contacts: who campaigns write to, one per email address per account, with custom fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    FromClause,
    Join,
    Label,
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from pixeltrail.platform.contacts.addresses import normalize_email
from pixeltrail.platform.errors import Conflict, Invalid, NotFound
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.platform.paging import page
from pixeltrail.store.schema import contacts, enrollments, messages, suppressions

MAX_NAME = 200
MAX_FIELDS = 50
MAX_KEY = 64
MAX_VALUE = 5000
MAX_SEARCH = 200
NAMES = ("first_name", "last_name", "company")
# Keys are identifiers so templates can write fields.<key>.
KEY = re.compile(r"[a-z][a-z0-9_]*")
# Unicode Cc (NUL and friends: PostgreSQL refuses NUL outright) and Cs (lone surrogates, which
# neither database can store as UTF-8). Custom values may hold line breaks and tabs (a paragraph
# for a template), names never do.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_VALUE_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class Contact:
    id: str
    email: str
    first_name: str
    last_name: str
    company: str
    fields: dict[str, str]
    suppressed: str | None
    created_at_ms: int
    updated_at_ms: int
    # Messages to this contact go out without pixel or link rewriting.
    do_not_track: bool = False

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "company": self.company,
            "fields": dict(self.fields),
            "suppressed": self.suppressed,
            "do_not_track": self.do_not_track,
            "created_at": iso_time(self.created_at_ms),
            "updated_at": iso_time(self.updated_at_ms),
        }


def iso_time(ms: int) -> str:
    """UTC epoch milliseconds as ISO 8601 with a Z: 2026-01-31T09:30:00.000Z."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _refuse_controls(value: str, field: str, pattern: re.Pattern[str]) -> None:
    found = pattern.search(value)
    if found:
        char = found.group()
        raise Invalid(f"{field} contains a control character (U+{ord(char):04X})", field)


def clean_name(value: Any, field: str) -> str:
    """A first name, last name or company: one line, inner whitespace collapsed, 200 at most.

    Names end up in headers (To: First Last <...>): line breaks are never kept.
    """
    if not isinstance(value, str):
        raise Invalid(f"{field} is a string", field)
    cleaned = " ".join(value.split())
    _refuse_controls(cleaned, field, _CONTROLS)
    if len(cleaned) > MAX_NAME:
        raise Invalid(f"{field} is longer than {MAX_NAME} characters", field)
    return cleaned


def check_key(key: Any, field: str = "fields") -> str:
    if not isinstance(key, str) or len(key) > MAX_KEY or not KEY.fullmatch(key):
        raise Invalid(
            f"custom field name {str(key)[:80]!r} is not an identifier: lowercase letters, "
            f"digits and _, starting with a letter, {MAX_KEY} characters at most",
            field,
        )
    return key


def clean_value(value: Any, key: str) -> str:
    field = f"fields.{key}"
    if not isinstance(value, str):
        raise Invalid(f"{field} is a string", field)
    cleaned = value.strip()
    _refuse_controls(cleaned, field, _VALUE_CONTROLS)
    if len(cleaned) > MAX_VALUE:
        raise Invalid(f"{field} is longer than {MAX_VALUE} characters", field)
    return cleaned


def merge_fields(current: Mapping[str, str], changes: Mapping[str, Any]) -> dict[str, str]:
    """`current` with `changes` applied: a value sets, None (JSON null) removes the field."""
    if not isinstance(changes, Mapping):
        raise Invalid("fields is an object of names to strings", "fields")
    merged = dict(current)
    for key, value in changes.items():
        check_key(key)
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = clean_value(value, key)
    check_field_count(merged)
    return merged


def check_field_count(fields: Mapping[str, str]) -> None:
    if len(fields) > MAX_FIELDS:
        raise Invalid(
            f"a contact has at most {MAX_FIELDS} custom fields (this one would have {len(fields)})",
            "fields",
        )


# Why a contact's address is suppressed (None when it is not), selected over `with_suppression`.
SUPPRESSED: Label[str | None] = suppressions.c.reason.label("suppressed")


def with_suppression(source: FromClause) -> Join:
    """`source` (contacts, or a join holding it) with each contact's suppression, if any.

    Suppressions are by address within an account, so a contact is suppressed when the
    account's suppression list holds its email, whether or not it was a contact then.
    """
    return source.outerjoin(
        suppressions,
        and_(
            suppressions.c.account_id == contacts.c.account_id,
            suppressions.c.email == contacts.c.email,
        ),
    )


def _query() -> Select[Any]:
    return select(contacts, SUPPRESSED).select_from(with_suppression(contacts))


def _contact(row: Any) -> Contact:
    return Contact(
        id=row.id,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        company=row.company,
        fields=dict(row.fields or {}),
        suppressed=row.suppressed,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        do_not_track=bool(row.do_not_track),
    )


def get_contact(conn: Connection, account_id: str, contact_id: str) -> Contact:
    """The contact; NotFound for a missing id and for another account's, alike."""
    row = conn.execute(
        _query().where(contacts.c.account_id == account_id, contacts.c.id == contact_id)
    ).first()
    if row is None:
        raise NotFound("no such contact")
    return _contact(row)


def find_contact(conn: Connection, account_id: str, email: str) -> Contact | None:
    row = conn.execute(
        _query().where(contacts.c.account_id == account_id, contacts.c.email == email)
    ).first()
    return None if row is None else _contact(row)


def create_contact(
    conn: Connection,
    account_id: str,
    email: str,
    first_name: str | None = None,
    last_name: str | None = None,
    company: str | None = None,
    fields: Mapping[str, Any] | None = None,
) -> tuple[Contact, bool]:
    """A new contact, or the account's contact with this address updated; True if new.

    On a merge, the values given replace the stored ones, the others (None) stay; custom
    fields merge key by key (a null value removes the field).
    """
    address = normalize_email(email)
    given = {"first_name": first_name, "last_name": last_name, "company": company}
    names = {field: clean_name(value, field) for field, value in given.items() if value is not None}
    existing = find_contact(conn, account_id, address)
    if existing is not None:
        changes: dict[str, Any] = dict(names)
        if fields is not None:
            changes["fields"] = fields
        return update_contact(conn, account_id, existing.id, changes), False
    contact_id, now = new_id("ct"), now_ms()
    values = {"first_name": "", "last_name": "", "company": "", **names}
    try:
        conn.execute(
            insert(contacts).values(
                id=contact_id,
                account_id=account_id,
                email=address,
                fields=merge_fields({}, fields or {}),
                created_at_ms=now,
                updated_at_ms=now,
                **values,
            )
        )
    except IntegrityError:
        raise Conflict(f"{address} was added at the same time; try again", "email") from None
    return get_contact(conn, account_id, contact_id), True


def update_contact(
    conn: Connection, account_id: str, contact_id: str, changes: Mapping[str, Any]
) -> Contact:
    """Change some of a contact's values; unknown names are refused, `fields` merges."""
    current = get_contact(conn, account_id, contact_id)
    values: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "email":
            address = normalize_email(value)
            other = find_contact(conn, account_id, address)
            if other is not None and other.id != contact_id:
                raise Conflict(f"another contact already has the address {address}", field)
            values[field] = address
        elif field in NAMES:
            values[field] = clean_name("" if value is None else value, field)
        elif field == "fields":
            values[field] = merge_fields(current.fields, {} if value is None else value)
        elif field == "do_not_track":
            if not isinstance(value, bool):
                raise Invalid("do_not_track is true or false", field)
            values[field] = value
        else:
            raise Invalid(f"unknown field {field!r}", field)
    if values:
        values["updated_at_ms"] = now_ms()
        conn.execute(
            update(contacts)
            .where(contacts.c.account_id == account_id, contacts.c.id == contact_id)
            .values(**values)
        )
    return get_contact(conn, account_id, contact_id)


def delete_contact(conn: Connection, account_id: str, contact_id: str) -> None:
    """Remove a contact; its suppression (by address) stays, so it is never written to again."""
    get_contact(conn, account_id, contact_id)
    used = select(
        or_(
            exists().where(enrollments.c.contact_id == contact_id),
            exists().where(messages.c.contact_id == contact_id),
        )
    )
    if conn.execute(used).scalar():
        raise Conflict(
            "this contact is in a campaign or has been written to; suppress it instead", "id"
        )
    conn.execute(
        delete(contacts).where(contacts.c.account_id == account_id, contacts.c.id == contact_id)
    )


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _folder(conn: Connection) -> Callable[[Column[Any]], ColumnElement[Any]]:
    """lower() for case-insensitive search, Unicode-aware on both databases.

    SQLite's own lower() only knows ASCII (it leaves "É" alone), so on SQLite the connection
    gets Python's str.lower as a function; PostgreSQL's lower() follows its (UTF-8) locale.
    """
    if conn.dialect.name != "sqlite":
        return func.lower
    conn.connection.driver_connection.create_function(  # type: ignore[union-attr]
        "pixeltrail_lower", 1, _lower, deterministic=True
    )
    return func.pixeltrail_lower


def list_contacts(
    conn: Connection,
    account_id: str,
    cursor: str | None = None,
    limit: int | None = None,
    search: str | None = None,
) -> tuple[list[Contact], str | None]:
    """A page of the account's contacts, oldest first, and the cursor of the next page.

    `search` keeps contacts where every word of it is found (case-insensitively) in the
    email, first name, last name or company: "ada lovelace" finds Ada Lovelace.
    """
    query = _query().where(contacts.c.account_id == account_id)
    if search is not None and search.strip():
        if len(search) > MAX_SEARCH:
            raise Invalid(f"a search is {MAX_SEARCH} characters at most", "q")
        fold = _folder(conn)
        columns = (
            contacts.c.email,
            contacts.c.first_name,
            contacts.c.last_name,
            contacts.c.company,
        )
        for word in search.lower().split():
            query = query.where(
                or_(*(fold(column).contains(word, autoescape=True) for column in columns))
            )
    rows, next_cursor = page(conn, query, contacts, cursor, limit)
    return [_contact(row) for row in rows], next_cursor
