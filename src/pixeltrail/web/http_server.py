"""Running the HTTP process's ASGI app under an HTTP server: granian (default) or uvicorn.

Both run the app in this process, on one event loop (uvloop), with the ASGI lifespan, no
access log and no proxy-header handling (X-Forwarded-For is read by the app, and only from
PIXELTRAIL_TRUSTED_PROXIES). SIGTERM and Ctrl+C stop accepting, let the requests under way
finish and run the lifespan shutdown (spool closed, background process stopped) before exit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import uvloop

from pixeltrail.web.tracking import ASGIApp

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_http_server(name: str, app: ASGIApp, host: str, port: int, log_level: str) -> None:
    """Serve `app` on host:port with `name` (PIXELTRAIL_HTTP_SERVER) until SIGTERM or SIGINT;
    SystemExit(1) when the app's start-up failed."""
    if name == "uvicorn":
        _run_uvicorn(app, host, port, log_level)
    else:
        uvloop.run(_serve_granian(app, host, port, log_level))


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


async def _serve_granian(app: ASGIApp, host: str, port: int, log_level: str) -> None:
    # granian's embedded server runs its worker on this event loop, in this process, like
    # uvicorn: one process to pin, watch and signal. The multi-process server would add a
    # parent process between `serve` and the background process it starts.
    from granian.constants import HTTPModes, Interfaces  # noqa: PLC0415
    from granian.errors import FatalError  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415
    from granian.server.embed import Server as Granian  # noqa: PLC0415

    server = Granian(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
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
        await server.serve()
    except FatalError:  # the lifespan start-up failed, and the app has logged why
        raise SystemExit(1) from None
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
