"""API keys as the platform keeps them: listed without the key, last use to the hour, revoked."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from pixeltrail.platform.accounts.accounts import (
    LAST_USED_EVERY_MS,
    authenticate_key,
    create_account,
    create_api_key,
    list_api_keys,
    record_key_use,
    revoke_api_key,
)
from pixeltrail.platform.errors import Invalid, NotFound, Unauthorized
from pixeltrail.store.db import write_transaction

from ..dbs import Database


@pytest.fixture
def engine(database: Database) -> Engine:
    return database.engine


def test_keys_are_listed_used_hourly_and_revoked(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        account, first = create_account(conn, "Acme", "owner@acme.example")
        other, _ = create_account(conn, "Other", "owner@other.example")
        second = create_api_key(conn, account.id, "  CRM   sync ")
        keys = list_api_keys(conn, account.id)
    assert [k.name for k in keys] == ["CRM sync", "default"]
    assert all(k.shown.startswith("pt_") and k.shown.endswith("_…") for k in keys)
    assert all(first not in repr(k) and second not in repr(k) for k in keys)
    with engine.connect() as conn:
        use = authenticate_key(conn, second, now=1_000_000_000_000)
    assert (use.account_id, use.record_use) == (account.id, True)
    with write_transaction(engine) as conn:
        record_key_use(conn, use.key_id, now=1_000_000_000_000)
    with engine.connect() as conn:
        within = authenticate_key(conn, second, now=1_000_000_000_000 + LAST_USED_EVERY_MS - 1)
        after = authenticate_key(conn, second, now=1_000_000_000_000 + LAST_USED_EVERY_MS)
        listed = {k.id: k for k in list_api_keys(conn, account.id)}
    assert (within.record_use, after.record_use) == (False, True)
    assert listed[use.key_id].last_used_at_ms == 1_000_000_000_000

    with write_transaction(engine) as conn, pytest.raises(NotFound):
        revoke_api_key(conn, other.id, use.key_id)
    with write_transaction(engine) as conn:
        revoked = revoke_api_key(conn, account.id, use.key_id)
    assert revoked.revoked_at_ms is not None
    with engine.connect() as conn, pytest.raises(Unauthorized, match="revoked"):
        authenticate_key(conn, second)
    with engine.connect() as conn:
        assert authenticate_key(conn, first).account_id == account.id
    with write_transaction(engine) as conn, pytest.raises(Invalid, match="give the key a name"):
        create_api_key(conn, account.id, "   ")
