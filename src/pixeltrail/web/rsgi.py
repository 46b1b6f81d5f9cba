"""The HTTP process's app on granian's own interface (RSGI): tracking answered natively, the
rest (API, dashboard, unsubscribe, health) through a small bridge to the ASGI app.

RSGI hands the app the request's fields as attributes and takes the whole answer in one
synchronous call, where ASGI builds a dict per request and awaits two sends: on the tracking
routes that is about a fifth of the CPU of a request (docs/benchmarks.md). Only the tracking
routes need it; everything else keeps its ASGI app (Starlette), called with the scope and
messages it expects. The ASGI lifespan is run by `Lifespan` around the server.

What RSGI gives differs from ASGI in two ways that matter here: the path is percent-decoded
(`/c/%41…` is the token `A…`, which RFC 3986 counts as the same URI), and header values that
are not UTF-8 are left out by granian (such a user agent is recorded as empty).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, MutableMapping
from typing import TYPE_CHECKING, Any

from pixeltrail.tracking.tokens import ANY_ACCOUNT
from pixeltrail.web.location import to_location
from pixeltrail.web.tracking import (
    BAD_LINK,
    BAD_LINK_PAGE,
    EMPTY_PAGE,
    EMPTY_PAGE_HTML,
    MAX_TARGET_BYTES,
    MAX_USER_AGENT,
    PIXEL,
    PIXEL_GIF,
    ASGIApp,
    Message,
    TrackingApp,
)

if TYPE_CHECKING:
    from granian._granian import RSGIHTTPProtocol as HTTPProtocol
    from granian.rsgi import Scope as RSGIScope

_NO_INDEX = ("x-robots-tag", "noindex, nofollow")
_PIXEL_HEADERS = [
    ("content-type", "image/gif"),
    ("cache-control", "no-cache, no-store, must-revalidate, private"),
    ("pragma", "no-cache"),
    ("expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
    _NO_INDEX,
]
_REDIRECT_TAIL = (("cache-control", "no-store"), _NO_INDEX)
_BAD_LINK_HEADERS = [("content-type", "text/html; charset=utf-8"), _NO_INDEX]
_EMPTY_PAGE_HEADERS = [("content-type", "text/html"), _NO_INDEX]
_PLAIN = [("content-type", "text/plain"), _NO_INDEX]


class RsgiApp:
    """`TrackingApp` (and its inner ASGI app) as an RSGI application."""

    def __init__(self, tracking: TrackingApp, state: MutableMapping[str, Any]) -> None:
        self.tracking = tracking
        # The ASGI lifespan state, copied into every bridged request's scope.
        self.state = state

    async def __rsgi__(self, scope: RSGIScope, proto: HTTPProtocol) -> None:
        if not self.answer_inline(scope, proto):
            await _bridge(self.tracking, scope, proto, self.state)

    def answer_inline(self, scope: RSGIScope, proto: HTTPProtocol) -> bool:
        """Answer a tracking request, synchronously (inline.py calls this where granian hands
        the request over); False for the rest, which goes to the ASGI app."""
        path = scope.path
        if path.startswith(("/o/", "/c/")) and scope.proto == "http":
            self._track(scope, proto, path)
            return True
        return False

    def _track(self, scope: RSGIScope, proto: HTTPProtocol, path: str) -> None:
        # Header sizes are refused by granian itself (its HTTP/1 buffer, `HEAD_LIMIT`).
        headers = scope.headers
        tracking = self.tracking
        hosts = tracking.hosts
        account = ANY_ACCOUNT if hosts is None else hosts.served_for(headers.get("host"))
        if account is None:
            proto.response_bytes(404, _PLAIN, b"Unknown host\n")
            return
        method = scope.method
        if method != "GET" and method != "HEAD":  # noqa: PLR1714 (faster than a set here)
            proto.response_bytes(405, [("allow", "GET, HEAD"), _NO_INDEX], b"")
            return
        if len(path) + len(scope.query_string) > MAX_TARGET_BYTES:
            proto.response_bytes(414, _PLAIN, b"URI too long\n")
            return
        is_open = path[1] == "o"
        answer, destination = tracking.record(
            is_open,
            path[3:].rstrip("/"),
            method,
            lambda: tracking.client.of_peer(_split(scope.client)[0], lambda: _forwarded(scope)),
            (headers.get("user-agent") or "")[:MAX_USER_AGENT],
            account,
        )
        # The body even to HEAD: granian sends its length and leaves the body out.
        if answer == PIXEL:
            proto.response_bytes(200, _PIXEL_HEADERS, PIXEL_GIF)
        elif answer == BAD_LINK:
            proto.response_bytes(404, _BAD_LINK_HEADERS, BAD_LINK_PAGE)
        elif answer == EMPTY_PAGE:  # the honeypot: nothing to go to
            proto.response_bytes(200, _EMPTY_PAGE_HEADERS, EMPTY_PAGE_HTML)
        else:
            assert destination is not None
            proto.response_empty(302, _redirect_headers(destination))


@functools.lru_cache(maxsize=1024)
def _redirect_headers(destination: str) -> list[tuple[str, str]]:
    """A redirect's headers: clicks repeat a campaign's few destinations (granian only
    reads the list)."""
    return [("location", to_location(destination)), *_REDIRECT_TAIL]


def _forwarded(scope: RSGIScope) -> list[str]:
    return [value for name, value in scope.headers.items() if name == "x-forwarded-for"]


def _split(address: str) -> tuple[str, str]:
    """Host and port of RSGI's "host:port" (IPv6 in brackets)."""
    host, _, port = address.rpartition(":")
    return (host[1:-1] if host.startswith("[") else host), port


def _address(value: str) -> tuple[str, int] | None:
    """ASGI's (host, port), or None without a port."""
    host, port = _split(value)
    return (host, int(port)) if port.isdigit() else None


async def _bridge(
    app: ASGIApp, scope: RSGIScope, proto: HTTPProtocol, state: MutableMapping[str, Any]
) -> None:
    """Serve one RSGI request with an ASGI app: its scope, its body as `http.request`
    messages, its answer, whole or streamed."""
    asgi_scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,
        "query_string": scope.query_string.encode("latin-1", "replace"),
        "root_path": "",
        "headers": [
            (name.encode("latin-1"), value.encode("utf-8")) for name, value in scope.headers.items()
        ],
        "client": _address(scope.client),
        "server": _address(scope.server),
        "state": dict(state),
    }
    body = _Body(proto)
    answer = _Answer(proto)
    await app(asgi_scope, body.receive, answer.send)
    await answer.finish()


class _Body:
    def __init__(self, proto: HTTPProtocol) -> None:
        self.proto = proto
        self.chunks: AsyncIterator[bytes] = aiter(proto)
        self.done = False

    async def receive(self) -> Message:
        if self.done:
            await self.proto.client_disconnect()
            return {"type": "http.disconnect"}
        try:
            chunk = await anext(self.chunks)
        except StopAsyncIteration:
            self.done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": bytes(chunk), "more_body": True}


class _Answer:
    def __init__(self, proto: HTTPProtocol) -> None:
        self.proto = proto
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.started = False
        self.stream: Any = None
        self.finished = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", [])
            ]
            self.started = True
        elif message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            if self.stream is None and not more:
                self.proto.response_bytes(self.status, self.headers, body)
                self.finished = True
                return
            if self.stream is None:
                self.stream = self.proto.response_stream(self.status, self.headers)
            if body:
                await self.stream.send_bytes(body)
            if not more:
                self.finished = True

    async def finish(self) -> None:
        """An app that ended without answering: 500 (as ASGI servers do)."""
        if not self.started:
            self.proto.response_bytes(500, [("content-type", "text/plain")], b"Internal error\n")


class Lifespan:
    """Runs an ASGI app's lifespan (start-up, shut-down) around a server that has none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Future[None] | None = None

    async def startup(self) -> str | None:
        """None once started; why not, if the app's start-up failed."""
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._task = asyncio.ensure_future(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        answer = await self._from_app.get()
        if answer["type"] == "lifespan.startup.failed":
            await self._task
            return str(answer.get("message", "start-up failed"))
        return None

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        await self._task
