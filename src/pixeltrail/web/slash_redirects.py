"""Trailing-slash redirects that stay on this site: a Location of the path alone, never a host.

Starlette's routers answer `/campaigns/` with a redirect to an absolute URL built from the
request, its Host header included, so `Host: evil.example` made the Location
`http://evil.example/campaigns`. `redirect_slashes_here` switches that off for a router and
does the same lookup itself: when the path with (or without) its trailing slash is a route of
the router, the answer is a 307 to that path and the query string, relative to this host.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import Receive, Scope, Send


def redirect_slashes_here(router: Router) -> None:
    """Make `router` redirect `/x/` to `/x` (and `/x` to `/x/`) relatively, not through Host."""
    router.redirect_slashes = False
    not_found = router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        location = _other_spelling(router, scope)
        if location is None:
            await not_found(scope, receive, send)
        else:
            await RedirectResponse(location)(scope, receive, send)

    router.default = default


def _other_spelling(router: Router, scope: Scope) -> str | None:
    """The Location of the route the path names with its trailing slash toggled, if any."""
    if scope["type"] != "http":
        return None
    path: str = scope["path"]
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    # Two slashes (or a backslash, which browsers read as one) begin a Location on another
    # host: `//evil.example` is never a path of ours. `/` has no other spelling.
    if not other.startswith("/") or other[1:2] in {"/", "\\"}:
        return None
    moved = {**scope, "path": other}
    if all(route.matches(moved)[0] is Match.NONE for route in router.routes):
        return None
    query: bytes = scope.get("query_string", b"")
    return f"{other}?{query.decode('latin-1')}" if query else other
