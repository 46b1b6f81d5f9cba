"""What every dashboard page is built from: the signed-in context, CSRF, templates, headers.

A page is a plain function `(ctx: Ctx) -> Response` decorated with `@page` (`@owner_page`
for owners only, `@public_page` for sign-in and set-up, `@upload_page` for a form with a file),
and listed in its area's `routes` with the methods it answers: `route(path, page, "GET")` for a
page, `"POST"` for an action, both for a page with its form. Any other method is a 405 page
(with `Allow`) before the page is called. The decorator runs it in a worker thread, loads the
session from its cookie (no session: redirect to sign-in), parses the form of a POST and refuses
it without the session's CSRF token or from another origin, and turns domain errors into pages:
NotFound is a 404 page (another account's ids answer exactly the same), other PlatformErrors
raised inside `ctx.form_errors(again)` answer `again(error)`, the form's page again with the
error and the values as posted, and any other an error page.
"""

from __future__ import annotations

import functools
import re
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pixeltrail.config import Settings
from pixeltrail.platform.accounts.users import Session, session_of
from pixeltrail.platform.campaigns.status import CampaignStatus, EnrollmentStatus
from pixeltrail.platform.contacts.csv_import import text_encoding
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.errors import Invalid, NotFound, PlatformError
from pixeltrail.platform.webhooks.status import DeliveryStatus
from pixeltrail.store.db import write_transaction
from pixeltrail.web.dashboard.sessions import (
    COOKIE,
    CSRF_FIELD,
    FLASH_COOKIE,
    PRE_CSRF_COOKIE,
    csrf_ok,
    same_origin,
)

TEMPLATES = Path(__file__).parent / "templates"

# Pages load scripts, styles and images from this server only. Email previews and the outbox
# viewer are sandboxed iframes with their own, looser policy (see `email_frame`).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "SAMEORIGIN",
}
# Forms are small; the CSV import posts a file and says so with its own limit.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
FORM_FIELDS = 2000
FORM_PART_SIZE = 1024 * 1024


def _local_time(value: int | float | str | datetime | None, tz: str = "UTC") -> str:
    """Epoch milliseconds, ISO text or a datetime, shown in the account's time zone."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000, UTC)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = _local_time
    env.filters["percent"] = lambda rate: "—" if rate is None else f"{rate * 100:.1f}%"
    env.filters["urlencode_path"] = lambda value: urllib.parse.quote(str(value), safe="")
    # Templates compare statuses with the enums, as the code does.
    env.globals.update(
        CampaignStatus=CampaignStatus,
        EnrollmentStatus=EnrollmentStatus,
        DomainStatus=DomainStatus,
        DeliveryStatus=DeliveryStatus,
    )
    return env


templates = _environment()


Again = Callable[[PlatformError], Response]


class _Refused(Exception):
    """A form refused inside `Ctx.form_errors`: the decorator answers `again(error)`."""

    def __init__(self, error: PlatformError, again: Again) -> None:
        super().__init__(error.message)
        self.error = error
        self.again = again


@dataclass
class Ctx:
    """One request to a page: who asks, what they sent, and how to answer."""

    request: Request
    engine: Engine
    settings: Settings
    session: Session | None
    form: FormData | None
    flash: str | None
    csrf: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def account_id(self) -> str:
        assert self.session is not None
        return self.session.user.account_id

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.path_params)

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params)

    def field(self, name: str, default: str = "") -> str:
        """A text field of the posted form ('' when absent or a file)."""
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default

    def checked(self, name: str) -> bool:
        return self.form is not None and self.form.get(name) in {"on", "true", "1"}

    @contextmanager
    def form_errors(self, again: Again, *, missing: Collection[str] = ()) -> Iterator[None]:
        """Refusals of the form posted, shown on its page: a PlatformError raised in the block
        answers `again(error)`, which renders the page with the error (beside its field) and
        the values as posted, with the error's status. It is called once the page function has
        returned, its transactions closed. NotFound stays the 404 page (the page's own object
        is not there), unless its field is one of `missing`: an input naming something that
        does not exist, such as the contact ids of a form, is the form's error."""
        try:
            yield
        except NotFound as exc:
            if exc.field is None or exc.field not in missing:
                raise
            raise _Refused(exc, again) from exc
        except PlatformError as exc:
            raise _Refused(exc, again) from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with write_transaction(self.engine) as conn:
            yield conn

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        session = self.session
        body = templates.get_template(template).render(
            user=session.user if session else None,
            csrf_field=Markup('<input type="hidden" name="{}" value="{}">').format(
                CSRF_FIELD, self.csrf
            ),
            csrf_token=self.csrf,
            flash=self.flash,
            path=self.request.url.path,
            **values,
        )
        response = HTMLResponse(body, status, headers={**HEADERS, **self.headers})
        if self.flash:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def redirect(self, url: str, flash: str | None = None) -> Response:
        """After a POST: see-other to a page of ours, with a one-time message for it."""
        if not url.startswith("/") or url.startswith("//"):
            url = "/"
        response = RedirectResponse(url, 303, headers=HEADERS)
        if flash:
            response.set_cookie(
                FLASH_COOKIE,
                urllib.parse.quote(flash[:300]),
                max_age=60,
                path="/",
                httponly=True,
                samesite="lax",
            )
        return response


def error_page(
    request: Request,
    status: int,
    title: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    body = templates.get_template("error.html").render(
        title=title, message=message, user=None, flash=None, path=request.url.path
    )
    return HTMLResponse(body, status, headers={**HEADERS, **(headers or {})})


def not_found(request: Request) -> HTMLResponse:
    return error_page(request, 404, "Not found", "There is nothing here, or it is not yours.")


Handler = Callable[[Ctx], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def page(handler: Handler) -> Endpoint:
    """A page for signed-in users; see the module docstring."""
    return _endpoint(handler, public=False, upload_limit=FORM_PART_SIZE)


def owner_page(handler: Handler) -> Endpoint:
    """A page for the account's owners (platform/accounts/users.py): members get a 403 page."""
    return _endpoint(handler, public=False, upload_limit=FORM_PART_SIZE, owners_only=True)


def public_page(handler: Handler) -> Endpoint:
    """A page anyone may see (sign-in, set-up); its forms still need the CSRF cookie."""
    return _endpoint(handler, public=True, upload_limit=FORM_PART_SIZE)


def upload_page(limit: int) -> Callable[[Handler], Endpoint]:
    """A signed-in page whose form may carry one file of up to `limit` bytes."""
    return lambda handler: _endpoint(handler, public=False, upload_limit=limit)


def _endpoint(
    handler: Handler, *, public: bool, upload_limit: int, owners_only: bool = False
) -> Endpoint:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        engine: Engine = request.app.state.engine
        settings: Settings = request.app.state.settings
        token = request.cookies.get(COOKIE, "")
        session = await run_in_threadpool(_session, engine, token) if token else None
        if session is None and not public:
            target = urllib.parse.quote(request.url.path, safe="/")
            return RedirectResponse(f"/signin?next={target}", 303, headers=HEADERS)
        if owners_only and (session is None or not session.user.is_owner):
            return error_page(
                request,
                403,
                "Owners only",
                "Only the account's owners can see and change this: ask one of them.",
            )
        # Signed in: the session's token. Before (sign-in, set-up): a random value in a
        # cookie of its own that the form must repeat (double submit).
        pre_csrf = request.cookies.get(PRE_CSRF_COOKIE, "")
        if session is not None:
            csrf = session.csrf
        else:
            csrf = pre_csrf if _TOKEN.fullmatch(pre_csrf) else secrets.token_urlsafe(24)
        form = None
        if request.method == "POST":
            if not same_origin(request):
                return error_page(request, 403, "Refused", "This form came from elsewhere.")
            charset = unreadable_charset(request.headers.get("content-type", ""))
            if charset is not None:
                return error_page(
                    request,
                    415,
                    "Refused",
                    f"This form says it is written in {charset!r}, which is not a character "
                    "set: send it as UTF-8, as the page does.",
                )
            try:
                form = await request.form(
                    max_files=1, max_fields=FORM_FIELDS, max_part_size=upload_limit
                )
            except Exception:  # multipart's errors: malformed or too large
                return error_page(request, 400, "Bad request", "The form could not be read.")
            if not csrf_ok(csrf, form.get(CSRF_FIELD)):
                return error_page(
                    request,
                    403,
                    "Refused",
                    "This form has expired or did not come from this page. Go back, "
                    "reload the page and send it again.",
                )
        raw_flash = request.cookies.get(FLASH_COOKIE)
        flash = urllib.parse.unquote(raw_flash)[:300] if raw_flash else None
        ctx = Ctx(request, engine, settings, session, form, flash, csrf)
        response = await run_in_threadpool(_answer, handler, ctx)
        if session is None and csrf != pre_csrf:
            response.set_cookie(PRE_CSRF_COOKIE, csrf, path="/", httponly=True, samesite="strict")
        return response

    return endpoint


def _answer(handler: Handler, ctx: Ctx) -> Response:
    """The page's response; its form's page again when refused; domain errors as pages."""
    try:
        try:
            return handler(ctx)
        except _Refused as refused:
            return refused.again(refused.error)
    except NotFound:
        return not_found(ctx.request)
    except PlatformError as exc:
        return error_page(ctx.request, exc.status, "Not possible", exc.message)


def unreadable_charset(content_type: str) -> str | None:
    """The charset a form's Content-Type names (browsers name none) when it is no character
    set, such as rot13 or undefined: its fields could not be read, or only as garbage."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            try:
                text_encoding(value.strip(' "'))
            except Invalid:
                return value.strip(' "')[:40]
    return None


Method = Literal["GET", "POST"]


def route(path: str, endpoint: Endpoint, method: Method, *more: Method) -> Route:
    """A dashboard route answering only the methods named (GET brings HEAD): "GET" for a page,
    "POST" for an action, both for a page with its form; any other method is a 405 page."""
    return Route(path, endpoint, methods=[method, *more])


def _session(engine: Engine, token: str) -> Session | None:
    with engine.connect() as conn:
        return session_of(conn, token)
