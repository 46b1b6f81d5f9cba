"""The API application: routers, error mapping, request size limits, OpenAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from pixeltrail import __version__
from pixeltrail.config import Settings
from pixeltrail.platform.errors import PlatformError
from pixeltrail.web.api import (
    account,
    campaigns,
    contacts,
    domains,
    mailboxes,
    reports,
    webhooks,
)
from pixeltrail.web.api.limits import BodyLimit
from pixeltrail.web.dashboard.app import create_dashboard
from pixeltrail.web.slash_redirects import redirect_slashes_here

PREFIX = "/api/v1"
ROUTERS = [
    account.router,
    domains.router,
    mailboxes.router,
    contacts.router,
    campaigns.router,
    reports.router,
    webhooks.router,
]


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


async def _platform_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PlatformError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(
        error_body(exc.code, exc.message, exc.field), status_code=exc.status, headers=headers
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(loc) or None
    kind = first.get("type", "")
    if kind == "json_invalid":
        message, field = "the request body is not valid JSON", None
    elif kind == "extra_forbidden":
        message = f"unknown field {field!r}"
    else:
        message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
    return JSONResponse(error_body("invalid", message, field), status_code=422)


def create_api(engine: Engine, settings: Settings) -> FastAPI:
    api = FastAPI(
        title="pixeltrail",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    api.state.engine = engine
    api.state.settings = settings
    api.add_exception_handler(PlatformError, _platform_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    for router in ROUTERS:
        api.include_router(router)
    redirect_slashes_here(api.router)
    api.add_middleware(BodyLimit)
    return api


def mounted_api(engine: Engine, settings: Settings, *routes: BaseRoute) -> Starlette:
    """The API mounted at /api/v1, any other routes, and the dashboard at /, as served."""
    app = Starlette(
        routes=[
            Mount(PREFIX, app=create_api(engine, settings)),
            *routes,
            Mount("/", app=create_dashboard(engine, settings)),
        ]
    )
    redirect_slashes_here(app.router)
    return app
