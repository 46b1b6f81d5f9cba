"""Engines for SQLite and PostgreSQL, configured the same way everywhere, and schema upgrades."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from pixeltrail.config import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
# Alembic runs env.py through module-global proxies (alembic.context, alembic.op): one
# upgrade at a time per process. Between processes the database's own lock serialises them.
_UPGRADE_LOCK = threading.Lock()

# Execution option read by the SQLite "begin" listener: how to BEGIN (DEFERRED or IMMEDIATE).
SQLITE_BEGIN = "pixeltrail_sqlite_begin"

_SQLITE_BUSY_TIMEOUT_S = 30.0
_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_TIMEOUT_S * 1000)}",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
# Plain postgresql:// would mean psycopg2, which is not installed: psycopg 3 is.
_POSTGRES_DRIVERS = {"postgresql", "postgresql+psycopg", "postgres"}


class StoreError(ValueError):
    """A database setting that cannot work; the message says why."""


def make_engine(url: str) -> Engine:
    """An engine for `url`: a SQLite file (WAL) or PostgreSQL through psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"database URL {url!r} is not a URL; use sqlite:///path/to/file.db "
            "or postgresql+psycopg://user@host/dbname"
        ) from None
    scheme = parsed.drivername
    if scheme in _SQLITE_DRIVERS:
        return _sqlite_engine(parsed)
    if scheme in _POSTGRES_DRIVERS:
        return create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
    raise StoreError(
        f"database URL scheme {scheme!r} is not supported; use sqlite:///path/to/file.db "
        "or postgresql+psycopg://user@host/dbname"
    )


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    if database and database != ":memory:" and not url.query.get("uri"):
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create {folder} for the SQLite database: {exc.strerror}"
            ) from None
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would not BEGIN before
        # DDL or SELECT): the "begin" listener below emits BEGIN for every transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
            _enter_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {'IMMEDIATE' if mode == 'IMMEDIATE' else 'DEFERRED'}")

    return engine


def _enter_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database file to WAL (it stays so), waiting out other processes' writes.

    While another connection holds the writer lock, the switch fails at once with
    SQLITE_BUSY: SQLite does not call the busy handler there, as waiting could deadlock.
    Several processes opening a new database together hit it; retry up to busy_timeout.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_S
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that will write: committed on success, else rolled back.

    On SQLite it starts with BEGIN IMMEDIATE, so it takes the single writer lock up front
    (waiting up to busy_timeout) instead of failing when a read turns into a write.
    """
    with engine.connect() as conn:
        conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        with conn.begin():
            yield conn


def _alembic_config(conn: Connection) -> Config:
    config = Config()
    # ConfigParser interpolation: a '%' in the install path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = conn
    return config


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, None before the first upgrade."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Migrate the database to the newest revision (safe to run from several processes at once).

    Returns the revision the database is at afterwards.
    """
    with _UPGRADE_LOCK, engine.connect() as conn:
        # On SQLite the migration takes the writer lock up front (BEGIN IMMEDIATE): reading
        # the revision and then writing would fail at once ("database is locked") when
        # another process wrote in between, busy_timeout or not.
        conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        command.upgrade(_alembic_config(conn), "head")
    revision = current_revision(engine)
    if revision is None:  # pragma: no cover - Alembic records the revision it reached
        raise StoreError("the database has no schema revision after upgrading")
    return revision


def open_store(settings: Settings) -> Engine:
    """The engine for the configured database, upgraded to the newest schema."""
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
