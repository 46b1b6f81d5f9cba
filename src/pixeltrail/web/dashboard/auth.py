"""Getting in: the first sign-up of a fresh instance, sign-in, sign-out, accepting an invitation."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from pixeltrail.platform.accounts.users import (
    Invite,
    User,
    accept_invite,
    check_password,
    close_session,
    instance_is_new,
    open_session,
    pending_invite,
    sign_up_first,
)
from pixeltrail.platform.contacts.addresses import normalize_email
from pixeltrail.platform.errors import Invalid, NotFound, PlatformError, Unauthorized
from pixeltrail.web.client_ip import ClientAddress
from pixeltrail.web.dashboard.pages import HEADERS, Ctx, page, public_page, route
from pixeltrail.web.dashboard.sessions import (
    COOKIE,
    clear_session_cookie,
    set_session_cookie,
)
from pixeltrail.web.dashboard.throttle import SignInThrottle


def client_address(ctx: Ctx) -> str:
    """Who is signing in: behind a trusted proxy, the client it names, not the proxy."""
    address = ClientAddress(ctx.settings.trusted_proxies).of(ctx.request.scope)
    return address or "unknown"


def _next_page(value: str) -> str:
    """Where to go after signing in: a path of ours, never another site."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/campaigns"


def _signed_in(ctx: Ctx, user: User, target: str) -> Response:
    with ctx.write() as conn:
        token = open_session(conn, user)
    response = RedirectResponse(target, 303, headers=HEADERS)
    set_session_cookie(response, ctx.request, token)
    return response


@public_page
def home(ctx: Ctx) -> Response:
    if ctx.session is not None:
        return RedirectResponse("/campaigns", 303, headers=HEADERS)
    with ctx.read() as conn:
        new = instance_is_new(conn)
    return RedirectResponse("/setup" if new else "/signin", 303, headers=HEADERS)


@public_page
def setup(ctx: Ctx) -> Response:
    with ctx.read() as conn:
        new = instance_is_new(conn)
    if not new:
        return RedirectResponse("/signin", 303, headers=HEADERS)
    values = {"account_name": "", "email": "", "timezone": "UTC"}
    if ctx.form is None:
        return ctx.render("setup.html", values=values, error=None)
    values = {name: ctx.field(name).strip() for name in values}

    def again(exc: PlatformError) -> Response:
        return ctx.render("setup.html", status=exc.status, values=values, error=exc)

    with ctx.form_errors(again), ctx.write() as conn:
        user = sign_up_first(
            conn,
            ctx.settings,
            values["account_name"],
            values["email"],
            ctx.field("password"),
            values["timezone"] or "UTC",
        )
    return _signed_in(ctx, user, "/campaigns")


@public_page
def signin(ctx: Ctx) -> Response:
    target = _next_page(ctx.query.get("next", ""))
    if ctx.session is not None:
        return RedirectResponse(target, 303, headers=HEADERS)
    if ctx.form is None:
        return ctx.render("signin.html", email="", error=None, next=target)
    email = ctx.field("email").strip()
    try:
        key = normalize_email(email, "email")
    except Invalid:
        key = email.lower()
    address = client_address(ctx)
    throttle: SignInThrottle = ctx.request.app.state.throttle
    # Counted as a failure from here on (until it succeeds): attempts sent in parallel are
    # admitted no more than the limits allow, whatever their passwords.
    wait, admitted_at = throttle.admit(address, key)
    if wait:
        error = Unauthorized(f"too many attempts: try again in {wait // 60 + 1} minutes")
        response = ctx.render("signin.html", status=429, email=email, error=error, next=target)
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        with ctx.read() as conn:
            user = check_password(conn, email, ctx.field("password"))
    except Unauthorized as exc:
        return ctx.render("signin.html", status=401, email=email, error=exc, next=target)
    throttle.succeeded(address, key, admitted_at)
    return _signed_in(ctx, user, target)


@page
def signout(ctx: Ctx) -> Response:
    with ctx.write() as conn:
        close_session(conn, ctx.request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/signin", 303, headers=HEADERS)
    clear_session_cookie(response, ctx.request)
    return response


@public_page
def invitation(ctx: Ctx) -> Response:
    token = ctx.params["token"]
    try:
        with ctx.read() as conn:
            invite = pending_invite(conn, token)
        if ctx.form is None:
            return _invite_page(ctx, invite)
        with ctx.form_errors(lambda exc: _invite_page(ctx, invite, exc)), ctx.write() as conn:
            user = accept_invite(conn, token, ctx.field("password"))
    except NotFound as exc:  # used, expired or never given: the page says so, with a 404
        return _invite_page(ctx, None, exc)
    return _signed_in(ctx, user, "/campaigns")


def _invite_page(ctx: Ctx, invite: Invite | None, error: PlatformError | None = None) -> Response:
    status = error.status if error else 200
    return ctx.render("invite.html", status=status, invite=invite, error=error)


routes = [
    route("/", home, "GET"),
    route("/setup", setup, "GET", "POST"),
    route("/signin", signin, "GET", "POST"),
    route("/signout", signout, "POST"),
    route("/invite/{token}", invitation, "GET", "POST"),
]
