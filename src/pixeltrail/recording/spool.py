"""The append-only spool: every hit is on disk before its answer is sent.

A hit is one JSON line written with a single `write(2)` to the active segment file, so it
survives the process being killed the moment after (the kernel has it). The writing process
rotates every 0.2 s (`SpoolRotator`): the active segment is closed as `*.ready`, and the
flusher (in the background process) moves ready segments into the database and deletes them
only after the database has committed them. A live writer holds an exclusive `flock` on its
`*.open` segment, taken before the file gets that name, so the flusher can take any `*.open`
segment it can lock (its writer died) at any time without ever taking a live one, and two
servers sharing a data directory never take each other's.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pixeltrail.tracking.hits import Hit

log = logging.getLogger("pixeltrail.spool")

OPEN_SUFFIX = ".open"
READY_SUFFIX = ".ready"
# A segment being created: locked, then renamed to *.open. One left behind (its writer died
# within those microseconds) is empty, and deleted once it is this old and unlocked.
NEW_SUFFIX = ".new"
STALE_NEW_SECONDS = 60.0
ROTATE_SECONDS = 0.2
# Hits that could not be written (disk full, unwritable spool) wait here for the fallback
# drainer of this same process, which writes them straight to the database: kept while the
# process lives, bounded.
FALLBACK_LIMIT = 100_000


@dataclass
class SpoolHealth:
    error: str | None = None
    error_since: float | None = None
    unwritten: int = 0  # hits that reached neither disk nor database


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.health = SpoolHealth()
        self.fallback: deque[Hit] = deque()
        # Set whenever a hit goes to `fallback`: wakes the drainer, which otherwise sleeps.
        self.fallback_waiting = threading.Event()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._lines = 0
        self._sequence = 0

    # -- writing (the hot path) -------------------------------------------------------

    def append(self, hit: Hit) -> bool:
        """Write one hit durably enough to survive a crash; False if it could not be."""
        return self.append_line((hit.to_json() + "\n").encode("utf-8"), lambda: hit)

    def append_line(self, line: bytes, hit: Callable[[], Hit]) -> bool:
        """`append` of a hit given as its line (`spool_line`): the tracking routes make the
        Hit itself, with `hit()`, only when the line cannot be written and is kept in memory."""
        with self._lock:
            try:
                if self._fd is None:
                    self._open_segment()
                assert self._fd is not None
                written = os.write(self._fd, line)
                if written != len(line):
                    # A torn line would corrupt the next one: cut it off again.
                    os.ftruncate(self._fd, self._size)
                    raise OSError(f"short write ({written} of {len(line)} bytes)")
            except OSError as exc:
                self._failed(exc)
                self._keep_in_memory(hit())
                return False
            self._size += len(line)
            self._lines += 1
            if self.health.error is not None:
                log.warning("spool writable again after: %s", self.health.error)
                self.health.error = self.health.error_since = None
            return True

    def _open_segment(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._sequence}"
        new = self.directory / (name + NEW_SUFFIX)
        path = self.directory / (name + OPEN_SUFFIX)
        fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        try:
            # Locked before it is called *.open: an unlocked *.open is a dead writer's.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(new, path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(new)
            raise
        self._fd, self._path, self._size, self._lines = fd, path, 0, 0

    def _failed(self, exc: OSError) -> None:
        if self.health.error is None:
            self.health.error_since = time.time()
            log.error(
                "SPOOL NOT WRITABLE (%s): hits are answered and kept in memory only until "
                "the database takes them; fix the disk or the spool directory %s",
                exc,
                self.directory,
            )
        self.health.error = str(exc)
        if self._fd is not None:
            # Give up on this segment: it is closed as ready with what it has.
            self._close_segment()

    def _keep_in_memory(self, hit: Hit) -> None:
        if len(self.fallback) >= FALLBACK_LIMIT:
            self.health.unwritten += 1
            return
        self.fallback.append(hit)
        self.fallback_waiting.set()

    # -- rotation (the writer) and reading (the flusher) --------------------------------

    def rotate(self) -> None:
        """Close the active segment (if it holds anything) so the flusher can take it."""
        with self._lock:
            if self._fd is not None and self._lines:
                self._close_segment()

    def _close_segment(self) -> None:
        assert self._fd is not None
        assert self._path is not None
        fd, path = self._fd, self._path
        self._fd = self._path = None
        try:
            if self._lines or self._size:
                os.rename(path, path.with_suffix(READY_SUFFIX))
            else:
                path.unlink()
        except OSError as exc:
            log.error("cannot close spool segment %s: %s", path, exc)
        finally:
            os.close(fd)

    def recover(self) -> int:
        """Mark segments of dead writers ready; returns how many were found.

        Safe at any time, from any process: a live writer's segment is locked.
        """
        found = 0
        for path in sorted(self.directory.glob("*" + OPEN_SUFFIX)):
            if path != self._path and _unlocked(path):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(path, path.with_suffix(READY_SUFFIX))
                    found += 1
        stale = time.time() - STALE_NEW_SECONDS
        for path in self.directory.glob("*" + NEW_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < stale and _unlocked(path):
                    path.unlink()
        return found

    def ready_segments(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*" + READY_SUFFIX))

    def pending_lines(self) -> int:
        with self._lock:
            return self._lines

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                self._close_segment()


def _unlocked(path: Path) -> bool:
    """Whether no process holds `path` locked (its writer, if any, is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live process is writing it
    finally:
        os.close(fd)
    return True


class SpoolRotator:
    """Rotates the spool every `interval` seconds in the writing process, so a segment is
    ready for the flusher soon after its last hit even when no other hit follows."""

    def __init__(self, spool: Spool, interval: float = ROTATE_SECONDS) -> None:
        self.spool = spool
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-rotate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, and close the active segment as ready: nothing is left *.open behind."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.spool.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.spool.rotate()


def read_segment(path: Path) -> tuple[list[Hit], int]:
    """The hits in a ready segment, and how many lines could not be read (reported)."""
    hits: list[Hit] = []
    bad = 0
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        lines.pop()  # a last line without its newline was never completely written
        bad += 1
    for line in lines:
        try:
            hits.append(Hit.from_json(line))
        except (ValueError, TypeError):
            bad += 1
    return hits, bad
