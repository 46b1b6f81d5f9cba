"""Tracking domains: the list, adding a hostname, its DNS record, verifying it, removing it."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import get_account
from pixeltrail.platform.domains.checks import verify_domain
from pixeltrail.platform.domains.dns_check import CnameResolver
from pixeltrail.platform.domains.domains import add_domain, delete_domain, get_domain, list_domains
from pixeltrail.platform.domains.hostnames import is_loopback_host
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.errors import PlatformError
from pixeltrail.web.dashboard.pages import Ctx, page, route


def _served_hosts_changed(request: Request) -> None:
    # The server's lifespan state carries it (runtime/http_process.py); absent when run alone.
    changed = getattr(request.state, "domains_changed", None)
    if changed is not None:
        changed()


def _local_port(ctx: Ctx) -> str:
    """':8000' when the base URL names a port: links on `.localhost` domains use it."""
    port = urlsplit(ctx.settings.base_url).port
    return f":{port}" if port else ""


def _list(ctx: Ctx, status: int = 200, error: PlatformError | None = None) -> Response:
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        domains, next_cursor = list_domains(
            conn, ctx.account_id, cursor=ctx.query.get("cursor") or None, limit=100
        )
    return ctx.render(
        "domains/list.html",
        status=status,
        domains=domains,
        next_cursor=next_cursor,
        tz=account.timezone,
        local_trial=is_loopback_host(ctx.settings.instance_host),
        port=_local_port(ctx),
        base_url=ctx.settings.base_url,
        hostname=ctx.field("hostname"),
        error=error,
    )


@page
def domain_list(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _list(ctx)
    with ctx.form_errors(lambda exc: _list(ctx, exc.status, exc)), ctx.write() as conn:
        domain = add_domain(conn, ctx.account_id, ctx.field("hostname"), ctx.settings)
    return ctx.redirect(
        f"/domains/{domain.id}",
        flash=f"{domain.hostname} added"
        + ("" if domain.local else ": create its DNS record, then verify it"),
    )


def _detail(ctx: Ctx, status: int = 200, error: PlatformError | None = None) -> Response:
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        domain = get_domain(conn, ctx.account_id, ctx.params["domain_id"])
    return ctx.render(
        "domains/detail.html",
        status=status,
        domain=domain,
        tz=account.timezone,
        port=_local_port(ctx),
        error=error,
    )


@page
def domain_detail(ctx: Ctx) -> Response:
    return _detail(ctx)


@page
def domain_verify(ctx: Ctx) -> Response:
    domain_id = ctx.params["domain_id"]
    # No transaction is held while DNS answers (it may take seconds).
    domain = verify_domain(
        ctx.engine, ctx.account_id, domain_id, CnameResolver.from_settings(ctx.settings)
    )
    _served_hosts_changed(ctx.request)
    if domain.status == DomainStatus.VERIFIED:
        message = f"{domain.hostname} is verified: tracking links on it work"
    else:
        message = f"{domain.hostname} is not verified yet: see what DNS answered below"
    return ctx.redirect(f"/domains/{domain.id}", flash=message)


@page
def domain_remove(ctx: Ctx) -> Response:
    with ctx.form_errors(lambda exc: _detail(ctx, exc.status, exc)), ctx.write() as conn:
        domain = delete_domain(conn, ctx.account_id, ctx.params["domain_id"])
    _served_hosts_changed(ctx.request)
    return ctx.redirect("/domains", flash=f"{domain.hostname} removed")


routes = [
    route("/domains", domain_list, "GET", "POST"),
    route("/domains/{domain_id}", domain_detail, "GET"),
    route("/domains/{domain_id}/verify", domain_verify, "POST"),
    route("/domains/{domain_id}/remove", domain_remove, "POST"),
]
