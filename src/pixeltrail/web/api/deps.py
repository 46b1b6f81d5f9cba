"""What API routes depend on: a connection in a transaction, and the caller's account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from pixeltrail.config import Settings
from pixeltrail.platform.accounts.accounts import authenticate_key, record_key_use
from pixeltrail.platform.errors import Unauthorized
from pixeltrail.store.db import SQLITE_BEGIN, write_transaction


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def connection(request: Request) -> Iterator[Connection]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    engine = engine_of(request)
    if request.method in {"GET", "HEAD"}:
        with engine.begin() as conn:
            yield conn
    else:
        with write_transaction(engine) as conn:
            yield conn


# scope="function": the transaction ends (commits) before the response is sent, so a client
# that got 201 can rely on what it wrote. FastAPI's default ("request") ends it afterwards:
# the next request could then start before the commit and miss the row.
Conn = Annotated[Connection, Depends(connection, scope="function")]


def account_id(request: Request, conn: Conn) -> str:
    """The account of the bearer API key; 401 without a valid one."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    use = authenticate_key(conn, key.strip())
    if use.record_use:
        _record_use(request, conn, use.key_id)
    return use.account_id


def _record_use(request: Request, conn: Connection, key_id: str) -> None:
    """Write the key's last use (hourly at most). A SQLite transaction that began as a read
    must not turn into a write (it fails when another write came in between): one of its own."""
    writing = conn.get_execution_options().get(SQLITE_BEGIN) == "IMMEDIATE"
    if conn.dialect.name != "sqlite" or writing:
        record_key_use(conn, key_id)
    else:
        with write_transaction(engine_of(request)) as own:
            record_key_use(own, key_id)


AccountId = Annotated[str, Depends(account_id)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
