"""The spool on its own: lines on disk before the answer, rotation, recovery, torn lines."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixeltrail.recording.spool import Spool, SpoolRotator, read_segment
from pixeltrail.tracking.hits import Hit, new_event_id, now_ms, spool_line


def _hit(n: int = 0) -> Hit:
    return Hit(
        new_event_id(),
        "open",
        "AAECAwQFBgcICQoL",
        None,
        None,
        now_ms(),
        "192.0.2.1",
        f"ua-{n}",
        "GET",
    )


def test_appended_hits_are_on_disk_immediately(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    hits = [_hit(i) for i in range(3)]
    for hit in hits:
        assert spool.append(hit)
    (segment,) = tmp_path.glob("*.open")
    assert segment.read_text().count("\n") == 3
    spool.rotate()
    (ready,) = spool.ready_segments()
    assert read_segment(ready) == (hits, 0)
    assert not list(tmp_path.glob("*.open"))
    spool.close()


def test_rotation_of_an_empty_segment_leaves_nothing_to_flush(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.rotate()
    assert spool.ready_segments() == []


def test_a_torn_last_line_is_reported_not_replayed(tmp_path: Path) -> None:
    path = tmp_path / "1.ready"
    good = _hit()
    path.write_bytes((good.to_json() + "\n").encode() + b'{"id": "half')
    assert read_segment(path) == ([good], 1)


def test_recovery_takes_dead_segments_but_not_live_ones(tmp_path: Path) -> None:
    live = Spool(tmp_path)
    live.append(_hit())
    # A segment of a process that died (no lock held).
    dead = tmp_path / "00000000000000000001-99999-1.open"
    dead.write_text(_hit(1).to_json() + "\n")
    other = Spool(tmp_path)
    assert other.recover() == 1
    assert [p.name for p in other.ready_segments()] == [dead.with_suffix(".ready").name]
    assert len(list(tmp_path.glob("*.open"))) == 1  # the live one is still being written
    live.close()


def test_a_killed_writer_leaves_every_written_line(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pixeltrail.recording.spool import Spool\n"
        "from tests.recording.test_spool import _hit\n"
        "s = Spool(Path(sys.argv[1]))\n"
        "for i in range(500): s.append(_hit(i))\n"
        "os.kill(os.getpid(), 9)\n"
    )
    root = Path(__file__).parents[2]
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=root,
        check=False,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    spool = Spool(tmp_path)
    assert spool.recover() == 1
    (ready,) = spool.ready_segments()
    hits, bad = read_segment(ready)
    assert (len(hits), bad) == (500, 0)
    assert [h.user_agent for h in hits] == [f"ua-{i}" for i in range(500)]


def test_unwritable_spool_keeps_hits_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "spool"
    blocker.write_text("a file where the directory should be")
    spool = Spool(blocker)
    hit = _hit()
    assert not spool.append(hit)
    assert spool.health.error
    assert list(spool.fallback) == [hit]


def test_recovery_at_any_time_never_takes_a_live_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flusher (another process) recovers while the server writes: a segment is locked
    before it is called *.open, so even a recovery between creating and locking it (run
    right there, on purpose) finds nothing to take."""
    writer = Spool(tmp_path)
    recoverer = Spool(tmp_path)
    taken: list[int] = []
    real_flock = fcntl.flock
    inside = False

    def flock_after_a_recovery(fd: int, operation: int) -> None:
        nonlocal inside
        if not inside:
            inside = True
            try:
                taken.append(recoverer.recover())
            finally:
                inside = False
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_recovery)  # as the spool calls it
    for i in range(20):
        assert writer.append(_hit(i))
        writer.rotate()
        taken.append(recoverer.recover())
    writer.close()
    assert len(taken) >= 40
    assert sum(taken) == 0
    agents = [h.user_agent for p in writer.ready_segments() for h in read_segment(p)[0]]
    assert sorted(agents) == sorted(f"ua-{i}" for i in range(20))
    assert not list(tmp_path.glob("*.open"))
    assert not list(tmp_path.glob("*.new"))


def test_a_segment_left_half_created_is_removed_once_stale(tmp_path: Path) -> None:
    old = tmp_path / "00000000000000000001-99999-1.new"
    old.touch()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    fresh = tmp_path / "00000000000000000002-99999-2.new"
    fresh.touch()
    assert Spool(tmp_path).recover() == 0
    assert not old.exists()
    assert fresh.exists()  # its writer may be renaming it right now


def test_the_rotator_makes_an_idle_segment_ready_and_closes_it_at_stop(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    rotator = SpoolRotator(spool, interval=0.05)
    rotator.start()
    try:
        spool.append(_hit(1))
        deadline = time.monotonic() + 5
        while not spool.ready_segments() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(spool.ready_segments()) == 1
        assert not list(tmp_path.glob("*.open"))
        spool.append(_hit(2))
    finally:
        rotator.stop()
    assert not list(tmp_path.glob("*.open"))
    agents = sorted(h.user_agent for p in spool.ready_segments() for h in read_segment(p)[0])
    assert agents == ["ua-1", "ua-2"]


hits = st.builds(
    Hit,
    id=st.text(max_size=40),
    kind=st.sampled_from(["open", "click"]),
    message_id=st.text(max_size=20),
    link=st.none() | st.integers(min_value=0, max_value=2**32 - 1),
    destination=st.none() | st.text(max_size=200),
    at_ms=st.integers(min_value=0, max_value=2**53),
    ip=st.text(max_size=45),
    user_agent=st.text(max_size=300),
    method=st.sampled_from(["GET", "HEAD"]),
    honeypot=st.booleans(),
)


@given(hits)
def test_the_line_the_tracking_routes_write_is_the_hits_own(hit: Hit) -> None:
    line = spool_line(
        hit.id,
        hit.kind,
        hit.message_id,
        hit.link,
        hit.destination,
        hit.at_ms,
        hit.ip,
        hit.user_agent,
        hit.method,
        hit.honeypot,
    )
    assert line == (hit.to_json() + "\n").encode()
    assert Hit.from_json(line) == hit


def test_a_line_that_cannot_be_written_keeps_its_hit_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "spool"
    blocker.write_text("a file where the spool folder should be")
    spool = Spool(blocker)
    hit = _hit(7)
    made: list[Hit] = []

    def make() -> Hit:
        made.append(hit)
        return hit

    assert not spool.append_line((hit.to_json() + "\n").encode(), make)
    assert list(spool.fallback) == [hit] == made
    assert spool.health.error is not None


def test_event_ids_are_unique_and_not_shared_with_a_forked_child() -> None:
    ids = {new_event_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    new_event_id()  # ids for the next ones are waiting in this process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out at once
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32
    assert child != new_event_id()
