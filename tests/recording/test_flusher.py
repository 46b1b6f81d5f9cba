"""The flusher (background process) and the fallback drainer (HTTP process), on real databases."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pixeltrail.platform.webhooks.events import enqueue_engagement
from pixeltrail.recording import flusher as flusher_module
from pixeltrail.recording.flusher import FallbackDrainer, Flusher
from pixeltrail.recording.spool import Spool
from pixeltrail.store.db import make_engine, upgrade
from pixeltrail.store.events import list_events

from ..dbs import DATABASES, fresh_database
from .test_spool import _hit


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path) as database:
        yield database.migrated()


def _agents(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(e.hit.user_agent for e in list_events(conn))


def test_the_flusher_takes_dead_writers_segments_at_any_pass_never_live_ones(
    tmp_path: Path, engine: Engine
) -> None:
    folder = tmp_path / "spool"
    writer = Spool(folder)  # the HTTP process, alive: its segment stays locked
    writer.append(_hit(1))
    flusher = Flusher(Spool(folder), engine, enqueue_engagement)
    assert flusher.flush_once() == 0
    # A server killed since the flusher started: its segment is taken at the next pass.
    dead = folder / "00000000000000000001-99999-1.open"
    dead.write_text(_hit(2).to_json() + "\n")
    assert flusher.flush_once() == 1
    assert _agents(engine) == ["ua-2"]
    writer.close()  # the live one, once ready
    assert flusher.flush_once() == 1
    assert _agents(engine) == ["ua-1", "ua-2"]
    assert list(folder.iterdir()) == []
    assert flusher.health.flushed == 2


def test_hits_kept_in_memory_are_drained_to_the_database(tmp_path: Path, engine: Engine) -> None:
    blocker = tmp_path / "spool"
    blocker.write_text("a file where the directory should be")
    spool = Spool(blocker)
    drainer = FallbackDrainer(spool, engine, enqueue_engagement)
    drainer.start()
    try:
        for i in range(5):
            assert not spool.append(_hit(i))
        deadline = time.monotonic() + 10
        while len(_agents(engine)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _agents(engine) == [f"ua-{i}" for i in range(5)]
        assert not spool.fallback
        assert drainer.health.flushed == 5
        spool.append(_hit(5))
    finally:
        drainer.stop()  # and one last drain
    assert len(_agents(engine)) == 6
    assert not spool.fallback


def test_a_write_waiting_on_a_locked_database_is_reported_before_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flusher_module, "SLOW_WAIT_SECONDS", 0.2)
    path = tmp_path / "pixeltrail.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    spool = Spool(tmp_path / "spool")
    flusher = Flusher(spool, engine, enqueue_engagement)
    flusher.flush_once()  # the schema checked, as after the first pass of a running flusher
    spool.append(_hit(1))
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    thread = threading.Thread(target=flusher.flush_once)
    try:
        thread.start()
        deadline = time.monotonic() + 5
        while flusher.health.problem() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "not taking writes" in str(flusher.health.problem())
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        thread.join()
    assert flusher.health.problem() is None
    assert _agents(engine) == ["ua-1"]
    engine.dispose()
