"""Sending throughput: messages per second from claim to accepted by a local SMTP server.

10,000 messages (rendered for their contact, instrumented, built as MIME) go to aiosmtpd on
loopback, running in its own process, with one worker process and then two, on SQLite and on
PostgreSQL. Every message must arrive exactly once.

    .venv/bin/python bench/sending.py [--messages 10000] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import secrets
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.chain import make_chain  # noqa: E402

from pixeltrail.config import Settings  # noqa: E402
from pixeltrail.platform.ids import now_ms  # noqa: E402
from pixeltrail.platform.scheduler import schedule_due  # noqa: E402
from pixeltrail.sending.worker import SendWorker  # noqa: E402
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


def _smtp_server(port: int, ready: Any, count: Any) -> None:
    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


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


def run(kind: str, workers: int, count_messages: int, smtp_port: int, received: Any) -> float:
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
                    smtp_url=f"smtp://127.0.0.1:{smtp_port}?starttls=off",
                    emails=[f"r{n}@example.org" for n in range(count_messages)],
                    steps=[("News for {{ first_name }}", HTML, 0)],
                    daily_limit=10 * count_messages,
                )
                schedule_due(conn, settings, now_ms())
            with received.get_lock():
                received.value = 0
            start = time.perf_counter()
            procs = [
                multiprocessing.Process(target=_worker, args=(url, str(tmp)))
                for _ in range(workers)
            ]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            elapsed = time.perf_counter() - start
            with engine.connect() as conn:
                sent = conn.execute(
                    select(func.count()).select_from(messages).where(messages.c.status == "sent")
                ).scalar_one()
            engine.dispose()
            if sent != count_messages or received.value != count_messages:
                raise SystemExit(
                    f"{kind}/{workers}: {sent} marked sent, {received.value} received, "
                    f"{count_messages} expected"
                )
            return count_messages / elapsed
        finally:
            if cleanup is not None:
                admin, schema = cleanup
                with admin.connect() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    port = _free_port()
    ready, received = multiprocessing.Event(), multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=_smtp_server, args=(port, ready, received), daemon=True)
    server.start()
    ready.wait(10)
    rows = []
    try:
        for kind in ("sqlite", "postgresql"):
            for workers in (1, 2):
                rate = run(kind, workers, args.messages, port, received)
                rows.append((kind, workers, rate))
                print(f"{kind:10} {workers} worker(s): {rate:7.0f} messages/s", flush=True)
    finally:
        server.terminate()
    table = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} with `.venv/bin/python bench/sending.py "
        f"--messages {args.messages}` on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Each message is rendered for its contact, instrumented "
        "(8 links and the pixel), built as MIME and accepted by aiosmtpd on loopback (its own "
        "process); every run checks that each message arrived exactly once.",
        "",
        "| database | workers | messages/s |",
        "| --- | ---: | ---: |",
        *(f"| {k} | {w} | {r:,.0f} |" for k, w, r in rows),
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
