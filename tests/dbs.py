"""Real databases for tests: a fresh SQLite file or a fresh PostgreSQL schema, one per test.

Any test module can run against both databases with a parametrized fixture:

    from pathlib import Path
    from collections.abc import Iterator

    import pytest

    from tests.dbs import DATABASES, Database, fresh_database   # or: from ..dbs import ...


    @pytest.fixture(params=DATABASES)
    def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
        with fresh_database(request.param, tmp_path) as database:
            yield database

`database.url` is a plain SQLAlchemy URL string that reaches that database and nothing else
(for PostgreSQL it carries `options=-csearch_path=t_<random>`), so it also works as
PIXELTRAIL_DATABASE_URL for a CLI run or a server subprocess (`database.env`).
`database.engine` is an engine made with `pixeltrail.store.db.make_engine`, schema not yet
created: call `pixeltrail.store.db.upgrade(database.engine)` (or use `database.migrated()`).
Everything is removed afterwards: the engine is disposed of, the schema dropped.

PostgreSQL comes from PIXELTRAIL_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test). It must be running: a test that needs it
fails, and says how to start it, rather than being skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from pixeltrail.store.db import make_engine, upgrade

DATABASES = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("PIXELTRAIL_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


@dataclass(frozen=True)
class Database:
    kind: str
    url: str
    engine: Engine

    @property
    def env(self) -> dict[str, str]:
        """Environment pointing pixeltrail at this database."""
        return {"PIXELTRAIL_DATABASE_URL": self.url}

    def migrated(self) -> Engine:
        upgrade(self.engine)
        return self.engine


@contextmanager
def fresh_database(kind: str, tmp_path: Path) -> Iterator[Database]:
    """An empty database of `kind` ("sqlite" or "postgresql"), removed afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'pixeltrail.db'}"
        with _disposing(make_engine(url)) as engine:
            yield Database(kind, url, engine)
    elif kind == "postgresql":
        with _postgres_schema() as url, _disposing(make_engine(url)) as engine:
            yield Database(kind, url, engine)
    else:
        raise ValueError(f"unknown database kind {kind!r}; one of {DATABASES}")


@contextmanager
def _disposing(engine: Engine) -> Iterator[Engine]:
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _postgres_schema() -> Iterator[str]:
    base = make_url(postgres_url())
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(
        base.set(drivername="postgresql+psycopg"),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    try:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        except OperationalError as exc:
            pytest.fail(
                f"PostgreSQL is not reachable at {base.render_as_string(hide_password=True)}: "
                f"{str(exc.orig).strip()}\nStart it (`.ci/run` does, or "
                '`pg_ctlcluster "$(ls /etc/postgresql)" main start`) or point '
                "PIXELTRAIL_TEST_POSTGRES_URL at one; these tests need a real PostgreSQL.",
                pytrace=False,
            )
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    finally:
        admin.dispose()
