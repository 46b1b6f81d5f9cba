"""The guarantees, each provoked for real: a killed server, an unavailable database, a full disk."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from pixeltrail.store.db import make_engine, upgrade
from pixeltrail.tracking.tokens import new_message_id

from ..dbs import Database, fresh_database
from .conftest import ServerProcess, eventually, recorded, running


class Load:
    """Clients hitting pixels and links with a unique user agent per request."""

    def __init__(self, server: ServerProcess, threads: int = 8) -> None:
        self.server = server
        self.message_id = new_message_id()
        self.open_url = server.links.open_url(self.message_id)
        self.click_url = server.links.click_url(self.message_id, 1, "https://example.com/")
        self.answered: list[str] = []
        self.failed: list[str] = []
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=5) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                ua = f"load-{worker}-{n}"
                url = self.open_url if n % 2 else self.click_url
                with self._lock:
                    self.sent += 1
                try:
                    r = client.get(url, headers={"User-Agent": ua})
                except httpx.TransportError:
                    with self._lock:
                        self.failed.append(ua)
                    if self._stop.wait(0.05):
                        return
                    continue
                if r.status_code in {200, 302}:
                    with self._lock:
                        self.answered.append(ua)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def run_for(self, seconds: float) -> None:
        with self:
            time.sleep(seconds)


def _assert_each_answered_recorded_once(load: Load, engine: Engine) -> None:
    def complete() -> list[str] | None:
        agents = [e.hit.user_agent for e in recorded(engine, load.message_id)]
        return agents if set(load.answered) <= set(agents) else None

    agents = eventually(complete, timeout=30)
    ids = [e.hit.id for e in recorded(engine, load.message_id)]
    assert len(ids) == len(set(ids))
    duplicates = [ua for ua, n in Counter(agents).items() if n > 1]
    assert duplicates == []
    assert len(agents) <= load.sent


def test_sigkill_under_load_loses_no_answered_event(
    tmp_path: Path, database: Database, db: Engine
) -> None:
    server = ServerProcess(tmp_path / "data", database.url).start()
    background = server.background_pid()
    load = Load(server)
    with load:
        time.sleep(1.5)
        server.kill()  # SIGKILL, mid-load
    assert len(load.answered) > 200
    assert load.failed  # requests were in flight when it died
    # Its background process does not outlive it (after one last flush).
    eventually(lambda: not running(background), timeout=30)
    server.start()  # same data directory: the spool is replayed
    try:
        _assert_each_answered_recorded_once(load, db)
    finally:
        server.stop()


def test_sqlite_locked_then_released(tmp_path: Path, sqlite_url: str, sqlite_db: Engine) -> None:
    server = ServerProcess(tmp_path / "data", sqlite_url).start()
    try:
        _warm_up(server, sqlite_db)
        locker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            load = Load(server)
            load.run_for(1.0)
            assert load.failed == []
            assert len(load.answered) == load.sent
            report = server.wait_health(503)
            assert report["status"] == "degraded"
            assert recorded(sqlite_db, load.message_id) == []
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        _assert_each_answered_recorded_once(load, sqlite_db)
        server.wait_health(200)
    finally:
        server.stop()


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


needs_mount = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root"
)


def _warm_up(server: ServerProcess, engine: Engine) -> None:
    """One hit recorded: the schema exists and the flusher is running."""
    message_id = new_message_id()
    httpx.get(server.links.open_url(message_id))
    eventually(lambda: recorded(engine, message_id))


@needs_mount
def test_sqlite_on_a_read_only_filesystem_then_writable(tmp_path: Path) -> None:
    folder = tmp_path / "dbdir"
    folder.mkdir()
    url = f"sqlite:///{folder / 'pixeltrail.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        server = ServerProcess(tmp_path / "data", url).start()
        try:
            load = Load(server)
            load.run_for(1.0)
            assert load.failed == []
            assert len(load.answered) == load.sent
            report = server.wait_health(503)
            assert report["database"]["error"]
            subprocess.run(["mount", "-o", "remount,bind,rw", str(folder)], check=True)
            _assert_each_answered_recorded_once(load, engine)
            server.wait_health(200)
        finally:
            server.stop()
            engine.dispose()
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@needs_mount
def test_full_disk_still_answers_and_says_so(
    tmp_path: Path, sqlite_url: str, sqlite_db: Engine
) -> None:
    with _tmpfs(tmp_path / "data" / "spool", "256k") as spool:
        server = ServerProcess(tmp_path / "data", sqlite_url).start()
        try:
            filler = spool / "filler"
            with contextlib.suppress(OSError), filler.open("wb") as f:
                f.write(b"\0" * 1024 * 1024)
            load = Load(server, threads=4)
            load.run_for(1.0)
            assert load.failed == []
            assert len(load.answered) == load.sent
            status, report = server.health()
            assert status == 503
            assert report["spool"]["ok"] is False
            assert "No space left" in str(report["spool"]["error"])
            assert "SPOOL NOT WRITABLE" in server.log()
            # Hits kept in memory reach the database while the process lives.
            _assert_each_answered_recorded_once(load, sqlite_db)
            filler.unlink()
            httpx.get(load.open_url)
            server.wait_health(200)
        finally:
            server.stop()


def test_unwritable_spool_directory_still_answers(
    tmp_path: Path, sqlite_url: str, sqlite_db: Engine
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "spool").write_text("not a directory")
    server = ServerProcess(tmp_path / "data", sqlite_url).start()
    try:
        load = Load(server, threads=2)
        load.run_for(0.5)
        assert load.failed == []
        assert len(load.answered) == load.sent
        assert server.health()[0] == 503
        _assert_each_answered_recorded_once(load, sqlite_db)
    finally:
        server.stop()


def _postgres_cluster() -> list[str] | None:
    versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None or not versions:
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main"]


@pytest.mark.skipif(_postgres_cluster() is None, reason="needs the local cluster's pg_ctlcluster")
def test_postgresql_stopped_then_started(tmp_path: Path) -> None:
    cluster = _postgres_cluster()
    assert cluster is not None
    with fresh_database("postgresql", tmp_path) as database:
        engine = database.migrated()
        server = ServerProcess(tmp_path / "data", database.url).start()
        try:
            _warm_up(server, engine)
            engine.dispose()
            subprocess.run([*cluster, "stop", "-m", "fast"], check=True)
            try:
                load = Load(server)
                load.run_for(1.0)
                assert load.failed == []
                assert len(load.answered) == load.sent
                report = server.wait_health(503)
                assert report["database"]["error"]
            finally:
                subprocess.run([*cluster, "start"], check=True)
            _assert_each_answered_recorded_once(load, engine)
            server.wait_health(200)
        finally:
            server.stop()
