"""Domain errors: what went wrong in the user's terms, with the field it concerns."""

from __future__ import annotations


class PlatformError(Exception):
    """Base: `message` is for people, `field` names the input it concerns (if any)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(PlatformError):
    """No such thing in this account (another account's ids answer exactly the same)."""

    status = 404
    code = "not_found"


class Invalid(PlatformError):
    status = 422
    code = "invalid"


class Forbidden(PlatformError):
    """Signed in, but this user's role may not do it (an owner may)."""

    status = 403
    code = "forbidden"


class Conflict(PlatformError):
    status = 409
    code = "conflict"


class Unauthorized(PlatformError):
    status = 401
    code = "unauthorized"
