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

from pixeltrail.platform.contacts.addresses import normalize_email
from pixeltrail.platform.errors import Conflict, Invalid, NotFound, Unauthorized
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.store.schema import accounts, api_keys, users

KEY_PREFIX = "pt_"
# A key's last use is written at most this often: a write per API request would be too many.
LAST_USED_EVERY_MS = 3600 * 1000
MAX_KEY_NAME = 200
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
    name = key_name(name)
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


@dataclass(frozen=True)
class KeyUse:
    """Who an API key authenticates, and whether its last use should be written now."""

    account_id: str
    key_id: str
    record_use: bool


def authenticate_key(conn: Connection, key: str, now: int | None = None) -> KeyUse:
    """The account an API key belongs to; Unauthorized for anything else (revoked keys too)."""
    parts = key.split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != KEY_PREFIX:
        raise Unauthorized("not a pixeltrail API key")
    row = conn.execute(
        select(
            api_keys.c.id, api_keys.c.account_id, api_keys.c.key_hash, api_keys.c.last_used_at_ms
        ).where(api_keys.c.prefix == parts[1], api_keys.c.revoked_at_ms.is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, _key_hash(key)):
        raise Unauthorized("unknown or revoked API key")
    now = now_ms() if now is None else now
    stale = row.last_used_at_ms is None or row.last_used_at_ms <= now - LAST_USED_EVERY_MS
    return KeyUse(str(row.account_id), str(row.id), stale)


def authenticate(conn: Connection, key: str) -> str:
    """The account id an API key belongs to; Unauthorized for anything else."""
    return authenticate_key(conn, key).account_id


def record_key_use(conn: Connection, key_id: str, now: int | None = None) -> None:
    """Note that a key was used (shown as "last used", to the hour)."""
    conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(last_used_at_ms=now_ms() if now is None else now)
    )


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: never the key itself, only the prefix that names it."""

    id: str
    name: str
    prefix: str
    created_at_ms: int
    last_used_at_ms: int | None
    revoked_at_ms: int | None

    @property
    def shown(self) -> str:
        return f"{KEY_PREFIX}{self.prefix}_…"


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        row.id, row.name, row.prefix, row.created_at_ms, row.last_used_at_ms, row.revoked_at_ms
    )


def key_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("give the key a name, such as the program that will use it", "name")
    name = " ".join(value.split())
    if len(name) > MAX_KEY_NAME:
        raise Invalid(f"a key name has at most {MAX_KEY_NAME} characters", "name")
    return name


def list_api_keys(conn: Connection, account_id: str) -> list[ApiKey]:
    """The account's keys, newest first, revoked ones included (their record stays)."""
    rows = conn.execute(
        select(api_keys)
        .where(api_keys.c.account_id == account_id)
        .order_by(api_keys.c.created_at_ms.desc(), api_keys.c.id.desc())
    )
    return [_api_key(row) for row in rows]


def revoke_api_key(conn: Connection, account_id: str, key_id: str) -> ApiKey:
    """Stop a key working at once; NotFound for another account's key."""
    row = conn.execute(
        select(api_keys).where(api_keys.c.id == key_id, api_keys.c.account_id == account_id)
    ).first()
    if row is None:
        raise NotFound("no such API key", "id")
    if row.revoked_at_ms is None:
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at_ms=now_ms()))
    return _api_key(conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one())


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


class NoAccountYet(NotFound):
    """No account is named and the instance has none."""


class SeveralAccounts(Conflict):
    """No account is named and the instance has several: which one is meant is unknown."""


def acting_account(conn: Connection, account_id: str | None) -> str:
    """The id of the account named (NotFound if it does not exist), or with none named the
    instance's only account (NoAccountYet when there is none, SeveralAccounts for several)."""
    if account_id is not None:
        if conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
            raise NotFound(f"no account {account_id}")
        return account_id
    ids = [str(found) for found in conn.execute(select(accounts.c.id).limit(2)).scalars()]
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise NoAccountYet("no account yet")
    raise SeveralAccounts("this instance has several accounts")


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
