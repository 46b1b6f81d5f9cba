"""Running the HTTP process's app under an HTTP server: granian (default) or uvicorn.

Both run the app in this process, on one event loop (uvloop), with the ASGI lifespan, no
access log and no proxy-header handling (X-Forwarded-For is read by the app, and only from
PIXELTRAIL_TRUSTED_PROXIES). SIGTERM and Ctrl+C stop accepting, let the requests under way
finish and run the lifespan shutdown (spool closed, background process stopped) before exit.

uvicorn speaks ASGI only. granian is given the app on its own interface, RSGI (rsgi.py): the
tracking routes answered without ASGI's per-request dicts and awaits, the rest bridged to the
same ASGI app; the lifespan is then run here, around the server.

granian listens with SO_REUSEPORT: a second server started on the same port would share it,
the kernel handing each connection to one or the other. `check_port` tells before start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import socket
from typing import Any

import uvloop

from pixeltrail.web import inline
from pixeltrail.web.rsgi import Lifespan, RsgiApp
from pixeltrail.web.tracking import MAX_HEADER_BYTES, ASGIApp, TrackingApp

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# granian's HTTP/1 read buffer bounds a request's line and headers together (16 KiB): beyond it,
# granian answers 431 before the app sees the request (hyper's smallest buffer is 8 KiB).
HEAD_LIMIT = MAX_HEADER_BYTES


def _addresses(host: str, port: int) -> list[tuple[socket.AddressFamily, Any]]:
    found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return list(dict.fromkeys((family, address) for family, _, _, _, address in found))


class PortUnavailable(Exception):
    """host:port cannot be listened on; `in_use` when another socket holds it."""

    def __init__(self, message: str, in_use: bool = False) -> None:
        super().__init__(message)
        self.in_use = in_use


def check_port(host: str, port: int) -> None:
    """PortUnavailable unless host:port can be this server's alone: bound as a lone server
    binds, with SO_REUSEADDR (a closed server's connections in TIME_WAIT do not count) and
    without SO_REUSEPORT, which a listener with SO_REUSEPORT refuses too."""
    try:
        addresses = _addresses(host, port)
    except socket.gaierror as exc:
        raise PortUnavailable(f"cannot listen on {host}: {exc.strerror}") from None
    for family, address in addresses:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortUnavailable(
                        f"port {port} on {host} is already in use", True
                    ) from None
                raise PortUnavailable(
                    f"cannot listen on port {port} on {host}: {exc.strerror}"
                ) from None


def granian_address(host: str) -> str:
    """The IP address granian listens on for `host`: granian takes an address, not a name, so
    a name (`localhost`) is resolved here, its first IPv4 address preferred, as uvicorn binds
    it."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    try:
        addresses = _addresses(host, 0)
    except socket.gaierror as exc:
        raise PortUnavailable(f"cannot listen on {host}: {exc.strerror}") from None
    ordered = sorted(addresses, key=lambda item: item[0] != socket.AF_INET)
    return str(ordered[0][1][0])


def run_http_server(
    name: str,
    app: ASGIApp,
    host: str,
    port: int,
    log_level: str,
    tracking: TrackingApp,
    reuse_port: bool = False,
) -> None:
    """Serve `app` on host:port with `name` (PIXELTRAIL_HTTP_SERVER) until SIGTERM or SIGINT;
    SystemExit(1) when the app's start-up failed. granian always listens with SO_REUSEPORT;
    uvicorn only with `reuse_port`."""
    if name == "uvicorn":
        _run_uvicorn(app, host, port, log_level, reuse_port)
    else:
        uvloop.run(_serve_granian(app, tracking, host, port, log_level))


def _run_uvicorn(app: ASGIApp, host: str, port: int, log_level: str, reuse_port: bool) -> None:
    import uvicorn  # noqa: PLC0415 (only when chosen)

    config = uvicorn.Config(
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
    server = uvicorn.Server(config)
    # What uvicorn.run does, but sharing the port takes sockets bound here: uvicorn binds
    # its own without SO_REUSEPORT.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=_shared_sockets(host, port) if reuse_port else None)
    if not server.started:
        raise SystemExit(1)


def _shared_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets on host:port with SO_REUSEPORT, one per address (IPv6 ones IPv6 only, as
    uvicorn's own are)."""
    sockets: list[socket.socket] = []
    for family, address in _addresses(host, port):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            sock.close()
            for bound in sockets:
                bound.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortUnavailable(f"port {port} on {host} is already in use", True) from None
            raise
        sockets.append(sock)
    return sockets


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
        address=granian_address(host),
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
    except RuntimeError as exc:  # granian's bind error, with a Rust backtrace in its text
        if "Address already in use" not in str(exc):
            raise
        raise PortUnavailable(f"port {port} on {host} is already in use", True) from None
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
