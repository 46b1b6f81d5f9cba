"""Alembic environment: runs the revisions in one transaction, one process at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy import Connection, text

from pixeltrail.config import Settings
from pixeltrail.store.db import SQLITE_BEGIN, make_engine
from pixeltrail.store.schema import metadata

# Any fixed 64-bit number, the same in every pixeltrail process ("pixeltra" in ASCII).
MIGRATION_LOCK_KEY = 0x70697865_6C747261


def _run(conn: Connection) -> None:
    # Serialise concurrent upgrades: the second process waits for the lock, then finds the
    # schema at head and does nothing. SQLite has one writer: BEGIN IMMEDIATE takes it.
    conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    with _sqlite_foreign_keys_off(conn), conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.configure(
            connection=conn,
            target_metadata=metadata,
            render_as_batch=conn.dialect.name == "sqlite",
        )
        context.run_migrations()
        if conn.dialect.name == "sqlite":
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the upgrade leaves rows pointing at nothing: {broken[:5]}")


@contextmanager
def _sqlite_foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite: batch mode rebuilds a table (drops it, renames a copy), which foreign keys that
    point at it refuse. The pragma changes only outside a transaction: off for the whole
    upgrade, the keys checked before it commits, on again afterwards (the connection is
    pooled)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys = ON")


def _url() -> str:
    # From the alembic command line: sqlalchemy.url if the ini file has one, else the setting.
    return context.config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url


def _run_online() -> None:
    conn = context.config.attributes.get("connection")
    if conn is not None:  # pixeltrail.store.db.upgrade passes its connection
        _run(conn)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as own:
            _run(own)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    _run_online()
