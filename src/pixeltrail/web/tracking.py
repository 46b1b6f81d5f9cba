"""The tracking routes as a raw ASGI app: /o/<token> pixel, /c/<token> redirect, and friends.

This is the hot path: verify the token, append the hit to the spool, answer. No framework,
no database, no awaits but the two sends. A bad token never breaks anything a reader sees:
a pixel is always a pixel, a bad click link a short 404 page. A token bound to one account
is a bad token on another account's tracking domain: nothing is recorded, a click gets the
404 page (`AllowedHosts.served_for` says whose tokens a host answers).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from pixeltrail.recording.spool import Spool
from pixeltrail.tracking.hitline import compiled_hit_line
from pixeltrail.tracking.hits import Hit, HitKind, new_event_id, spool_line
from pixeltrail.tracking.tokens import ANY_ACCOUNT, InvalidToken, TokenSigner
from pixeltrail.web.client_ip import ClientAddress
from pixeltrail.web.location import to_location

if TYPE_CHECKING:
    from pixeltrail.web.hosts import AllowedHosts

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
HealthReport = Callable[[], tuple[bool, dict[str, Any]]]

log = logging.getLogger("pixeltrail.tracking")

MAX_TARGET_BYTES = 8192
MAX_HEADER_BYTES = 16384
MAX_USER_AGENT = 1024

# The classic 43-byte transparent 1x1 GIF.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
_NO_INDEX = (b"x-robots-tag", b"noindex, nofollow")
_PIXEL_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", b"43"),
    (b"cache-control", b"no-cache, no-store, must-revalidate, private"),
    (b"pragma", b"no-cache"),
    (b"expires", b"Thu, 01 Jan 1970 00:00:00 GMT"),
    _NO_INDEX,
]
# What follows the Location header of every redirect (an empty body).
_REDIRECT_TAIL = ((b"cache-control", b"no-store"), _NO_INDEX, (b"content-length", b"0"))
_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><meta name=robots content=noindex>"
    "<title>{title}</title><body style='font:16px system-ui;margin:3em'><p>{text}</p>"
)
BAD_LINK_PAGE = _PAGE.format(
    title="Link not valid", text="This link is not valid. It may have been cut or changed."
).encode()
EMPTY_PAGE_HTML = _PAGE.format(title="pixeltrail", text="").encode()
_BAD_LINK_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    _NO_INDEX,
    (b"content-length", str(len(BAD_LINK_PAGE)).encode()),
]
_EMPTY_PAGE_HEADERS = [
    (b"content-type", b"text/html"),
    _NO_INDEX,
    (b"content-length", str(len(EMPTY_PAGE_HTML)).encode()),
]
_ROBOTS = b"User-agent: *\nDisallow: /\n"
CADDY_ASK = "/caddy/ask"

# What a tracking request is answered with (`TrackingApp.record`).
Answer = int
PIXEL, BAD_LINK, EMPTY_PAGE, REDIRECT = 0, 1, 2, 3


class TrackingApp:
    """Answers tracking requests; hands everything else to `inner` (API, dashboard)."""

    def __init__(
        self,
        signer: TokenSigner,
        spool: Spool,
        client: ClientAddress,
        health: HealthReport,
        inner: ASGIApp | None = None,
        hosts: AllowedHosts | None = None,
    ) -> None:
        self.signer = signer
        # The check and spool line of valid tokens, compiled; the reference path below does
        # the rest (and all of it without the compiled module).
        self.hit_line = compiled_hit_line(signer)
        self.spool = spool
        self.client = client
        self.health = health
        self.inner = inner
        # None answers on any Host; else only the instance's own and served tracking domains.
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if self.inner is not None:
                await self.inner(scope, receive, send)
            elif scope["type"] == "lifespan":
                await _lifespan_noop(receive, send)
            return
        path: str = scope["path"]
        if path.startswith(("/o/", "/c/")):
            await self._track(scope, send, path)
        elif path == "/robots.txt":
            await _respond(send, 200, [(b"content-type", b"text/plain")], _ROBOTS, scope)
        elif path == "/healthz":
            ok, report = self.health()
            body = json.dumps(report).encode()
            await _respond(
                send, 200 if ok else 503, [(b"content-type", b"application/json")], body, scope
            )
        elif path == CADDY_ASK and self.hosts is not None:
            ok = self.hosts.caddy_may_certify(scope["query_string"])
            text = b"yes\n" if ok else b"not a tracking domain of this instance\n"
            await _respond(
                send, 200 if ok else 404, [(b"content-type", b"text/plain")], text, scope
            )
        elif self.inner is not None:
            await self.inner(scope, receive, send)
        else:
            await _respond(send, 404, [(b"content-type", b"text/plain")], b"Not found\n", scope)

    async def _track(self, scope: Scope, send: Send, path: str) -> None:
        # Every request of a campaign comes here: one pass over the headers, the answers'
        # headers made once at import, the hit written as its spool line without a Hit.
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        host: bytes | None = None
        user_agent: bytes | None = None
        header_bytes = 0
        for name, value in headers:
            header_bytes += len(name) + len(value)
            if name == b"host":
                if host is None:
                    host = value
            elif name == b"user-agent" and user_agent is None:
                user_agent = value
        account = ANY_ACCOUNT if self.hosts is None else self.hosts.served_for(host)
        if account is None:
            await _respond(send, 404, [_NO_INDEX], b"Unknown host\n", scope)
            return
        method: str = scope["method"]
        if method != "GET" and method != "HEAD":  # noqa: PLR1714 (faster than a set here)
            await _respond(send, 405, [(b"allow", b"GET, HEAD"), _NO_INDEX], b"", scope)
            return
        # The token as sent, not as percent-decoded by the server: a re-encoded token
        # is not ours.
        raw_path: bytes = scope.get("raw_path") or path.encode()
        if len(raw_path) + len(scope["query_string"]) > MAX_TARGET_BYTES:
            await _respond(send, 414, [_NO_INDEX], b"URI too long\n", scope)
            return
        if header_bytes > MAX_HEADER_BYTES:
            await _respond(send, 431, [_NO_INDEX], b"Request headers too large\n", scope)
            return
        is_open = path[1] == "o"
        token = raw_path[3:].decode("latin-1").rstrip("/")
        answer, destination = self.record(
            is_open,
            token,
            method,
            lambda: self.client.of(scope),
            (user_agent or b"")[:MAX_USER_AGENT].decode("utf-8", "replace"),
            account,
        )
        head = method == "HEAD"
        if answer == PIXEL:
            await _send(send, 200, _PIXEL_HEADERS, b"" if head else PIXEL_GIF)
        elif answer == BAD_LINK:
            await _send(send, 404, _BAD_LINK_HEADERS, b"" if head else BAD_LINK_PAGE)
        elif answer == EMPTY_PAGE:  # the honeypot: nothing to go to
            await _send(send, 200, _EMPTY_PAGE_HEADERS, b"" if head else EMPTY_PAGE_HTML)
        else:
            assert destination is not None
            location = _location(destination)
            await _send(send, 302, [(b"location", location), *_REDIRECT_TAIL], b"")

    def record(
        self,
        is_open: bool,
        token: str,
        method: str,
        ip: Callable[[], str],
        user_agent: str,
        account: bytes,
    ) -> tuple[Answer, str | None]:
        """Verify a tracking token and spool its hit: what to answer, and where to (a click's
        destination). `account` is whose tokens the host answers (`AllowedHosts.served_for`).
        The HTTP servers' interfaces (ASGI here, RSGI in rsgi.py) answer it."""
        if self.hit_line is not None:
            found = self.hit_line(token, is_open, ip(), user_agent, method, account)
            if found is not None:
                line, destination = found
                self.spool.append_line(line, lambda: Hit.from_json(line))
                if is_open:
                    return PIXEL, None
                return (EMPTY_PAGE, None) if destination is None else (REDIRECT, destination)
        try:
            claims = self.signer.verify(token)
        except InvalidToken as exc:
            log.info("rejected %s token: %s", "o" if is_open else "c", exc.reason)
            claims = None
        if claims is not None and not claims.answered_on(account):
            log.info(
                "rejected %s token: bound to another account than this tracking domain's",
                "o" if is_open else "c",
            )
            claims = None
        if claims is None or claims.kind != ("open" if is_open else "click"):
            return (PIXEL if is_open else BAD_LINK), None
        kind: HitKind = "open" if is_open else "click"
        fields = (
            new_event_id(),
            kind,
            claims.message_id,
            claims.link,
            claims.destination,
            time.time_ns() // 1_000_000,
            ip(),
            user_agent,
            method,
            claims.honeypot,
        )
        self.spool.append_line(spool_line(*fields), lambda: Hit(*fields))
        if is_open:
            return PIXEL, None
        if claims.destination is None:
            return EMPTY_PAGE, None
        return REDIRECT, claims.destination


@functools.lru_cache(maxsize=1024)
def _location(destination: str) -> bytes:
    """The Location header of a destination: clicks repeat a campaign's few destinations."""
    return to_location(destination).encode("ascii")


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """An answer whose headers already carry its content-length."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, scope: Scope
) -> None:
    if not any(name == b"content-length" for name, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _lifespan_noop(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
