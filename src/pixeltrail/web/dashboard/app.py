"""The dashboard application: its route table, static files and the 404 page."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from pixeltrail.config import Settings
from pixeltrail.web.dashboard import auth, domains, outbox
from pixeltrail.web.dashboard.campaigns import campaigns
from pixeltrail.web.dashboard.contacts import contacts
from pixeltrail.web.dashboard.pages import error_page, not_found
from pixeltrail.web.dashboard.reports import reports
from pixeltrail.web.dashboard.settings import account
from pixeltrail.web.dashboard.throttle import SignInThrottle
from pixeltrail.web.slash_redirects import redirect_slashes_here

STATIC = Path(__file__).parent / "static"

# Each area of the dashboard owns its routes; this is the one list of them.
ROUTES: list[BaseRoute] = [
    *auth.routes,
    *campaigns.routes,
    *account.routes,
    *contacts.routes,
    *domains.routes,
    *reports.routes,
    *outbox.routes,
    Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return not_found(request)
    # A 405 says which methods the route takes (`Allow`).
    return error_page(request, exc.status_code, "Not possible", str(exc.detail), exc.headers)


def create_dashboard(engine: Engine, settings: Settings) -> Starlette:
    app = Starlette(routes=ROUTES, exception_handlers={HTTPException: _http_error})
    redirect_slashes_here(app.router)
    app.state.engine = engine
    app.state.settings = settings
    app.state.throttle = SignInThrottle()
    return app
