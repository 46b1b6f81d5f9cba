"""The JSON API in-process over real databases (SQLite and PostgreSQL), one account per client.

def test_something(api: Api) -> None:
    alice = api.account("alice@acme.example")      # a new account with its own key
    r = alice.get("/account")                       # paths are relative to /api/v1
    assert r.status_code == 200
    bob = api.account("bob@other.example")          # another tenant, for isolation tests
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.store.db import write_transaction
from pixeltrail.web.api.app import PREFIX, mounted_api

from ..conftest import SECRET
from ..dbs import DATABASES, Database, fresh_database
from ..server.conftest import free_port


@dataclass
class Tenant:
    account_id: str
    api_key: str
    client: httpx.Client

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        content: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """A request to /api/v1<path> with this tenant's key."""
        return self.client.request(
            method,
            PREFIX + path,
            json=json,
            content=content,
            params=params,
            headers={"Authorization": f"Bearer {self.api_key}", **(headers or {})},
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)


@dataclass
class Api:
    engine: Engine
    settings: Settings
    client: httpx.Client
    tenants: list[Tenant] = field(default_factory=list)

    def account(self, email: str, name: str = "Acme", timezone: str = "UTC") -> Tenant:
        with write_transaction(self.engine) as conn:
            created, key = create_account(conn, name, email, timezone=timezone)
        return Tenant(created.id, key, self.client)


def make_settings(tmp_path: Path, database_url: str, **env: str) -> Settings:
    return Settings.from_env(
        {
            "PIXELTRAIL_DATA_DIR": str(tmp_path / "data"),
            "PIXELTRAIL_SECRET_KEY": SECRET,
            "PIXELTRAIL_DATABASE_URL": database_url,
            **env,
        }
    )


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        database.migrated()
        yield database


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """A real HTTP server for `app` on a free loopback port, in a thread; yields its URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[Api]:
    settings = make_settings(tmp_path, database.url)
    with (
        serving(mounted_api(database.engine, settings)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield Api(database.engine, settings, client)
