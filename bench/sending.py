"""Sending throughput: messages per second from claim to accepted by a local SMTP server.

10,000 messages (rendered for their contact, instrumented, built as MIME) go to aiosmtpd on
loopback, running in its own process, with one worker process and then two, on SQLite and on
PostgreSQL. Every message must arrive exactly once. Side by side, the reference: the same
number of client processes sending one prebuilt message of the same size over as many
aiosmtplib connections each as a worker opens, nothing else: the most this SMTP server takes.

    .venv/bin/python bench/sending.py [--messages 10000] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import resource
import secrets
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.chain import make_chain  # noqa: E402

from pixeltrail.config import Settings  # noqa: E402
from pixeltrail.platform.campaigns.scheduler import schedule_due  # noqa: E402
from pixeltrail.platform.ids import now_ms  # noqa: E402
from pixeltrail.sending.mime import Envelope, build_message  # noqa: E402
from pixeltrail.sending.worker import CONCURRENCY, SendWorker  # noqa: E402
from pixeltrail.store.db import make_engine, upgrade, write_transaction  # noqa: E402
from pixeltrail.store.schema import messages  # noqa: E402

SECRET = "bench-secret-0123456789abcdef0123"
HTML = (
    "<html><body><h1>Hello {{ first_name }}</h1>"
    + "".join(
        f'<p>Paragraph {i} for {{{{ company | default("you") }}}}: '
        f'<a href="https://example.com/p/{i}?utm_source=mail&amp;utm_medium=email">link {i}</a></p>'
        for i in range(8)
    )
    + "</body></html>"
)
DOC_START = "<!-- bench:sending -->"
DOC_END = "<!-- /bench:sending -->"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _smtp_server(port: int, ready: Any, count: Any, size: Any) -> None:
    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
                size.value += len(envelope.original_content or b"")
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reference_message(size: int) -> bytes:
    """A message as pixeltrail builds them (headers, two quoted-printable parts), `size` long."""
    envelope = Envelope(
        "ref0000000000000",
        "sales@acme.example",
        "Acme Sales",
        "r0@example.org",
        "R0",
        "News for R0",
    )
    head = build_message(envelope, "<p>x</p>", "x", "http://127.0.0.1:8000/u/x")
    filler = max(0, size - len(head)) // 2
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n"
    text = (line * (filler // len(line) + 1))[:filler]
    return build_message(envelope, text, text, "http://127.0.0.1:8000/u/x")


def _reference_client(port: int, messages: int, data: bytes) -> None:
    """Sends `data` `messages` times over CONCURRENCY connections, as fast as they go."""

    async def connection(count: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for n in range(count):
            await client.sendmail("sales@acme.example", [f"r{n}@example.org"], data)
        await client.quit()

    async def send() -> None:
        shares = [
            messages // CONCURRENCY + (n < messages % CONCURRENCY) for n in range(CONCURRENCY)
        ]
        await asyncio.gather(*(connection(share) for share in shares if share))

    asyncio.run(send())


def _worker(url: str, data_dir: str) -> None:
    settings = _settings(url, Path(data_dir))
    engine = make_engine(url)
    worker = SendWorker(engine, settings, settings.signer())

    async def drain() -> None:
        idle = 0
        while idle < 3:
            idle = 0 if await worker.run_once() else idle + 1
            if idle:
                await asyncio.sleep(0.05)
        await worker.close()

    asyncio.run(drain())
    engine.dispose()


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings.from_env(
        {
            "PIXELTRAIL_DATA_DIR": str(data_dir),
            "PIXELTRAIL_SECRET_KEY": SECRET,
            "PIXELTRAIL_DATABASE_URL": url,
            "PIXELTRAIL_MAIL_ALLOW_LOCAL": "1",  # aiosmtpd runs on this machine
        }
    )


def _database(kind: str, tmp: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", None
    base = os.environ.get(
        "PIXELTRAIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(make_url(base), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), (admin, schema)


@dataclass
class Sink:
    port: int
    pid: int
    received: Any
    size: Any

    def reset(self) -> None:
        with self.received.get_lock():
            self.received.value = 0
            self.size.value = 0


@dataclass(frozen=True)
class Result:
    sender: str
    workers: int
    rate: float
    client_cpu_us: float  # CPU of the sending processes per message
    sink_cpu_us: float  # CPU of the SMTP server per message
    sink_core: float  # share of one core the SMTP server used during the run
    size: int  # mean message size received


def _timed(sender: str, sink: Sink, procs: list[multiprocessing.Process], expected: int) -> Result:
    sink.reset()
    cpu, sink_cpu = _children_cpu(), _cpu_seconds(sink.pid)
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    cpu, sink_cpu = _children_cpu() - cpu, _cpu_seconds(sink.pid) - sink_cpu
    received = sink.received.value
    if received != expected or any(p.exitcode for p in procs):
        raise SystemExit(f"{sender}/{len(procs)}: {received} received, {expected} expected")
    return Result(
        sender,
        len(procs),
        expected / elapsed,
        cpu / expected * 1e6,
        sink_cpu / expected * 1e6,
        sink_cpu / elapsed,
        sink.size.value // expected,
    )


def run(kind: str, workers: int, count_messages: int, sink: Sink) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        url, cleanup = _database(kind, tmp)
        try:
            engine = make_engine(url)
            upgrade(engine)
            settings = _settings(url, tmp)
            with write_transaction(engine) as conn:
                make_chain(
                    conn,
                    settings,
                    smtp_url=f"smtp://127.0.0.1:{sink.port}?starttls=off",
                    emails=[f"r{n}@example.org" for n in range(count_messages)],
                    steps=[("News for {{ first_name }}", HTML, 0)],
                    daily_limit=10 * count_messages,
                )
                schedule_due(conn, settings, now_ms())
            procs = [
                multiprocessing.Process(target=_worker, args=(url, str(tmp)))
                for _ in range(workers)
            ]
            result = _timed(kind, sink, procs, count_messages)
            with engine.connect() as conn:
                sent = conn.execute(
                    select(func.count()).select_from(messages).where(messages.c.status == "sent")
                ).scalar_one()
            engine.dispose()
            if sent != count_messages:
                raise SystemExit(f"{kind}/{workers}: {sent} marked sent, {count_messages} expected")
            return result
        finally:
            if cleanup is not None:
                admin, schema = cleanup
                with admin.connect() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()


def reference(workers: int, count_messages: int, sink: Sink, size: int) -> Result:
    data = _reference_message(size)
    shares = [count_messages // workers + (n < count_messages % workers) for n in range(workers)]
    procs = [
        multiprocessing.Process(target=_reference_client, args=(sink.port, share, data))
        for share in shares
    ]
    return _timed("reference", sink, procs, count_messages)


def _row(r: Result, ceiling: Result | None) -> str:
    sender = {
        "sqlite": "pixeltrail, SQLite",
        "postgresql": "pixeltrail, PostgreSQL",
        "reference": "reference: prebuilt message, aiosmtplib only",
    }[r.sender]
    ratio = f"{r.rate / ceiling.rate:.2f}" if ceiling is not None else ""
    return (
        f"| {r.workers} | {sender} | {r.rate:,.0f} | {ratio} | {r.client_cpu_us:,.0f} | "
        f"{r.sink_cpu_us:,.0f} | {r.sink_core:.0%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    port = _free_port()
    ready, received = multiprocessing.Event(), multiprocessing.Value("i", 0)
    size = multiprocessing.Value("q", 0, lock=False)
    server = multiprocessing.Process(
        target=_smtp_server, args=(port, ready, received, size), daemon=True
    )
    server.start()
    ready.wait(10)
    assert server.pid is not None
    sink = Sink(port, server.pid, received, size)
    load_before = os.getloadavg()
    rows: list[str] = []
    summary: list[str] = []
    best_two = 0.0
    try:
        for workers in (1, 2):
            # The reference sits between the two databases' runs: the machine's load drifts.
            sqlite = run("sqlite", workers, args.messages, sink)
            ceiling = reference(workers, args.messages, sink, sqlite.size)
            postgresql = run("postgresql", workers, args.messages, sink)
            for r in (ceiling, sqlite, postgresql):
                print(
                    f"{r.sender:10} {r.workers} process(es): {r.rate:7.0f} messages/s, "
                    f"{r.client_cpu_us:5.0f} µs sender CPU and {r.sink_cpu_us:4.0f} µs "
                    f"server CPU per message, server {r.sink_core:.0%} of a core",
                    flush=True,
                )
                rows.append(_row(r, None if r is ceiling else ceiling))
            best = best_two = max(sqlite.rate, postgresql.rate)
            summary.append(
                f"- {workers} worker(s): best {best:,.0f} messages/s "
                f"({best / ceiling.rate:.2f} of the reference, {ceiling.rate:,.0f}); "
                f"mean message {sqlite.size:,} bytes"
            )
    finally:
        server.terminate()
    load_after = os.getloadavg()
    goal = "met" if best_two >= 1000 else "not met"
    table = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `.venv/bin/python bench/sending.py "
        f"--messages {args.messages} --write`: {os.cpu_count()} cores (shared with other "
        f"processes; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}), "
        f"Python {platform.python_version()}, aiosmtpd {version('aiosmtpd')}, aiosmtplib "
        f"{version('aiosmtplib')}; {CONCURRENCY} SMTP connections per sending process; one "
        "run each.",
        "",
        "| processes | sender | messages/s | of the reference | sender CPU µs per message "
        "| SMTP server CPU µs per message | SMTP server core used |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        *summary,
        f"- goal 1,000 messages/s with two workers: {goal}",
    ]
    section = "\n".join(table)
    print(section)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        content = doc.read_text()
        block = f"{DOC_START}\n{section}\n{DOC_END}"
        if DOC_START in content:
            head, rest = content.split(DOC_START, 1)
            content = head + block + rest.split(DOC_END, 1)[1]
        else:
            content += f"\n## Sending: claim to accepted by SMTP\n\n{block}\n"
        doc.write_text(content)


if __name__ == "__main__":
    main()
