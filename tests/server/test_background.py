"""`serve` runs two processes: HTTP, and the background process it starts, watches, restarts
and stops; /healthz says when the background process is not running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.ids import now_ms
from pixeltrail.runtime.background_status import NOT_RUNNING, STALE_AFTER, STATUS_FILE
from pixeltrail.runtime.http_process import Server
from pixeltrail.store.db import upgrade
from pixeltrail.tracking.tokens import new_message_id
from pixeltrail.web.hosts import AllowedHosts

from ..conftest import SECRET
from ..domains.conftest import domain_settings
from ..domains.test_hosts import HOST, add
from .conftest import ServerProcess, children, eventually, recorded, running, wait_recorded


def _opens(server: ServerProcess, message_id: str, count: int, prefix: str) -> None:
    url = server.links.open_url(message_id)
    for i in range(count):
        assert httpx.get(url, headers={"User-Agent": f"{prefix}-{i}"}).status_code == 200


def _each_once(engine: Engine, message_id: str, count: int) -> list[str]:
    agents = sorted(e.hit.user_agent for e in wait_recorded(engine, message_id, count))
    assert len(set(agents)) == count
    return agents


def test_a_dead_background_process_is_started_again_and_nothing_is_lost(
    tmp_path: Path, sqlite_url: str, sqlite_db: Engine
) -> None:
    server = ServerProcess(tmp_path / "data", sqlite_url).start()
    try:
        first = server.background_pid()
        assert server.wait_health(200)["background"]["pid"] == first
        os.kill(first, signal.SIGKILL)
        report = server.wait_health(503)
        assert (report["background"]["ok"], report["background"]["error"]) == (False, NOT_RUNNING)
        assert report["spool"]["ok"]  # the HTTP process itself is fine
        # Answered meanwhile, spooled, and recorded once it runs again.
        message_id = new_message_id()
        _opens(server, message_id, 10, "while-dead")

        def restarted() -> int | None:
            code, report = server.health()
            pid: int | None = report["background"]["pid"]
            return pid if code == 200 and pid not in {None, first} else None

        second = eventually(restarted, timeout=30)
        assert children(server.process.pid if server.process else 0) == [second]
        assert len(_each_once(sqlite_db, message_id, 10)) == 10
        assert "BACKGROUND PROCESS STOPPED (killed by SIGKILL)" in server.log()
    finally:
        server.stop()
    assert not running(second)


def test_sigterm_stops_both_and_the_last_hits_are_recorded(
    tmp_path: Path, sqlite_url: str, sqlite_db: Engine
) -> None:
    server = ServerProcess(tmp_path / "data", sqlite_url).start()
    background = server.background_pid()
    message_id = new_message_id()
    _opens(server, message_id, 20, "last")
    server.stop()  # SIGTERM at once: the last segment is closed, then flushed by the other
    assert server.process is not None
    assert server.process.returncode == -signal.SIGTERM
    assert not running(background)
    assert len(recorded(sqlite_db, message_id)) == 20
    assert list((tmp_path / "data" / "spool").iterdir()) == []
    assert "Traceback" not in server.log()


def test_the_background_process_yields_the_cpu_to_the_http_process(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Answering readers comes first: every thread of the background process runs at
    SCHED_IDLE (a waking HTTP process takes the core at once), in serve's session, where the
    kernel groups tasks (Linux autogroups) and SCHED_IDLE counts, but not in serve's process
    group, which a Ctrl+C in the terminal reaches."""
    server = ServerProcess(tmp_path / "data", sqlite_url).start()
    try:
        background = server.background_pid()
        assert server.process is not None
        serve = server.process.pid

        def policies() -> set[int] | None:
            tasks = [int(t.name) for t in Path(f"/proc/{background}/task").iterdir()]
            found = {os.sched_getscheduler(tid) for tid in tasks}
            return found if len(tasks) > 1 and found == {os.SCHED_IDLE} else None

        assert eventually(policies) == {os.SCHED_IDLE}
        assert os.sched_getscheduler(serve) == os.SCHED_OTHER
        assert os.getsid(background) == os.getsid(serve)
        assert os.getpgid(background) == background != os.getpgid(serve)
        lower = min(19, os.getpriority(os.PRIO_PROCESS, serve) + 10)
        assert os.getpriority(os.PRIO_PROCESS, background) == lower
    finally:
        server.stop()


def test_serve_without_background_then_background_on_its_own(
    tmp_path: Path, sqlite_url: str, sqlite_db: Engine
) -> None:
    server = ServerProcess(tmp_path / "data", sqlite_url, serve_args=["--no-background"]).start()
    assert server.process is not None
    background: subprocess.Popen[bytes] | None = None
    try:
        assert children(server.process.pid) == []
        status, report = server.health()
        assert (status, report["background"]["error"]) == (503, NOT_RUNNING)
        message_id = new_message_id()
        _opens(server, message_id, 10, "spooled")
        # The HTTP process never records: the hits wait in ready segments.
        spool = tmp_path / "data" / "spool"
        eventually(lambda: list(spool.glob("*.ready")))
        time.sleep(0.5)
        assert recorded(sqlite_db, message_id) == []

        with server.log_path.open("ab") as log:
            background = subprocess.Popen(
                [sys.executable, "-m", "pixeltrail", "background"],
                env=server.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        assert len(_each_once(sqlite_db, message_id, 10)) == 10
        assert server.wait_health(200)["background"]["pid"] == background.pid

        background.send_signal(signal.SIGTERM)
        assert background.wait(30) == 0
        stopped = time.monotonic()
        assert server.wait_health(503)["background"]["error"] == NOT_RUNNING
        # It said it stopped: no waiting for its status to go stale.
        assert time.monotonic() - stopped < STALE_AFTER
    finally:
        if background is not None and background.poll() is None:
            background.kill()
            background.wait()
        server.stop()


def test_healthz_says_not_running_when_the_status_is_stale(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings.from_env(
        {
            "PIXELTRAIL_DATA_DIR": str(data),
            "PIXELTRAIL_SECRET_KEY": SECRET,
            "PIXELTRAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'pixeltrail.db'}",
        }
    )
    data.mkdir()
    database = {"ok": True, "error": None, "segments_waiting": 2, "recorded": 7, "lag_ms": 300}

    def health_when_written(seconds_ago: float) -> tuple[bool, dict[str, Any]]:
        status = {"pid": 4242, "running": True, "database": database}
        (data / STATUS_FILE).write_text(
            json.dumps({**status, "written_at": time.time() - seconds_ago})
        )
        server = Server(settings)
        try:
            return server.health()
        finally:
            server.engine.dispose()

    ok, report = health_when_written(0.5)
    assert ok
    assert report["database"] == {
        "ok": True,
        "error": None,
        "segments_waiting": 2,
        "recorded": 7,
        "lag_ms": 300,
    }
    assert report["background"] == {"ok": True, "error": None, "pid": 4242, "status_age_s": 0.5}
    ok, report = health_when_written(STALE_AFTER - 5)  # late, as on a saturated core
    assert ok
    ok, report = health_when_written(STALE_AFTER + 10)
    assert not ok
    assert report["status"] == "degraded"
    assert report["background"]["error"] == NOT_RUNNING
    assert report["background"]["status_age_s"] == STALE_AFTER + 10


def test_a_domain_the_background_process_verifies_is_served_at_once(
    tmp_path: Path, sqlite_url: str, sqlite_db: Engine
) -> None:
    """Its re-checks run in the other process: it rewrites the hosts file, which the HTTP
    process watches, instead of waiting for the next 30 s refresh."""
    upgrade(sqlite_db)
    settings = domain_settings(tmp_path, sqlite_url, "127.0.0.1:53")
    cache = tmp_path / "data" / "tracking-hosts.json"
    add(sqlite_db, settings, "first.acme.test", now_ms())
    served = AllowedHosts(settings, sqlite_db, cache)  # the HTTP process's: every 30 s
    served.start()
    try:
        eventually(lambda: served.allows(b"first.acme.test"))  # its first refresh is done
        add(sqlite_db, settings, HOST, now_ms())  # verified by a re-check, say
        time.sleep(1.5)
        assert not served.allows(HOST.encode())  # nothing told it yet
        # What the background process does when a re-check moved a domain.
        AllowedHosts(settings, sqlite_db, cache).reload(force_write=True)
        eventually(lambda: served.allows(HOST.encode()), timeout=5)
    finally:
        served.stop()
