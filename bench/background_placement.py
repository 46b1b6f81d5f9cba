"""Latency at a steady load, by where and how pixeltrail's background process runs.

`pixeltrail serve` on granian answers /o/ (or /c/) at about 1,000 requests/s (wrk, 64
connections each pausing 64 ms, as the paced run of bench/server.py), pinned to core 0, wrk to
core 1. Interleaved rounds of each variant, the p99 of each run and their median:

- `shared core, as serve starts it`: the background process on the server's core, every
  thread at SCHED_IDLE, in serve's session (as bench/server.py measures it);
- `other core`: the background process moved to wrk's core (as the OS places it when a core
  is free);
- `stopped`: the background process stopped (SIGSTOP) for the run, nothing recorded meanwhile;
- `stopped + burner, ...`: stopped, and in its place on the server's core a process that only
  computes, 25 ms of every 200 ms (about what the flusher spends recording 1,000 hits/s):
  at SCHED_IDLE in serve's session; at SCHED_IDLE in a session of its own; at nice 10 in a
  session of its own whose scheduling group (Linux autogroup) is at nice 10 too, which is how
  `serve` started the background process before.

    .venv/bin/python bench/background_placement.py [--kind o] [--rounds 3] [--duration 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from server import (
    Kind,
    Tools,
    find_tools,
    make_workload,
    move_process,
    run_wrk,
    start_pixeltrail,
)

CONNECTIONS = 64
PAUSE_MS = 64  # 64 connections / 64 ms: about 1,000 requests/s
SERVER_CPU, CLIENT_CPU = 0, 1

BURNER = """
import os, sys, time
if sys.argv[1] == "idle":
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
else:
    os.nice(10)
    with open("/proc/self/autogroup", "w") as group:
        group.write("10")
while True:
    started = time.perf_counter()
    while time.perf_counter() - started < 0.025:
        pass
    time.sleep(0.175)
"""


@dataclass(frozen=True)
class Variant:
    name: str
    other_core: bool = False
    stopped: bool = False
    burner: str | None = None  # "nice" or "idle"
    own_session: bool = False  # the burner's


VARIANTS = (
    Variant("shared core, as `serve` starts it"),
    Variant("other core", other_core=True),
    Variant("stopped", stopped=True),
    Variant("stopped + burner, SCHED_IDLE, serve's session", stopped=True, burner="idle"),
    Variant(
        "stopped + burner, SCHED_IDLE, own session", stopped=True, burner="idle", own_session=True
    ),
    Variant(
        "stopped + burner, nice 10, own session (before)",
        stopped=True,
        burner="nice",
        own_session=True,
    ),
)


@contextmanager
def burner(kind: str | None, own_session: bool) -> Iterator[None]:
    if kind is None:
        yield
        return
    process = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CPU), sys.executable, "-c", BURNER, kind],
        start_new_session=own_session,
    )
    time.sleep(0.5)
    try:
        yield
    finally:
        process.kill()
        process.wait()


def run(tools: Tools, folder: Path, kind: Kind, variant: Variant, seconds: float) -> float:
    """The p99 in ms of one paced run."""
    pixeltrail = start_pixeltrail(tools, SERVER_CPU, folder, frozenset({SERVER_CPU}), "granian")
    try:
        workload = make_workload(pixeltrail.links, kind, 20_000, folder / "wrk.lua", PAUSE_MS)
        background = pixeltrail.background_pid
        if variant.other_core:
            move_process(background, frozenset({CLIENT_CPU}))
        run_wrk(tools, CLIENT_CPU, pixeltrail.process, workload, 2, CONNECTIONS)  # warm-up
        if variant.stopped:
            os.kill(background, signal.SIGSTOP)
        with burner(variant.burner, variant.own_session):
            result = run_wrk(tools, CLIENT_CPU, pixeltrail.process, workload, seconds, CONNECTIONS)
        return result.p99_ms
    finally:
        os.kill(pixeltrail.background_pid, signal.SIGKILL)
        pixeltrail.process.process.kill()
        pixeltrail.process.process.wait()
        pixeltrail.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kind", choices=("o", "c"), default="o")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per wrk run")
    args = parser.parse_args()
    tools = find_tools()
    p99s: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="pixeltrail-placement-") as tmp:
        for round_number in range(args.rounds):
            order = VARIANTS if round_number % 2 == 0 else tuple(reversed(VARIANTS))
            for i, variant in enumerate(order):
                folder = Path(tmp) / f"{round_number}-{i}"
                folder.mkdir()
                p99 = run(tools, folder, args.kind, variant, args.duration)
                p99s[variant.name].append(p99)
                print(f"round {round_number + 1}  {variant.name:48} p99 {p99:5.2f} ms", flush=True)
    print(f"\n/{args.kind}/ at ~1,000 requests/s, {args.rounds} x {args.duration:g} s:\n")
    print("| background process | p99 ms (median) | p99 ms of each run |")
    print("| --- | ---: | --- |")
    for name, values in p99s.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {statistics.median(values):.2f} | {runs} |")


if __name__ == "__main__":
    main()
