"""Running the HTTP process's app under an HTTP server: granian (default) or uvicorn.

Both run the app in this process, on one event loop (uvloop), with the ASGI lifespan, no
access log and no proxy-header handling (X-Forwarded-For is read by the app, and only from
PIXELTRAIL_TRUSTED_PROXIES). SIGTERM and Ctrl+C stop accepting, let the requests under way
finish and run the lifespan shutdown (spool closed, background process stopped) before exit.

uvicorn speaks ASGI only. granian is given the app on its own interface, RSGI (rsgi.py): the
tracking routes answered without ASGI's per-request dicts and awaits, the rest bridged to the
same ASGI app; the lifespan is then run here, around the server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import uvloop

from pixeltrail.web import inline
from pixeltrail.web.rsgi import Lifespan, RsgiApp
from pixeltrail.web.tracking import MAX_HEADER_BYTES, ASGIApp, TrackingApp

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# granian's HTTP/1 read buffer bounds a request's line and headers together (16 KiB): beyond it,
# granian answers 431 before the app sees the request (hyper's smallest buffer is 8 KiB).
HEAD_LIMIT = MAX_HEADER_BYTES


def run_http_server(
    name: str, app: ASGIApp, host: str, port: int, log_level: str, tracking: TrackingApp
) -> None:
    """Serve `app` on host:port with `name` (PIXELTRAIL_HTTP_SERVER) until SIGTERM or SIGINT;
    SystemExit(1) when the app's start-up failed."""
    if name == "uvicorn":
        _run_uvicorn(app, host, port, log_level)
    else:
        uvloop.run(_serve_granian(app, tracking, host, port, log_level))


def _run_uvicorn(app: ASGIApp, host: str, port: int, log_level: str) -> None:
    import uvicorn  # noqa: PLC0415 (only when chosen)

    uvicorn.run(
        app,
        host=host,
        port=port,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
    )


async def _serve_granian(
    app: ASGIApp, tracking: TrackingApp, host: str, port: int, log_level: str
) -> None:
    # granian's embedded server runs its worker on this event loop, in this process, like
    # uvicorn: one process to pin, watch and signal. The multi-process server would add a
    # parent process between `serve` and the background process it starts.
    from granian.constants import HTTPModes, Interfaces  # noqa: PLC0415
    from granian.http import HTTP1Settings  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415
    from granian.server.embed import Server as Granian  # noqa: PLC0415

    lifespan = Lifespan(app)
    failed = await lifespan.startup()
    if failed is not None:  # the app has logged why
        raise SystemExit(1)
    rsgi_app = RsgiApp(tracking, lifespan.state)
    server = Granian(
        rsgi_app,
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(max_buffer_size=HEAD_LIMIT),
        websockets=False,
        backlog=1024,
        log_level=LogLevels(log_level),
        log_dictconfig=_granian_logging(log_level),
        log_access=False,
    )
    received: list[signal.Signals] = []

    def stop(sig: signal.Signals) -> None:
        received.append(sig)
        server.stop()  # type: ignore[no-untyped-call]

    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    try:
        with inline.install(rsgi_app.answer_inline):
            await server.serve()
    finally:
        await lifespan.shutdown()
    if server.interrupt_children:  # the worker ended by itself
        raise SystemExit(1)
    if received:
        # As uvicorn does: once shut down, die of the signal, so the exit status says why.
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        signal.raise_signal(received[0])


def _granian_logging(log_level: str) -> dict[str, Any]:
    """granian's own messages go to the same stderr handler as ours, at our level; its
    warning that embedding is experimental is left out (embedding is what is tested here)."""
    return {
        "filters": {"no_experimental": {"()": _NotExperimental}},
        "loggers": {
            "_granian": {
                "handlers": [],
                "level": log_level.upper(),
                "propagate": True,
                "filters": ["no_experimental"],
            },
        },
    }


class _NotExperimental(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()
