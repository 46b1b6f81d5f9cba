"""The session cookie: its name, its flags, and the double check of every form's CSRF token."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from pixeltrail.platform.accounts.users import SESSION_DAYS

COOKIE = "pt_session"
FLASH_COOKIE = "pt_flash"
PRE_CSRF_COOKIE = "pt_csrf"
CSRF_FIELD = "csrf_token"


def is_https(request: Request) -> bool:
    """Served over HTTPS: directly, or behind a proxy the server trusts (client_ip sets scheme)."""
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_DAYS * 86_400,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def csrf_ok(expected: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


def same_origin(request: Request) -> bool:
    """A form post comes from our own pages: Origin (or Referer) names this host, when sent."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    rest = origin.split("://", 1)[-1]
    return rest == host or rest.startswith(host + "/")
