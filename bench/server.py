"""Tracking server throughput: pixeltrail's /o/ and /c/ against nginx on one core, side by side.

nginx serves a static 43-byte GIF for /o/ and `return 302` for /c/; pixeltrail verifies the
token, records the hit (spool, then the database through the flusher of its background
process) and answers the same. Both run pinned to one core (`taskset`), one after the other;
pixeltrail's background process stays on that core too, at SCHED_IDLE as `serve` puts it
(`--background-cpus` moves it).
wrk runs pinned to another core with 64 connections, rotating over 20,000 signed URLs of 20,000
messages with realistic user agents. Runs are interleaved (nginx then pixeltrail, then
pixeltrail then nginx, ...) and the medians of requests/s, p50 and p99 are reported with their
ratios.

After every pixeltrail run the benchmark waits until the flusher has moved everything into
the database and compares the responses wrk counted with the events stored; /healthz is
sampled every 100 ms during the run for the flusher's lag.

Needs Debian's `wrk` and `nginx-light` (or `nginx`): apt-get install -y wrk nginx-light

    .venv/bin/python bench/server.py            # print the tables
    .venv/bin/python bench/server.py --write    # and update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Engine

from pixeltrail.config import HTTP_SERVERS
from pixeltrail.platform.webhooks.events import enqueue_engagement
from pixeltrail.recording.flusher import Flusher
from pixeltrail.recording.spool import Spool
from pixeltrail.store.db import make_engine
from pixeltrail.store.events import count_events
from pixeltrail.tracking.hits import Hit, new_event_id, now_ms
from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.tokens import TokenSigner, new_message_id
from pixeltrail.web.tracking import PIXEL_GIF

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- bench:server -->"
END = "<!-- /bench:server -->"
COMMAND = ".venv/bin/python bench/server.py --write"
APT_INSTALL = "apt-get install -y wrk nginx-light"

# A fixed, public benchmark key: tokens are signed exactly as in production, nothing is secret.
BENCH_SECRET = "bench-only-secret-key-0123456789"
GOAL_RATIO = 0.33
GOAL_P99_MS = 4.0
TIMES = "\N{MULTIPLICATION SIGN}"
GE = "\N{GREATER-THAN OR EQUAL TO}"
LE = "\N{LESS-THAN OR EQUAL TO}"
SAMPLE_EVERY = 0.1  # seconds between /healthz samples during a run
SETTLE_SECONDS = 1.0  # the database count must stay put this long to count as drained
DRAIN_TIMEOUT = 600.0

Kind = Literal["o", "c"]
KINDS: tuple[Kind, ...] = ("o", "c")
KIND_LABEL: dict[Kind, str] = {"o": "`/o/<token>` (43-byte GIF)", "c": "`/c/<token>` (302)"}

# Opens come from mail clients and their image proxies, clicks from browsers.
OPEN_AGENTS = (
    "Mozilla/5.0",  # Apple Mail Privacy Protection
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.10.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
)
CLICK_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
)
_SHOP = "https://www.northwind-outfitters.com"
_UTM = "utm_source=newsletter&utm_medium=email&utm_campaign=2024-06-summer"
_PAGES = (
    "collections/summer-sale?sort=featured",
    "products/alpine-trail-jacket?variant=4101",
    "products/ridge-merino-base-layer?variant=4102",
    "products/summit-38l-backpack?variant=4103",
    "products/canyon-hiking-boot?variant=4104",
    "blogs/journal/2024/06/five-overnight-hikes?lang=en",
    "account/preferences?tab=email",
)


# ---------------------------------------------------------------------- tools


@dataclass(frozen=True)
class Tools:
    wrk: str
    nginx: str
    taskset: str


def find_tools() -> Tools:
    """wrk, nginx and taskset, or exit saying which apt-get install brings them."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = {name: shutil.which(name, path=search) for name in ("wrk", "nginx", "taskset")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        packages = {"wrk": "wrk", "nginx": "nginx-light", "taskset": "util-linux"}
        install = " ".join(packages[name] for name in missing)
        sys.exit(
            f"bench/server.py needs {', '.join(missing)}, not installed here. "
            "On Debian or Ubuntu, as root:\n\n"
            f"    apt-get update && apt-get install -y {install}\n\n"
            "(`nginx` instead of `nginx-light` works too; the benchmark starts its own nginx "
            "with a generated config and never touches the system one.)"
        )
    return Tools(wrk=str(found["wrk"]), nginx=str(found["nginx"]), taskset=str(found["taskset"]))


def tool_version(command: Sequence[str], pattern: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    match = re.search(pattern, result.stdout + result.stderr)
    return match.group(1) if match else "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {what}")


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": CLICK_AGENTS[0]})
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


def answers(port: int) -> bool:
    try:
        http_get(port, "/robots.txt", timeout=1.0)
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One wrk Lua script: `count` tracking URLs of `count` different messages."""

    kind: Kind
    script: Path
    sample_path: str
    message_ids: tuple[str, ...]


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


WRK_LUA = """\
-- Generated by bench/server.py: rotate over pre-formatted requests, report as one line.
local items = {
%(items)s
}
local requests = {}
local count = 0
local next_request = 0

function init(args)
  for k, item in ipairs(items) do
    requests[k] = wrk.format("GET", item[1], { ["User-Agent"] = item[2] })
  end
  count = #requests
end

function request()
  next_request = next_request %% count + 1
  return requests[next_request]
end

function done(summary, latency, reqs)
  local e = summary.errors
  io.write(string.format(
    "BENCH-RESULT requests=%%d duration_us=%%d bytes=%%d connect=%%d read=%%d write=%%d "
    .. "status=%%d timeout=%%d p50_us=%%d p99_us=%%d max_us=%%d\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
%(delay)s"""


def make_workload(
    links: LinkBuilder, kind: Kind, count: int, path: Path, pause_ms: int = 0
) -> Workload:
    """A script of `count` URLs; with `pause_ms`, each connection waits that long between
    requests (wrk's `delay()`), which paces the whole run at connections / pause."""
    items: list[tuple[str, str]] = []
    message_ids = tuple(new_message_id() for _ in range(count))
    for i, message_id in enumerate(message_ids):
        if kind == "o":
            url = links.open_url(message_id)
            agent = OPEN_AGENTS[i % len(OPEN_AGENTS)]
        else:
            page = _PAGES[i % len(_PAGES)]
            separator = "&" if "?" in page else "?"
            destination = f"{_SHOP}/{page}{separator}{_UTM}&utm_content=link-{i % 40 + 1}"
            url = links.click_url(message_id, i % 40 + 1, destination)
            agent = CLICK_AGENTS[i % len(CLICK_AGENTS)]
        items.append((urlsplit(url).path, agent))
    body = ",\n".join(f"  {{{lua_string(p)}, {lua_string(a)}}}" for p, a in items)
    delay = f"\nfunction delay()\n  return {pause_ms}\nend\n" if pause_ms else ""
    path.write_text(WRK_LUA % {"items": body, "delay": delay}, encoding="utf-8")
    return Workload(kind, path, items[0][0], message_ids)


# ---------------------------------------------------------------------- wrk


@dataclass(frozen=True)
class WrkResult:
    requests: int  # responses wrk read completely, whatever their status
    duration_s: float
    status_errors: int  # responses with a status of 400 or more
    socket_errors: int  # connect, read, write errors and timeouts
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float = 0.0  # CPU time (user + system, all threads) the server used meanwhile
    background_cpu_s: float = 0.0  # and its child processes (pixeltrail's background process)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / max(self.requests, 1) * 1e6

    @property
    def background_cpu_us_per_request(self) -> float:
        return self.background_cpu_s / max(self.requests, 1) * 1e6

    @property
    def core_share(self) -> float:
        """How much of its core the server had: 1.0 unless something else ran there too."""
        return self.server_cpu_s / self.duration_s

    @property
    def answered(self) -> int:
        """Responses with a 2xx or 3xx status."""
        return self.requests - self.status_errors


_RESULT = re.compile(r"^BENCH-RESULT (.*)$", re.MULTILINE)


def parse_wrk(output: str) -> WrkResult:
    match = _RESULT.search(output)
    if match is None:
        sys.exit(f"wrk printed no result line:\n{output}")
    values = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    return WrkResult(
        requests=values["requests"],
        duration_s=values["duration_us"] / 1e6,
        status_errors=values["status"],
        socket_errors=sum(values[k] for k in ("connect", "read", "write", "timeout")),
        p50_ms=values["p50_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        max_ms=values["max_us"] / 1000,
    )


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU time used so far by a process and its threads, and (unless not
    `children`) its live child processes and theirs."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 of proc(5)
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, grown = {pid}, children
    while grown:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grown = bool(found)
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    tools: Tools,
    cpu: int,
    server: Process,
    workload: Workload,
    seconds: float,
    connections: int,
) -> WrkResult:
    command = [
        tools.taskset,
        "-c",
        str(cpu),
        tools.wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(workload.script),
        f"http://127.0.0.1:{server.port}/",
    ]
    # taskset execs the server, so the process measured is the server itself.
    pid = server.process.pid
    own, tree = cpu_seconds(pid, children=False), cpu_seconds(pid)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    own, tree = cpu_seconds(pid, children=False) - own, cpu_seconds(pid) - tree
    if result.returncode != 0:
        sys.exit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return replace(parse_wrk(result.stdout), server_cpu_s=own, background_cpu_s=tree - own)


# ---------------------------------------------------------------------- servers

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    server_tokens off;
    # As many requests per connection as wrk sends (nginx closes after 1000 by default;
    # uvicorn never does).
    keepalive_requests 10000000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} default_server;
        # `alias` in a prefix location appends the rest of the URI to the file name, so
        # every /o/<token> is rewritten to the one file instead.
        location /o/ {{
            root {tmp}/www;
            rewrite ^ /pixel.gif break;
            default_type image/gif;
            etag off;
            add_header Cache-Control "no-cache, no-store, must-revalidate, private";
            add_header Pragma "no-cache";
            add_header Expires "Thu, 01 Jan 1970 00:00:00 GMT";
            add_header X-Robots-Tag "noindex, nofollow";
        }}
        location /c/ {{
            add_header Cache-Control "no-store";
            add_header X-Robots-Tag "noindex, nofollow";
            return 302 https://example.com/;
        }}
    }}
}}
"""


@dataclass
class Process:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            sys.exit(f"{self.name} exited ({self.process.returncode}):\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(name: str, command: list[str], env: dict[str, str], log: Path, port: int) -> Process:
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    proc = Process(name, port, process, log)

    def up() -> bool:
        proc.check_alive()
        return answers(port)

    wait_until(up, f"{name} to answer on port {port}")
    return proc


def start_nginx(tools: Tools, cpu: int, tmp: Path) -> Process:
    home = tmp / "nginx"
    (home / "www").mkdir(parents=True)
    (home / "www" / "pixel.gif").write_bytes(PIXEL_GIF)
    port = free_port()
    conf = home / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=home, port=port), encoding="utf-8")
    command = [
        tools.taskset,
        "-c",
        str(cpu),
        tools.nginx,
        "-p",
        f"{home}/",
        "-c",
        str(conf),
        "-e",
        str(home / "nginx-error.log"),
    ]
    return start("nginx", command, dict(os.environ), home / "stdout.log", port)


def pixeltrail_command(port: int) -> list[str]:
    """`pixeltrail serve` of this environment (the entry point beside this Python)."""
    script = Path(sys.executable).parent / "pixeltrail"
    program = [str(script)] if script.exists() else [sys.executable, "-m", "pixeltrail"]
    return [*program, "serve", "--host", "127.0.0.1", "--port", str(port)]


@dataclass
class Pixeltrail:
    http_server: str
    process: Process
    engine: Engine
    links: LinkBuilder
    background_pid: int
    background_cpus: frozenset[int]


def child_processes(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def move_process(pid: int, cpus: frozenset[int]) -> None:
    """Pin every thread of `pid` to `cpus` (sched_setaffinity moves one thread; the threads
    it starts later inherit from the one that starts them)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except ProcessLookupError:
            continue  # a thread that ended meanwhile


def background_process(process: Process, cpus: frozenset[int]) -> int:
    """pixeltrail's background process, once it has written its status, moved to `cpus`
    (started by `serve` under taskset, it shares the server's core until moved)."""
    found: list[int] = []

    def running() -> bool:
        process.check_alive()
        found[:] = child_processes(process.process.pid)
        if len(found) != 1:
            return False
        _, _, body = http_get(process.port, "/healthz")
        background = json.loads(body)["background"]
        # Started (it has written its status), not only spawned: its start-up takes seconds
        # of CPU that a run would otherwise compete with.
        return bool(background["pid"] == found[0] and background["status_age_s"] is not None)

    wait_until(running, "pixeltrail's background process", timeout=120.0)
    move_process(found[0], cpus)
    return found[0]


def start_pixeltrail(
    tools: Tools, cpu: int, tmp: Path, background_cpus: frozenset[int], http_server: str
) -> Pixeltrail:
    data = tmp / f"pixeltrail-{http_server}"
    data.mkdir()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{data / 'pixeltrail.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIXELTRAIL_")},
        "PIXELTRAIL_DATA_DIR": str(data),
        "PIXELTRAIL_SECRET_KEY": BENCH_SECRET,
        "PIXELTRAIL_DATABASE_URL": database_url,
        "PIXELTRAIL_BASE_URL": base_url,
        "PIXELTRAIL_HTTP_SERVER": http_server,
    }
    command = [tools.taskset, "-c", str(cpu), *pixeltrail_command(port)]
    process = start(f"pixeltrail on {http_server}", command, env, data.with_suffix(".log"), port)
    links = LinkBuilder(base_url, TokenSigner(KeyRing.parse(BENCH_SECRET)))
    background = background_process(process, background_cpus)
    return Pixeltrail(
        http_server, process, make_engine(database_url), links, background, background_cpus
    )


def check_answers(nginx: Process, pixeltrail: Pixeltrail, workloads: Sequence[Workload]) -> None:
    """Both servers answer the benchmark's URLs as they should (checked once, untimed)."""
    for workload in workloads:
        for name, port in (
            (nginx.name, nginx.port),
            (pixeltrail.process.name, pixeltrail.process.port),
        ):
            status, headers, body = http_get(port, workload.sample_path)
            if workload.kind == "o":
                ok = status == 200 and body == PIXEL_GIF and headers["content-type"] == "image/gif"
            else:
                ok = status == 302 and headers.get("location", "").startswith("https://")
            if not ok:
                sys.exit(f"{name} answered {workload.sample_path} with {status} {headers}")


# ---------------------------------------------------------------------- recording


@dataclass
class Sampler:
    """Samples pixeltrail's /healthz every 100 ms in a thread: (seconds, recorded, lag, waiting)."""

    port: int
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def health(self) -> dict[str, Any]:
        status, _, body = http_get(self.port, "/healthz")
        report: dict[str, Any] = json.loads(body)
        if status != 200:
            sys.exit(f"pixeltrail /healthz answered {status}: {report}")
        return report

    def sample(self, started: float) -> None:
        try:
            database = self.health()["database"]
        except OSError:
            self.failures += 1  # a sample that timed out under load: skipped
            return
        self.samples.append(
            (
                time.monotonic() - started,
                int(database["recorded"]),
                int(database["lag_ms"]),
                int(database["segments_waiting"]),
            )
        )

    @contextmanager
    def running(self) -> Iterator[None]:
        started = time.monotonic()

        def loop() -> None:
            while not self._stop.is_set():
                self.sample(started)
                self._stop.wait(SAMPLE_EVERY)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return count_events(conn)


def wait_drained(pixeltrail: Pixeltrail, expected_at_least: int) -> tuple[int, float]:
    """Wait until the flusher has moved everything: (events in the database, seconds it took).

    Drained: no ready segment waits, and the database count has not moved for a second
    (longer than the flusher's 0.2 s interval plus a commit) and is at least what was answered.
    """
    sampler = Sampler(pixeltrail.process.port)
    started = time.monotonic()
    last_count, last_change = -1, started
    while time.monotonic() - started < DRAIN_TIMEOUT:
        pixeltrail.process.check_alive()
        waiting = int(sampler.health()["database"]["segments_waiting"])
        count = stored(pixeltrail.engine)
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        elif waiting == 0 and count >= expected_at_least and now - last_change >= SETTLE_SECONDS:
            return count, last_change - started
        elif waiting == 0 and now - last_change >= 3 * SETTLE_SECONDS:
            return count, last_change - started  # fewer than answered: reported as lost
        time.sleep(SAMPLE_EVERY)
    sys.exit(f"the flusher did not drain the spool within {DRAIN_TIMEOUT:.0f}s")


@dataclass(frozen=True)
class Recording:
    """What happened to the hits of one pixeltrail run."""

    label: str
    http_server: str
    kind: Kind
    paced: bool
    answered: int  # 2xx/3xx responses wrk counted
    in_flight_bound: int  # connections: requests that may have been recorded but not counted
    events: int  # rows the run added to the database
    load_seconds: float
    recorded_during_load: int  # events the flusher committed while wrk was running
    drain_seconds: float  # after wrk stopped, until the last event was committed
    lags_ms: tuple[int, ...]  # /healthz lag_ms samples during the run (after its first commit)
    waiting_max: int  # most ready segments waiting at once
    cpu_s: float  # server CPU time from the start of the run until everything was recorded

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s / max(self.events, 1) * 1e6

    @property
    def difference(self) -> int:
        return self.events - self.answered

    @property
    def consistent(self) -> bool:
        return 0 <= self.difference <= self.in_flight_bound

    @property
    def load_rate(self) -> float:
        return self.recorded_during_load / self.load_seconds

    @property
    def backlog(self) -> int:
        return self.events - self.recorded_during_load

    @property
    def drain_rate(self) -> float | None:
        if self.backlog < 1000 or self.drain_seconds <= 0:
            return None
        return self.backlog / self.drain_seconds


def run_pixeltrail(
    tools: Tools,
    args: argparse.Namespace,
    pixeltrail: Pixeltrail,
    workload: Workload,
    label: str,
    paced: bool = False,
) -> tuple[WrkResult, Recording]:
    if child_processes(pixeltrail.process.process.pid) != [pixeltrail.background_pid]:
        sys.exit(f"pixeltrail's background process was restarted:\n{pixeltrail.process.log_text()}")
    before = stored(pixeltrail.engine)
    sampler = Sampler(pixeltrail.process.port)
    recorded_before = int(sampler.health()["database"]["recorded"])
    cpu_before = cpu_seconds(pixeltrail.process.process.pid)
    with sampler.running():
        result = run_wrk(
            tools, args.client_cpu, pixeltrail.process, workload, args.duration, args.c
        )
    samples = sampler.samples
    load_end = samples[-1][1] if samples else recorded_before
    # lag_ms is the age of the oldest hit of the last committed batch: samples count once
    # this run's first batch has been committed.
    lags = tuple(lag for _, recorded, lag, _ in samples if recorded > recorded_before)
    total, drain = wait_drained(pixeltrail, before + result.answered)
    cpu_total = cpu_seconds(pixeltrail.process.process.pid) - cpu_before
    recording = Recording(
        label=f"{label} ({pixeltrail.http_server})",
        http_server=pixeltrail.http_server,
        kind=workload.kind,
        paced=paced,
        answered=result.answered,
        in_flight_bound=args.c,
        events=total - before,
        load_seconds=result.duration_s,
        recorded_during_load=load_end - recorded_before,
        drain_seconds=drain,
        lags_ms=lags,
        waiting_max=max((w for *_, w in samples), default=0),
        cpu_s=cpu_total,
    )
    return result, recording


# ---------------------------------------------------------------------- flusher alone


def flusher_alone(hits: int, messages: int, tmp: Path) -> tuple[float, float]:
    """Spool `hits` hits of `messages` messages, then time one flush into a fresh SQLite file.

    Returns (spool appends per second, events flushed per second), in this process.
    """
    folder = tmp / "flusher-alone"
    spool = Spool(folder / "spool")
    engine = make_engine(f"sqlite:///{folder / 'pixeltrail.db'}")
    try:
        flusher = Flusher(spool, engine, enqueue_engagement)
        flusher.flush_once()  # creates the schema, outside the timing
        ids = [new_message_id() for _ in range(messages)]
        batch = [
            Hit(
                id=new_event_id(),
                kind="open",
                message_id=ids[i % messages],
                link=None,
                destination=None,
                at_ms=now_ms(),
                ip="203.0.113.7",
                user_agent=OPEN_AGENTS[i % len(OPEN_AGENTS)],
                method="GET",
            )
            for i in range(hits)
        ]
        started = time.perf_counter()
        for hit in batch:
            spool.append(hit)
        appended = time.perf_counter() - started
        started = time.perf_counter()
        flushed = flusher.flush_once()
        elapsed = time.perf_counter() - started
        spool.close()
        if flushed != hits:
            sys.exit(f"flusher alone: {flushed} of {hits} hits stored")
        return hits / appended, hits / elapsed
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- report


@dataclass
class Series:
    server: str
    kind: Kind
    results: list[WrkResult] = field(default_factory=list)

    def median(self, value: Callable[[WrkResult], float]) -> float:
        return statistics.median(value(r) for r in self.results)


def _rps(r: WrkResult) -> float:
    return r.rps


def _p50(r: WrkResult) -> float:
    return r.p50_ms


def _p99(r: WrkResult) -> float:
    return r.p99_ms


def _cpu(r: WrkResult) -> float:
    return r.cpu_us_per_request


def _share(r: WrkResult) -> float:
    return r.core_share


def _background_cpu(r: WrkResult) -> float:
    return r.background_cpu_us_per_request


def _background_column(value: float, server: str) -> str:
    return f"{value:.1f}" if server != "nginx" else "n/a"


def pixeltrail_name(http_server: str) -> str:
    return f"pixeltrail on {http_server}"


def _series_row(series: Series, label: str) -> str:
    rates = [r.rps for r in series.results]
    errors = sum(r.status_errors + r.socket_errors for r in series.results)
    background = _background_column(series.median(_background_cpu), series.server)
    return (
        f"| {label} | {series.server} | {series.median(_rps):,.0f} | "
        f"{min(rates):,.0f} to {max(rates):,.0f} | {series.median(_p50):.2f} | "
        f"{series.median(_p99):.2f} | {max(r.p99_ms for r in series.results):.2f} | "
        f"{series.median(_cpu):.1f} | {series.median(_share):.0%} | {background} | {errors} |"
    )


def _lag(lags: Sequence[int]) -> str:
    if not lags:
        return "n/a"
    return f"{statistics.median(lags):,.0f} / {max(lags):,}"


def _recording_row(r: Recording) -> str:
    drain_rate = "" if r.drain_rate is None else f" ({r.drain_rate:,.0f}/s)"
    check = "yes" if r.consistent else "**NO**"
    return (
        f"| {r.label} | {r.answered:,} | {r.events:,} | {r.difference:+,} | {check} | "
        f"{r.load_rate:,.0f} | {r.backlog:,} | {r.drain_seconds:.1f} s{drain_rate} | "
        f"{_lag(r.lags_ms)} | {r.waiting_max} | {r.cpu_us_per_event:.0f} |"
    )


def pause_ms(args: argparse.Namespace) -> int:
    """Each connection's pause between requests that paces a run at --paced-rate."""
    connections: int = args.c
    rate: int = args.paced_rate
    return max(1, round(connections * 1000 / rate))


def _paced_table(
    args: argparse.Namespace,
    paced: dict[tuple[str, Kind], WrkResult],
    nginx_name: str,
    http_servers: Sequence[str],
) -> list[str]:
    pause = pause_ms(args)
    lines = [
        "",
        f"Latency at a fixed pace instead of flat out: {args.c} connections, each waiting "
        f"{pause} ms before its next request (wrk's `delay()`), about "
        f"{args.c * 1000 / pause:,.0f} requests/s offered, one run of {args.duration:g} s each:",
        "",
        "| endpoint | server | requests/s | p50 ms | p99 ms | max ms | server CPU µs per request "
        "| background process CPU µs per request |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in KINDS:
        names = [("nginx", nginx_name)] + [(h, pixeltrail_name(h)) for h in http_servers]
        for server, name in names:
            r = paced[server, kind]
            label = KIND_LABEL[kind] if server == "nginx" else ""
            lines.append(
                f"| {label} | {name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                f"{r.max_ms:.2f} | {r.cpu_us_per_request:.1f} | "
                f"{_background_column(r.background_cpu_us_per_request, server)} |"
            )
    lines.append("")
    for kind in KINDS:
        for http_server in http_servers:
            p99 = paced[http_server, kind].p99_ms
            lines.append(
                f"- {KIND_LABEL[kind]} at {args.c * 1000 / pause:,.0f} requests/s: "
                f"{pixeltrail_name(http_server)} p99 **{p99:.2f} ms** (goal {LE} "
                f"{GOAL_P99_MS:g} ms: {'met' if p99 <= GOAL_P99_MS else 'not met'})"
            )
    return lines


def report(
    args: argparse.Namespace,
    series: dict[tuple[str, Kind], Series],
    recordings: Sequence[Recording],
    alone: tuple[float, float] | None,
    nginx_name: str,
    paced: dict[tuple[str, Kind], WrkResult],
    http_servers: Sequence[str],
) -> str:
    rounds = args.rounds
    lines = [
        f"| endpoint | server | requests/s (median of {rounds}) | range | p50 ms | p99 ms "
        f"(median) | p99 ms (worst) | server CPU µs per request | core used | background "
        "process CPU µs per request | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in KINDS:
        what = "static GIF file" if kind == "o" else "`return 302`"
        lines.append(
            _series_row(series["nginx", kind], KIND_LABEL[kind]).replace(
                "| nginx |", f"| {nginx_name} ({what}) |"
            )
        )
        for http_server in http_servers:
            lines.append(
                _series_row(series[http_server, kind], "").replace(
                    f"| {http_server} |", f"| {pixeltrail_name(http_server)} (event recorded) |"
                )
            )
    lines.append("")
    for kind in KINDS:
        theirs = series["nginx", kind]
        for http_server in http_servers:
            ours = series[http_server, kind]
            ratio = ours.median(_rps) / theirs.median(_rps)
            p99 = ours.median(_p99)
            cpu_ratio = theirs.median(_cpu) / max(
                statistics.median(
                    r.cpu_us_per_event
                    for r in recordings
                    if r.kind == kind and not r.paced and r.http_server == http_server
                ),
                1e-9,
            )
            # Requests/s if each had its core to itself: what the ratio is on a quiet machine.
            per_core = theirs.median(_cpu) / max(ours.median(_cpu), 1e-9)
            lines.append(
                f"- {KIND_LABEL[kind]}: {pixeltrail_name(http_server)} / nginx = "
                f"**{ratio:.2f}{TIMES}** requests/s (goal {GE} {GOAL_RATIO}{TIMES}: "
                f"{'met' if ratio >= GOAL_RATIO else 'not met'}); by HTTP-process CPU per "
                f"request {per_core:.2f}{TIMES}; p99 **{p99:.2f} ms** (goal "
                f"{LE} {GOAL_P99_MS:g} ms: {'met' if p99 <= GOAL_P99_MS else 'not met'}), nginx "
                f"p99 {theirs.median(_p99):.2f} ms; per CPU second (pixeltrail's counted until "
                f"its events were in the database) {cpu_ratio:.2f}{TIMES}"
            )
    lines += [
        "",
        "Every pixeltrail run, once the flusher had moved everything into the database:",
        "",
        "| run | responses answered (2xx/3xx, wrk) | events in database | difference | "
        f"equal ({LE} {args.c} in flight) | recorded during load (events/s) | left at end of "
        "load | drained in | lag_ms during load (median / max) | ready segments (max) | "
        "CPU µs per event, both processes, flushing included |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_recording_row(r) for r in recordings]
    lines.append("")
    equal = sum(r.consistent for r in recordings)
    lines.append(
        f"- events == responses: {equal}/{len(recordings)} runs (difference between 0 and "
        f"+{args.c}: a hit is spooled before its answer is sent, so the requests in flight "
        "when wrk stopped are recorded but never counted by wrk)"
    )
    flat_out = [r for r in recordings if not r.paced]
    lags = [statistics.median(r.lags_ms) for r in flat_out if r.lags_ms]
    lines.append(
        f"- spool to database under load: median "
        f"{statistics.median(r.load_rate for r in flat_out):,.0f} events/s recorded while wrk "
        f"ran flat out; lag_ms median of the runs' medians "
        f"{statistics.median(lags) if lags else 0:,.0f}, worst "
        f"{max(max(r.lags_ms, default=0) for r in flat_out):,}"
    )
    if alone is not None:
        appends, flushed = alone
        lines.append(
            f"- flusher alone (in-process, no HTTP, {args.alone_hits:,} open hits of "
            f"{args.messages:,} messages into a fresh SQLite file): spool appends "
            f"{appends:,.0f}/s, one flush {flushed:,.0f} events/s"
        )
    if paced:
        lines += _paced_table(args, paced, nginx_name, http_servers)
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def revision() -> str:
    """The checkout measured: commit, and whether src/ had uncommitted changes."""

    def git(*command: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(REPO), *command], capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "pixeltrail (not a git checkout)"
    dirty = git("status", "--porcelain", "--", "src")
    return f"pixeltrail {commit}{' with uncommitted changes in src/' if dirty else ''}"


def environment(args: argparse.Namespace, tools: Tools, load: str) -> tuple[str, str]:
    nginx = tool_version([tools.nginx, "-v"], r"nginx/(\S+)")
    wrk = tool_version([tools.wrk, "-v"], r"^wrk (\S+)")
    packages = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("granian", "uvicorn", "httptools", "uvloop", "SQLAlchemy")
    )
    text = (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{COMMAND}` "
        f"({args.rounds} rounds of {args.duration:g} s per run, {args.c} connections, "
        f"{args.messages:,} URLs of {args.messages:,} messages per run): {revision()}, "
        f"nginx {nginx}, "
        f"wrk {wrk}, Python {platform.python_version()}, {packages}, SQLite "
        f"{sqlite3.sqlite_version}; {cpu_model()}, {os.cpu_count()} cores; servers on core "
        f"{args.server_cpu}, pixeltrail's background process on core(s) "
        f"{', '.join(map(str, sorted(args.background_cpus)))}, wrk on core {args.client_cpu}; "
        "load average before the run "
        f"{load}, after {load_average()} (other processes share these cores)."
    )
    return text, f"nginx {nginx}"


DOC_SECTION = f"""
## Tracking server: pixeltrail against nginx

`bench/server.py` measures requests/s and p50/p99 latency of `/o/<token>` and `/c/<token>`
with wrk on loopback, pixeltrail recording every hit, side by side in the same run with nginx
serving the same paths as a static 43-byte GIF and a `return 302`: the most a server can do on
one core with this client. pixeltrail runs once per HTTP server it can use
(`PIXELTRAIL_HTTP_SERVER`: granian, the default, and uvicorn; `--http-servers` picks), so the
two are compared in the same run too. It needs Debian's `wrk` and `nginx-light` (or `nginx`),
which `make bench` does not install and CI does not run; as root:

    {APT_INSTALL}
    .venv/bin/python bench/server.py --write

The script exits with that `apt-get install` line when either is missing. It starts its own
nginx from a generated config in a temporary folder (`daemon off`, `master_process off`, one
worker, no access log, the GIF under `location /o/`, `return 302` under `location /c/`,
`keepalive_requests` raised so nginx, like pixeltrail, never closes wrk's connections) and one
`pixeltrail serve` per HTTP server, each with a fresh data folder and SQLite database; all are
pinned to one core with `taskset -c 0`, wrk to the other with `taskset -c 1`: `wrk -t1 -c64
-d10s --latency -s <script>`. Only the server under load works; the others idle meanwhile.
`pixeltrail serve` is two processes: the HTTP process (tokens, spool, answers) and
the background process it starts (the flusher, which classifies hits and writes them to SQLite,
and the rest). Both stay on core 0 (the background process at nice 10, as `serve` starts it),
so pixeltrail gets one core for everything, as nginx does, and wrk has the other to itself;
`--background-cpus` moves the background process elsewhere. Until 2026-11-27 noon it ran on
wrk's core, and there it kept wrk from offering enough requests: pixeltrail's HTTP process
then used only three quarters of its core (nice 10, nice 19 or SCHED_IDLE made no difference),
whereas on its own core at nice 10 it lets the HTTP process have nearly all of it.
The Lua script rotates over 20,000 pre-formatted requests, one signed URL of each of 20,000
messages (opens with mail clients' and image proxies' user agents, clicks with browsers' and a
UTM-tagged destination): a campaign's recipients, each opening or clicking a dozen times within
a run, where 1,000 messages (before 2026-11-27 noon) made each of them hit ~250 times in ten
seconds, which no reader does. Each round gets new messages, and each pixeltrail its own
database. nginx gets the same script and ignores the token. Runs alternate
(nginx, pixeltrail on granian, pixeltrail on uvicorn for /o, the same for /c, then the other
way round) after a short warm-up of each; the report gives medians over the rounds.

After each pixeltrail run the script waits until no spool segment is waiting
(`/healthz` `database.segments_waiting`) and the number of rows in the database has been still
for a second, then compares the 2xx/3xx responses wrk counted with the rows the run added. A
hit is spooled before its answer is sent, so the two may differ by the requests in flight when
wrk stopped (at most one per connection), never the other way. During the run `/healthz` is
sampled every 100 ms: events the flusher committed while wrk ran, and `lag_ms`, the age of the
oldest hit of the flusher's last committed batch.

Requests/s depend on how much of its core a server got, and on a shared machine other
processes take their turn on that core too. So each row also gives the CPU time the server
process used during the run (user and system, all its threads, from `/proc/<pid>/stat`) per
request, and the share of the core that came to (*core used*: 100% on a core that nothing else
wants); for pixeltrail, the background process's CPU per request during the run has a column
of its own. *By HTTP-process CPU per request* is nginx's CPU per request over pixeltrail's: the
ratio of requests/s the two would reach with a core each. On a busy core it flatters neither
side exactly (a server that gets the core in short turns finds more requests waiting at each
turn and spends less per request), and granian, whose HTTP work runs in a thread of its own
beside the Python thread, gets a bigger share of a contended core than single-threaded nginx or
uvicorn, so there requests/s ratios favour it. The second table counts both pixeltrail
processes' CPU until the run's events were in the database, the flusher's work after wrk
stopped included; *per CPU second* compares that with nginx's CPU per request.

wrk keeps all 64 connections busy, so once a server is saturated its mean latency is
64 / (requests/s) whatever it does (Little's law): a p99 of 4 ms flat out needs more than
16,000 requests/s from any server. One more run per server and path therefore paces wrk at about
1,000 requests/s (each connection pauses 64 ms between requests, with wrk's `delay()`), for the
latency at a load both servers carry; its events are checked against its responses too.

The Python cost of one request without any HTTP server, the app called directly in a loop
(`.venv/bin/python bench/tracking_app.py`, `--profile` for where it goes; CPU µs per request,
best of 5 {TIMES} 10,000), before and after the hot path was trimmed (one pass over the request
headers, the answers' headers built once, the spool line formatted directly instead of through
a `Hit` and a dict, strict base64 decoding in C, HMAC keys prepared once, event ids from
batched randomness, a campaign's destinations inflated, checked and made into `Location`
headers once), measured interleaved on the same machine on 2026-11-27:

| request | c254336 (before) | 3244233 (after) | an app that only answers |
| --- | ---: | ---: | ---: |
| `/o/<token>` | 26.2 to 27.2 | 10.3 to 10.9 | 0.4 |
| `/c/<token>` | 34.7 to 39.1 | 13.2 to 14.1 | 0.4 |

`/c/` trails nginx by more than `/o/` because nginx's `return 302` is its cheapest answer (no
file), while pixeltrail's click does more than its open: the longer token to decode and check,
its destination (inflated and checked against the URL rules at every click until the cache
above), the `Location` header, and a longer spool line.

The run below (09:49 UTC) had the machine nearly to itself for its first two rounds (nginx
used 95% to 97% of its core; the third shared it again). On granian the HTTP process spends
27.1 µs per `/o/` request and 33.1 µs per `/c/`, uvicorn with the trimmed hot path 44.7 and
46.9 (uvicorn before: 72.0 and 83.6 reproduced at 08:41 on this machine, busy; 80.4 and 99.8 in
the 06:48 run, on another CPU). Against nginx, which made 136,803 and 194,074 requests/s here
(56,328 and 86,351 on the other CPU), the goal of 0.33{TIMES} is **not met**:
`/o/` 0.20{TIMES} (0.26{TIMES} by CPU per request), `/c/` 0.12{TIMES} (0.15{TIMES}).
Reaching it would take about 45,000 and 64,000 requests/s, 22 and 16
µs of HTTP-process CPU per request in all. pixeltrail on granian used only 75% to 79% of its
core: wrk shares the other core with the background process, which spends 26 to 30 µs per hit
(about three quarters of that core at these rates), so wrk could not offer more, and granian's
requests/s stay below what its CPU per request allows. p99 {LE} 4 ms is **not met** either:
flat out 6.1 ms (`/o/`) and 7.3 ms (`/c/`) on granian (64 connections at 28,000 requests/s
wait 2.3 ms on average), and at 1,000 requests/s 6.9 and 6.3 ms on granian, 6.3 and 7.4 ms on
uvicorn, where nginx had 3.8 and 4.0 ms on the same machine; what sets pixeltrail's paced p99
was not found in this work. An earlier run at 09:34 UTC on a busy machine (load average 4,
nginx getting 29% to 56% of its core) gave granian 32.3 and 36.3 µs per request and
0.45{TIMES} and 0.19{TIMES} nginx's requests/s: the `/o/` ratio "met" there came from granian's
bigger share of a contended core (two threads against nginx's one), not from speed.

Until the flusher moved to the background process, it was a thread of the HTTP process and
competed with the event loop for the GIL. The last run of that version (2026-11-27 06:05 UTC,
pixeltrail 35fecf6, load average 7.21 before the run) gave `/o/` 2,106 and `/c/` 1,687
requests/s flat out, p99 170 and 205 ms, 344 and 400 µs of server CPU per request, and p99 85
and 168 ms at 1,000 requests/s. The machine was far busier then (nginx made 12,169 and 16,744
requests/s), so compare CPU per request and the paced p99, not requests/s.

The last run on uvicorn alone, before granian and the trimmed hot path (2026-11-27 06:48 UTC,
pixeltrail 90f797d, load average 0.62 before the run, the core nearly to itself): `/o/` 11,644
and `/c/` 9,560 requests/s, **0.21{TIMES}** and **0.11{TIMES}** nginx (56,328 and 86,351),
p99 13.73 and 14.04 ms flat out, 80.4 and 99.8 µs of HTTP-process CPU per request (nginx
16.8 and 10.6), and p99 5.76 and 5.82 ms at 1,000 requests/s. Reproduced at 08:41 UTC
(ba76e5e) on a busy machine (load average 3.62 after the run, every server getting 26% to
33% of its core): 72.0 and 83.6 µs per request.

{BEGIN}
{END}
"""


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        text = text.rstrip("\n") + "\n" + DOC_SECTION
        begin, end = text.find(BEGIN), text.find(END)
    text = text[: begin + len(BEGIN)] + "\n" + section + "\n" + text[end:]
    DOCS.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server and path")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per run kind")
    parser.add_argument("-c", type=int, default=64, help="wrk connections")
    parser.add_argument("--messages", type=int, default=20_000, help="URLs (messages) per script")
    parser.add_argument("--server-cpu", type=int, default=0, help="core for nginx and pixeltrail")
    parser.add_argument("--client-cpu", type=int, default=1, help="core for wrk and this script")
    parser.add_argument(
        "--background-cpus",
        type=lambda text: frozenset(int(c) for c in text.split(",")),
        default=None,
        help="cores for pixeltrail's background process, comma-separated (default: the "
        "server's, where `serve` starts it)",
    )
    parser.add_argument(
        "--paced-rate",
        type=int,
        default=1000,
        help="requests/s of one paced latency run per server and path (0: none)",
    )
    parser.add_argument(
        "--alone-hits", type=int, default=50_000, help="hits for the flusher-alone measurement"
    )
    parser.add_argument(
        "--http-servers",
        type=lambda text: tuple(text.split(",")),
        default=HTTP_SERVERS,
        help="PIXELTRAIL_HTTP_SERVER values to run pixeltrail with, side by side, "
        f"comma-separated (default: {','.join(HTTP_SERVERS)})",
    )
    parser.add_argument("--write", action="store_true", help=f"update {DOCS.name} too")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.c < 1 or args.messages < 1:
        parser.error("--rounds, --duration, -c and --messages must be positive")
    if not args.http_servers or not set(args.http_servers) <= set(HTTP_SERVERS):
        parser.error(f"--http-servers must be some of {', '.join(HTTP_SERVERS)}")
    http_servers: tuple[str, ...] = args.http_servers
    tools = find_tools()
    cores = os.sched_getaffinity(0)
    if args.server_cpu == args.client_cpu or not {args.server_cpu, args.client_cpu} <= cores:
        parser.error(
            f"--server-cpu and --client-cpu must be two different cores of {sorted(cores)}"
        )
    if args.background_cpus is None:  # all of pixeltrail on the server's core, as nginx
        args.background_cpus = frozenset({args.server_cpu})
    if not args.background_cpus or not args.background_cpus <= cores:
        parser.error(f"--background-cpus must be cores of {sorted(cores)}")
    # This script (the /healthz sampler, the database counts) stays off the server's core.
    os.sched_setaffinity(0, {args.client_cpu})

    load = load_average()
    links_count = args.messages
    series: dict[tuple[str, Kind], Series] = {
        (server, kind): Series(server, kind)
        for server in ("nginx", *http_servers)
        for kind in KINDS
    }
    recordings: list[Recording] = []
    paced: dict[tuple[str, Kind], WrkResult] = {}
    with tempfile.TemporaryDirectory(prefix="pixeltrail-bench-") as folder:
        tmp = Path(folder)
        nginx = start_nginx(tools, args.server_cpu, tmp)
        # One pixeltrail per HTTP server, all on the server core; only the one under load works.
        pixeltrails: dict[str, Pixeltrail] = {}
        try:
            for http_server in http_servers:
                pixeltrails[http_server] = start_pixeltrail(
                    tools, args.server_cpu, tmp, args.background_cpus, http_server
                )
            links = pixeltrails[http_servers[0]].links
            scripts = tmp / "scripts"
            scripts.mkdir()

            def workload(kind: Kind, name: str, pause_ms: int = 0) -> Workload:
                # Same key and paths for every pixeltrail; each has a database of its own, so
                # each still sees the script's messages for the first time.
                path = scripts / f"{name}-{kind}.lua"
                return make_workload(links, kind, links_count, path, pause_ms)

            def run(server: str, w: Workload, label: str, paced: bool = False) -> WrkResult:
                if server == "nginx":
                    nginx.check_alive()
                    result = run_wrk(tools, args.client_cpu, nginx, w, args.duration, args.c)
                else:
                    result, recording = run_pixeltrail(
                        tools, args, pixeltrails[server], w, label, paced
                    )
                    recordings.append(recording)
                print(
                    f"{label:22} {server:10} {result.rps:9,.0f} req/s p50 {result.p50_ms:6.2f} "
                    f"ms p99 {result.p99_ms:6.2f} ms, server CPU {result.core_share:4.0%}",
                    file=sys.stderr,
                )
                return result

            warmups = [workload("o", "warmup"), workload("c", "warmup")]
            for pixeltrail in pixeltrails.values():
                check_answers(nginx, pixeltrail, warmups)
            for w in warmups:
                run_wrk(tools, args.client_cpu, nginx, w, args.warmup, args.c)
                for pixeltrail in pixeltrails.values():
                    run_wrk(tools, args.client_cpu, pixeltrail.process, w, args.warmup, args.c)
                    wait_drained(pixeltrail, 0)
            runs = 2 * (1 + len(http_servers))
            print(
                f"warmed up; {args.rounds} rounds of {runs} runs of {args.duration:g} s",
                file=sys.stderr,
            )
            for round_ in range(args.rounds):
                servers = ["nginx", *http_servers]
                if round_ % 2:
                    servers.reverse()
                for kind in KINDS:
                    w = workload(kind, f"round{round_ + 1}")
                    for server in servers:
                        label = f"/{kind}/ round {round_ + 1}"
                        series[server, kind].results.append(run(server, w, label))
            if args.paced_rate:
                pause = pause_ms(args)
                for kind in KINDS:
                    w = workload(kind, "paced", pause)
                    for server in ("nginx", *http_servers):
                        label = f"/{kind}/ paced {args.paced_rate:,}/s"
                        paced[server, kind] = run(server, w, label, paced=True)
        finally:
            nginx.stop()
            for pixeltrail in pixeltrails.values():
                pixeltrail.process.stop()
                pixeltrail.engine.dispose()
        alone = flusher_alone(args.alone_hits, args.messages, tmp) if args.alone_hits else None

    header, nginx_name = environment(args, tools, load)
    section = (
        header + "\n\n" + report(args, series, recordings, alone, nginx_name, paced, http_servers)
    )
    print(section)
    if args.write:
        write_docs(section)
        print(f"\nwrote {DOCS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
