"""The background process's status file: written by it (every second, and at once when it
changes), read by the HTTP process for /healthz.

`pixeltrail serve` answers HTTP in one process and starts `pixeltrail background` as a second
one; the status file is all they share besides the spool and the database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("pixeltrail.background")

STATUS_FILE = "background-status.json"
STATUS_TICK = 0.25  # seconds between looks at the status (written when it changed)
STATUS_EVERY = 1.0  # written at least this often, changed or not
# An older status: the background process is not running. Generous, because it yields the
# CPU to the HTTP process (`YieldingPriority`): on a core saturated by tracking requests its
# status is written seconds late (a process that stops says so at once, and `serve` sees its
# own child die).
STALE_AFTER = 30.0
READ_CACHE = 0.5  # /healthz reads the file at most this often
NOT_RUNNING = "background process not running"


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file atomically: a reader sees the old one or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".background-status-")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(status, out)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        status = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


class StatusWriter:
    """Writes the background process's status when it changed, and at least every second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: dict[str, Any] | None = None
        self._at = 0.0
        self._failing = False

    def write(self, status: dict[str, Any], final: bool = False) -> None:
        now = time.monotonic()
        if status == self._last and now - self._at < STATUS_EVERY and not final:
            return
        if final:
            # A process started since (after a restart) owns the file now: leave it alone.
            current = read_status(self.path)
            if current is not None and current.get("pid") != status.get("pid"):
                return
        try:
            write_status(self.path, {**status, "written_at": time.time()})
        except OSError as exc:
            if not self._failing:
                log.error("cannot write %s (/healthz will say not running): %s", self.path, exc)
            self._failing = True
            return
        self._failing = False
        self._last, self._at = status, now


class StatusReader:
    """The last status the background process wrote, and its age; read at most every 0.5 s."""

    def __init__(self, path: Path, cache_seconds: float = READ_CACHE) -> None:
        self.path = path
        self.cache_seconds = cache_seconds
        self._status: dict[str, Any] | None = None
        self._read_at = -cache_seconds

    def read(self) -> tuple[dict[str, Any] | None, float | None]:
        now = time.monotonic()
        if now - self._read_at >= self.cache_seconds:
            self._status, self._read_at = read_status(self.path), now
        status = self._status
        if status is None:
            return None, None
        try:
            age = max(0.0, time.time() - float(status["written_at"]))
        except (KeyError, TypeError, ValueError):
            return None, None
        return status, age
