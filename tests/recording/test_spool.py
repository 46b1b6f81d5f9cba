"""The spool on its own: lines on disk before the answer, rotation, recovery, torn lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pixeltrail.recording.spool import Spool, read_segment
from pixeltrail.tracking.hits import Hit, new_event_id, now_ms


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
