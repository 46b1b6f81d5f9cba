"""Engines, and schema upgrades that run themselves, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import OperationalError

from pixeltrail.config import Settings
from pixeltrail.store.db import (
    MIGRATIONS,
    StoreError,
    current_revision,
    make_engine,
    open_store,
    upgrade,
    write_transaction,
)
from pixeltrail.store.events import count_events, insert_events
from pixeltrail.store.schema import metadata

from ..dbs import Database
from .conftest import make_event


def _head() -> str:
    """The newest migration, read from the migrations themselves."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


HEAD = _head()


def test_upgrade_creates_the_tables_as_the_schema_describes(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert upgrade(engine) == HEAD
    assert {"events", "ip_ranges"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        # The hand-written migration and schema.py agree: autogenerate finds nothing to do.
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("events")}
    assert indexes == {"ix_events_message_id_at_ms": ["message_id", "at_ms"]}


def test_upgrading_again_changes_nothing(store: Engine) -> None:
    with store.begin() as conn:
        insert_events(conn, [make_event()])
    assert upgrade(store) == HEAD
    assert upgrade(store) == HEAD
    with store.connect() as conn:
        assert count_events(conn) == 1
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]


def test_concurrent_upgrades_in_one_process_all_succeed(database: Database) -> None:
    # Threads of one process (a server's flusher and a request, say), each with its own
    # engine, all starting at the same moment: Alembic's module globals must not clash.
    starters = 4
    barrier = threading.Barrier(starters)
    engines = [make_engine(database.url) for _ in range(starters)]

    def start(engine: Engine) -> str:
        barrier.wait()
        return upgrade(engine)

    try:
        with ThreadPoolExecutor(starters) as pool:
            revisions = list(pool.map(start, engines))
    finally:
        for engine in engines:
            engine.dispose()
    assert revisions == [HEAD] * starters
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]


_STARTER = """
import sys, time
from pathlib import Path
from pixeltrail.store.db import make_engine, upgrade

engine = make_engine(sys.argv[1])
Path(sys.argv[3]).touch()
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
try:
    print(upgrade(engine))
finally:
    engine.dispose()
"""


def test_processes_starting_together_upgrade_once(database: Database, tmp_path: Path) -> None:
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(6)]
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", _STARTER, database.url, str(go), str(flag)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    deadline = time.monotonic() + 60
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # every process has imported everything and made its engine: go
    outcomes = [(p.communicate(timeout=60), p.returncode) for p in starters]
    assert [(out, code) for (out, _), code in outcomes] == [(f"{HEAD}\n", 0)] * 6, outcomes
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]


def test_open_store_upgrades(database: Database, tmp_path: Path) -> None:
    settings = Settings.from_env({"PIXELTRAIL_DATA_DIR": str(tmp_path), **database.env})
    engine = open_store(settings)
    try:
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_sqlite_default_database_is_a_wal_file_in_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "there" / "yet"
    settings = Settings.from_env({"PIXELTRAIL_DATA_DIR": str(data_dir)})
    engine = open_store(settings)
    try:
        assert (data_dir / "pixeltrail.db").is_file()
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "busy_timeout": 30000,
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
        }
    finally:
        engine.dispose()


def test_sqlite_opens_while_another_process_writes_to_a_new_database(tmp_path: Path) -> None:
    # Another process is writing to a database not yet in WAL mode (the first migration,
    # say): SQLite refuses the switch to WAL at once, busy_timeout or not. Opening waits.
    path = tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE other (x INTEGER)")
    finish = threading.Timer(0.3, writer.execute, ["COMMIT"])
    finish.start()
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("SELECT count(*) FROM other").scalar() == 0
    finally:
        finish.join()
        writer.close()
        engine.dispose()


def test_sqlite_gives_up_on_a_database_locked_past_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pixeltrail.store.db._SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "held.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE other (x INTEGER)")
    engine = make_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            engine.connect()
    finally:
        writer.close()
        engine.dispose()


def test_sqlite_transactions_are_real(database: Database) -> None:
    # DDL and reads happen inside the transaction too (the sqlite3 module would autocommit
    # DDL): a rolled back transaction leaves nothing behind.
    engine = database.engine
    with engine.connect() as conn:
        with conn.begin() as tx:
            conn.execute(text("CREATE TABLE scratch (x INTEGER)"))
            tx.rollback()
        assert "scratch" not in inspect(conn).get_table_names()


def test_write_transaction_commits_or_rolls_back(store: Engine) -> None:
    with write_transaction(store) as conn:
        insert_events(conn, [make_event()])

    def abandon() -> None:
        with write_transaction(store) as conn:
            insert_events(conn, [make_event()])
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError):
        abandon()
    with store.connect() as conn:
        assert count_events(conn) == 1


def test_sqlite_writers_wait_for_each_other(tmp_path: Path) -> None:
    # Two engines (two processes) writing at once: the second waits for the lock.
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first, second = make_engine(url), make_engine(url)
    try:
        upgrade(first)
        started = threading.Event()

        def slow_writer() -> None:
            with write_transaction(first) as conn:
                insert_events(conn, [make_event()])
                started.set()
                threading.Event().wait(0.5)

        thread = threading.Thread(target=slow_writer)
        thread.start()
        started.wait()
        with write_transaction(second) as conn:
            assert count_events(conn) == 1  # began only once the first had committed
            insert_events(conn, [make_event()])
        thread.join()
        with second.connect() as conn:
            assert count_events(conn) == 2
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://user@host/db", "'mysql' is not supported"),
        ("postgresql+psycopg2://user@host/db", "'postgresql+psycopg2' is not supported"),
        ("not a url", "is not a URL"),
    ],
)
def test_unsupported_database_urls_are_refused_with_a_reason(url: str, words: str) -> None:
    with pytest.raises(StoreError, match=re.escape(words)) as info:
        make_engine(url)
    assert "postgresql+psycopg://" in str(info.value)  # and says what would work


def test_postgresql_without_a_driver_means_psycopg() -> None:
    engine = make_engine("postgresql://user@127.0.0.1/db")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()
