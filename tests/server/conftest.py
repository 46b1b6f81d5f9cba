"""A real `pixeltrail serve` process on a free port, and clients that talk to it over TCP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import Engine

from pixeltrail.store.db import make_engine
from pixeltrail.store.events import list_events
from pixeltrail.tracking.hits import Event
from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.tokens import TokenSigner

from ..conftest import SECRET
from ..dbs import DATABASES, Database, fresh_database

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def eventually(check: Callable[[], T | None], timeout: float = 20.0, every: float = 0.1) -> T:
    """Poll until `check` returns something truthy; fail with its last answer otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"condition not met within {timeout}s (last: {last!r})")


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, parent = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(parent) == pid and state != "Z":
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class ServerProcess:
    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        serve_args: Sequence[str] = (),
        command: Sequence[str] = (sys.executable, "-m", "pixeltrail"),
        **env: str,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.serve_args = list(serve_args)
        self.command = list(command)  # how pixeltrail is run: this checkout, or an installed one
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PIXELTRAIL_")},
            "PIXELTRAIL_DATA_DIR": str(data_dir),
            "PIXELTRAIL_SECRET_KEY": SECRET,
            "PIXELTRAIL_DATABASE_URL": database_url,
            "PIXELTRAIL_BASE_URL": self.base_url,
            **env,
        }
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.links = LinkBuilder(self.base_url, TokenSigner(KeyRing.parse(SECRET)))

    def start(self) -> ServerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.command, "serve", "--port", str(self.port), *self.serve_args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"server exited:\n{self.log()}")
            try:
                httpx.get(self.base_url + "/robots.txt", timeout=1)
            except httpx.TransportError:
                return False
            return True

        eventually(up, timeout=20)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill(signal.SIGTERM)

    def background_pid(self) -> int:
        """The pid of the background process `serve` started, once it runs."""
        assert self.process is not None
        pid = self.process.pid
        return eventually(lambda: next(iter(children(pid)), None))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def health(self) -> tuple[int, dict[str, Any]]:
        r = httpx.get(self.base_url + "/healthz", timeout=5)
        report: dict[str, Any] = r.json()
        return r.status_code, report

    def wait_health(self, status: int) -> dict[str, Any]:
        """The /healthz report once it answers `status`."""

        def check() -> dict[str, Any] | None:
            code, report = self.health()
            return report if code == status else None

        return eventually(check)


def wait_recorded(engine: Engine, message_id: str, count: int) -> list[Event]:
    """The events of a message once there are `count` of them."""

    def check() -> list[Event] | None:
        events = recorded(engine, message_id)
        return events if len(events) == count else None

    return eventually(check)


def recorded(engine: Engine, message_id: str | None = None) -> list[Event]:
    try:
        with engine.connect() as conn:
            return list(list_events(conn, message_id))
    except Exception:
        return []


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'pixeltrail.db'}"


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def server(tmp_path: Path, database: Database) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", database.url).start()
    yield proc
    proc.stop()


@pytest.fixture
def db(database: Database) -> Engine:
    return database.engine
