"""Python cost of one tracking request: the HTTP process's ASGI app called directly, no server.

The app of `pixeltrail serve` (`Server`, as the HTTP server calls it) answers `/o/<token>` and
`/c/<token>` in a loop with a made-up receive and send, against an ASGI app that only answers
(the floor of calling any app this way), in the same process, interleaved. Reports the CPU
time per request (best of --repeat), and with --profile the functions that take it.

    .venv/bin/python bench/tracking_app.py [--requests 20000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pixeltrail.config import Settings
from pixeltrail.runtime.http_process import Server
from pixeltrail.tracking.tokens import new_message_id
from pixeltrail.web.tracking import PIXEL_GIF

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
SECRET = "bench-only-secret-key-0123456789"
AGENT = (
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/124.0.0.0 Safari/537.36"
)
DESTINATION = (
    "https://www.northwind-outfitters.com/products/alpine-trail-jacket?variant=4101"
    "&utm_source=newsletter&utm_medium=email&utm_campaign=2024-06-summer&utm_content=link-{}"
)
_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", b"43")]


async def answer_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": PIXEL_GIF})


async def _ignore(message: dict[str, Any]) -> None:
    return None


def scopes(paths: list[str]) -> list[dict[str, Any]]:
    """What an HTTP server hands the app for each path (fresh dicts, as servers make them)."""
    return [
        {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": p,
            "raw_path": p.encode(),
            "query_string": b"",
            "root_path": "",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", AGENT)],
            "state": {},
        }
        for p in paths
    ]


def cpu_per_request(app: App, paths: list[str], requests: int, repeat: int) -> float:
    async def loop(batch: list[dict[str, Any]]) -> None:
        for scope in batch:
            await app(scope, None, _ignore)

    best = float("inf")
    for _ in range(repeat):
        batch = scopes([paths[i % len(paths)] for i in range(requests)])
        started = time.process_time()
        asyncio.run(loop(batch))
        best = min(best, time.process_time() - started)
    return best / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pixeltrail-app-") as folder:
        settings = Settings(
            data_dir=Path(folder),
            secret_keys=SECRET,
            base_url="http://127.0.0.1:8000",
            database_url=f"sqlite:///{folder}/pixeltrail.db",
        )
        server = Server(settings)
        links = settings.link_builder()
        ids = [new_message_id() for _ in range(1000)]
        paths = {
            "/o/<token>": [urlsplit(links.open_url(m)).path for m in ids],
            "/c/<token>": [
                urlsplit(links.click_url(m, i % 40 + 1, DESTINATION.format(i % 40 + 1))).path
                for i, m in enumerate(ids)
            ],
            "/c/<bad token>": ["/c/" + "A" * 42],
        }
        app: App = server
        cpu_per_request(app, paths["/o/<token>"], 1000, 1)  # warm up
        print(f"CPU µs per request, best of {args.repeat} x {args.requests:,} requests:")
        for name, some in paths.items():
            floor = cpu_per_request(answer_only, some, args.requests, args.repeat)
            ours = cpu_per_request(app, some, args.requests, args.repeat)
            print(f"  {name:15} pixeltrail {ours:5.1f}, an app that only answers {floor:4.1f}")
        if args.profile:
            for name in ("/o/<token>", "/c/<token>"):
                profile = cProfile.Profile()
                profile.runcall(cpu_per_request, app, paths[name], args.requests, 1)
                print(f"\n{name}:")
                pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(15)
        server.spool.close()
        server.engine.dispose()


if __name__ == "__main__":
    main()
