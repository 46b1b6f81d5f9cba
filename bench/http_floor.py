"""The floor under pixeltrail's tracking server: granian answering a 43-byte GIF with an app
that does nothing else, through ASGI, through RSGI (granian's own interface), and through RSGI
answered inline where granian hands the request over (pixeltrail.web.inline), side by side.

Each app runs in its own process pinned to one core (`taskset`), wrk on another with 64
connections; runs alternate (ASGI, RSGI, inline, then inline, RSGI, ASGI, ...) and the
medians of requests/s, p99 and the server's CPU time per request (user + system, all
threads, from /proc) are printed. What pixeltrail's hot path adds is the rest of its CPU
per request in bench/server.py.

    .venv/bin/python bench/http_floor.py [--rounds 3] [--duration 6]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
APP = f'''
import sys
import uvloop
from granian.constants import HTTPModes, Interfaces
from granian.server.embed import Server

GIF = bytes.fromhex("{GIF.hex()}")
ASGI_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", b"43")]
RSGI_HEADERS = [("content-type", "image/gif")]


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({{"type": f"lifespan.{{kind}}.complete"}})
            if kind == "shutdown":
                return
    await send({{"type": "http.response.start", "status": 200, "headers": ASGI_HEADERS}})
    await send({{"type": "http.response.body", "body": GIF}})


async def rsgi(scope, proto):
    proto.response_bytes(200, RSGI_HEADERS, GIF)


def answer_inline(scope, proto):
    proto.response_bytes(200, RSGI_HEADERS, GIF)
    return True


interface, port = sys.argv[1], int(sys.argv[2])
server = Server(
    asgi if interface == "asgi" else rsgi,
    address="127.0.0.1",
    port=port,
    interface=Interfaces.ASGI if interface == "asgi" else Interfaces.RSGI,
    http=HTTPModes.http1,
    websockets=False,
    backlog=1024,
    log_access=False,
)
if interface == "inline":
    from pixeltrail.web import inline

    with inline.install(answer_inline) as installed:
        assert installed
        uvloop.run(server.serve())
else:
    uvloop.run(server.serve())
'''
PORT = 18921


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _run(interface: str, duration: float, server_cpu: int, client_cpu: int) -> tuple[float, ...]:
    app = subprocess.Popen(
        ["taskset", "-c", str(server_cpu), sys.executable, "-c", APP, interface, str(PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)
        before = _cpu_ticks(app.pid)
        out = subprocess.run(
            ["taskset", "-c", str(client_cpu), "wrk", "-t1", "-c64", f"-d{duration:g}s",
             "--latency", f"http://127.0.0.1:{PORT}/o/x"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        ticks = _cpu_ticks(app.pid) - before
    finally:
        app.terminate()
        app.wait()
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / requests
    return rate, float(p99.group(1)) * scale, cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("taskset"):
        sys.exit("needs wrk and taskset: apt-get install -y wrk util-linux")
    results: dict[str, list[tuple[float, ...]]] = {"asgi": [], "rsgi": [], "inline": []}
    for round_ in range(args.rounds):
        order = list(results) if round_ % 2 == 0 else list(reversed(results))
        for interface in order:
            result = _run(interface, args.duration, args.server_cpu, args.client_cpu)
            results[interface].append(result)
            print(
                f"round {round_ + 1} {interface}: {result[0]:,.0f} requests/s, "
                f"p99 {result[1]:.2f} ms, {result[2]:.1f} µs CPU per request",
                flush=True,
            )
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.rounds}:")
    print("| interface | requests/s | p99 ms | server CPU µs per request |")
    print("| --- | ---: | ---: | ---: |")
    for interface, runs in results.items():
        rate, p99, cpu = (statistics.median(r[i] for r in runs) for i in range(3))
        name = {"asgi": "ASGI", "rsgi": "RSGI", "inline": "RSGI, answered inline"}[interface]
        print(f"| {name} | {rate:,.0f} | {p99:.2f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
