"""Accounts, their users and API keys, and account settings."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zoneinfo
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from pixeltrail.platform.addresses import normalize_email
from pixeltrail.platform.errors import Conflict, Invalid, NotFound, Unauthorized
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.store.schema import accounts, api_keys, users

KEY_PREFIX = "pt_"
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    timezone: str
    default_track_opens: bool
    anonymize_ips: bool
    retention_days: int | None

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "timezone": self.timezone,
            "default_track_opens": self.default_track_opens,
            "anonymize_ips": self.anonymize_ips,
            "retention_days": self.retention_days,
        }


def check_timezone(name: str, field: str = "timezone") -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"unknown time zone {name!r} (use an IANA name like Europe/Paris)", field
        ) from None
    return name


def _key_hash(key: str) -> str:
    # API keys carry 192 random bits: a plain SHA-256 is enough, and fast to check.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(conn: Connection, account_id: str, name: str = "default") -> str:
    """A new API key for the account; this is the only time it is ever seen."""
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    conn.execute(
        insert(api_keys).values(
            id=new_id("key"),
            account_id=account_id,
            name=name,
            prefix=prefix,
            key_hash=_key_hash(key),
            created_at_ms=now_ms(),
        )
    )
    return key


def authenticate(conn: Connection, key: str) -> str:
    """The account id an API key belongs to; Unauthorized for anything else."""
    parts = key.split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != KEY_PREFIX:
        raise Unauthorized("not a pixeltrail API key")
    row = conn.execute(
        select(api_keys.c.id, api_keys.c.account_id, api_keys.c.key_hash).where(
            api_keys.c.prefix == parts[1], api_keys.c.revoked_at_ms.is_(None)
        )
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, _key_hash(key)):
        raise Unauthorized("unknown or revoked API key")
    return str(row.account_id)


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise Invalid("a password has at least 8 characters", "password")
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_account(
    conn: Connection,
    name: str,
    owner_email: str,
    password: str | None = None,
    timezone: str = "UTC",
) -> tuple[Account, str]:
    """A new account with its owner and a first API key (returned, shown once)."""
    name = name.strip()
    if not name:
        raise Invalid("an account needs a name", "name")
    email = normalize_email(owner_email, "owner_email")
    check_timezone(timezone)
    if conn.execute(select(users.c.id).where(users.c.email == email)).first() is not None:
        raise Conflict(f"{email} already has an account", "owner_email")
    account_id = new_id("acct")
    created = now_ms()
    conn.execute(
        insert(accounts).values(
            id=account_id,
            name=name[:200],
            timezone=timezone,
            default_track_opens=True,
            anonymize_ips=False,
            retention_days=None,
            created_at_ms=created,
        )
    )
    conn.execute(
        insert(users).values(
            id=new_id("usr"),
            account_id=account_id,
            email=email,
            password_hash=hash_password(password) if password is not None else None,
            role="owner",
            created_at_ms=created,
        )
    )
    key = create_api_key(conn, account_id)
    return get_account(conn, account_id), key


def get_account(conn: Connection, account_id: str) -> Account:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
    if row is None:
        raise NotFound("no such account")
    return Account(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        default_track_opens=row.default_track_opens,
        anonymize_ips=row.anonymize_ips,
        retention_days=row.retention_days,
    )


def update_account(conn: Connection, account_id: str, changes: dict[str, Any]) -> Account:
    """Change account settings; each value is checked, unknown names are refused."""
    allowed = {"name", "timezone", "default_track_opens", "anonymize_ips", "retention_days"}
    values: dict[str, Any] = {}
    for field, given in changes.items():
        value = given
        if field not in allowed:
            raise Invalid(f"unknown field {field!r}", field)
        if field == "name":
            if not isinstance(value, str) or not value.strip():
                raise Invalid("a name is a non-empty string", field)
            value = value.strip()[:200]
        elif field == "timezone":
            if not isinstance(value, str):
                raise Invalid("a time zone is a string", field)
            check_timezone(value)
        elif field in {"default_track_opens", "anonymize_ips"}:
            if not isinstance(value, bool):
                raise Invalid(f"{field} is true or false", field)
        elif value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 36500
        ):
            raise Invalid("retention_days is a number of days (1 to 36500) or null", field)
        values[field] = value
    if values:
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))
    return get_account(conn, account_id)
