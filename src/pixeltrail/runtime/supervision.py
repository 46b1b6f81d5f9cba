"""Running the background process beside the HTTP process: starting it as `serve`'s child,
its CPU priority, and starting it again when it dies.

`pixeltrail serve` answers HTTP in one process and starts `pixeltrail background` as a second
one (the flusher, the scheduler, the sender, domain re-checks, webhooks), so that classifying
and writing events never competes with the event loop for the GIL. `serve` starts the process
again when it dies; the process stops when `serve` is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("pixeltrail.background")


class YieldingPriority:
    """The background process's CPU priority as `serve` runs it: readers' answers come first
    when the two processes compete for a core (hits wait safely in the spool meanwhile, the
    sends in their queue), fully once it is running and until it stops.

    `starting`: nice 10, below the HTTP process but with a share of a saturated core, so that
    it is running and writing its status within seconds. At `SCHED_IDLE` from the start, on a
    core that the HTTP process kept busy it had not written its status 15 s later, and
    /healthz said it was not running.

    `started`: Linux's SCHED_IDLE, for every thread (later ones inherit it): a waking HTTP
    process takes the core at once. A nice value does not do that: the kernel lets the running
    task finish its slice first, and at 1,000 requests/s that took the p99 from 2 to 4.7 ms
    (docs/benchmarks.md). SCHED_IDLE counts only within a scheduling group, and Linux groups
    tasks by session (autogroups): `serve` starts this process in serve's session, so in
    serve's group, with a process group of its own (`BackgroundProcess`).

    `stopping`: back to the ordinary policy (still at nice 10), so that the last flush is done
    in seconds even while other processes keep every core busy, which at `SCHED_IDLE` it might
    never be.

    Where SCHED_IDLE is missing (not Linux), nice 10 for the whole life of the process.
    """

    NICE = 10

    def starting(self) -> None:
        os.nice(self.NICE)

    def started(self) -> None:
        if hasattr(os, "SCHED_IDLE"):
            _set_policy(os.SCHED_IDLE)

    def stopping(self) -> None:
        if hasattr(os, "SCHED_IDLE"):
            _set_policy(os.SCHED_OTHER)


def _set_policy(policy: int) -> None:
    for task in Path("/proc/self/task").iterdir():  # Linux, which has SCHED_IDLE, has /proc
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setscheduler(int(task.name), policy, os.sched_param(0))


# A child started this recently that has not written its status yet is starting, not dead
# (importing takes seconds on a busy machine; the HTTP process does not wait for it).
START_GRACE = 15.0
FIRST_PAUSE = 1.0  # before starting a dead background process again; doubles up to:
LONGEST_PAUSE = 30.0
STABLE_AFTER = 60.0  # a process that ran this long is restarted after FIRST_PAUSE again
STOP_TIMEOUT = 60.0  # for its last flush after SIGTERM, then SIGKILL
# Before that SIGKILL: the background process writes every thread's stack to its log
# (`faulthandler`), so a stop that hangs says where.
STACKS_SIGNAL = signal.SIGUSR2
STACKS_WAIT = 1.0

_PR_SET_PDEATHSIG = 1
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def background_command(log_level: str) -> list[str]:
    """`pixeltrail background` of this Python, stopped with this process."""
    return [
        sys.executable,
        "-m",
        "pixeltrail",
        "background",
        "--log-level",
        log_level,
        "--parent-pid",
        str(os.getpid()),
    ]


def exit_with_parent(parent_pid: int) -> bool:
    """Have Linux send this process SIGTERM when its parent dies (even by SIGKILL); False if
    the parent is already gone. Elsewhere the status loop's look at getppid() does it."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError) as exc:  # pragma: no cover - not glibc
            log.warning("cannot ask to be stopped with the server: %s", exc)
    return os.getppid() == parent_pid


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class BackgroundProcess:
    """Runs `command` (`pixeltrail background`) as a child and starts it again when it dies,
    after a pause that doubles up to 30 s while it keeps dying."""

    def __init__(self, command: Sequence[str], status_path: Path) -> None:
        self.command = list(command)
        self.status_path = status_path
        self.restarts = 0
        self._child: subprocess.Popen[bytes] | None = None
        self._spawned_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def alive(self) -> bool:
        return self.pid is not None

    def starting(self) -> bool:
        """Alive, and started less than START_GRACE seconds ago."""
        return self.alive() and time.monotonic() - self._spawned_at < START_GRACE

    def start(self) -> None:
        # The child is spawned and waited for in this thread, which lives as long as the
        # child: Linux's parent-death signal follows the thread that forked, not the process.
        self._thread = threading.Thread(target=self._run, name="pixeltrail-background", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the child (it flushes one last time) and wait for it; SIGKILL after
        `timeout` seconds."""
        with self._lock:
            self._stop.set()
            child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        if self._thread is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive() and child is not None:
            log.error(
                "background process did not stop within %.0f s: killed (where its threads "
                "were follows in its log)",
                timeout,
            )
            child.send_signal(STACKS_SIGNAL)
            time.sleep(STACKS_WAIT)
            child.kill()
            self._thread.join(10)

    def _run(self) -> None:
        # Inherited by the child (through fork and exec): a SIGTERM that arrives while it is
        # still importing waits until it can stop cleanly, after one last flush.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pause = FIRST_PAUSE
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                started = time.monotonic()
                try:
                    # Its own process group: a Ctrl+C in the terminal reaches `serve` alone,
                    # which stops the child after closing its last spool segment. Not its own
                    # session, whose scheduling group would compete with serve's as a whole
                    # (`YieldingPriority`). The command is serve's own (this Python,
                    # `-m pixeltrail background`), no input's.
                    child = subprocess.Popen(  # noqa: S603
                        self.command, stdin=subprocess.DEVNULL, process_group=0
                    )
                except OSError as exc:
                    child = None
                    reason = f"could not start: {exc}"
                else:
                    self._child, self._spawned_at = child, started
            if child is not None:
                reason = _exit_reason(child.wait())
            if self._stop.is_set():
                return
            if time.monotonic() - started >= STABLE_AFTER:
                pause = FIRST_PAUSE
            self.restarts += 1
            log.error(
                "BACKGROUND PROCESS STOPPED (%s): hits are still answered and spooled, but "
                "nothing is recorded, scheduled, sent or delivered until it runs again; "
                "starting it again in %.0f s",
                reason,
                pause,
            )
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, LONGEST_PAUSE)
