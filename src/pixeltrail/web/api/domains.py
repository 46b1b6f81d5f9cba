"""/tracking-domains: add a hostname, get the CNAME record to create, verify it, remove it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from pixeltrail.platform.domains.checks import verify_domain
from pixeltrail.platform.domains.dns_check import CnameResolver
from pixeltrail.platform.domains.domains import add_domain, delete_domain, get_domain, list_domains
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.store.db import write_transaction
from pixeltrail.web.api.deps import AccountId, Conn, SettingsDep, account_id, engine_of

router = APIRouter(tags=["domains"])


class DomainIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    hostname: str


class DnsRecord(BaseModel):
    type: str
    name: str
    value: str


class DomainOut(BaseModel):
    id: str
    hostname: str
    status: str
    cname_target: str
    last_error: str | None
    dns_record: DnsRecord
    verified_at: str | None
    checked_at: str | None
    created_at: str


class DomainPage(BaseModel):
    items: list[DomainOut]
    next_cursor: str | None


def _account_outside_transaction(request: Request) -> str:
    """The caller's account, read in a transaction of its own that ends at once: the routes
    that ask DNS or must see their change committed manage their own transactions."""
    with engine_of(request).begin() as conn:
        return account_id(request, conn)


Account = Annotated[str, Depends(_account_outside_transaction)]


def _served_hosts_changed(request: Request) -> None:
    # Set by the server (ASGI lifespan state); absent when the API runs on its own.
    changed = getattr(request.state, "domains_changed", None)
    if changed is not None:
        changed()


@router.get("/tracking-domains", response_model=DomainPage)
def read_domains(
    conn: Conn, account: AccountId, cursor: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    items, next_cursor = list_domains(conn, account, cursor, limit)
    return {"items": [d.as_record() for d in items], "next_cursor": next_cursor}


@router.post("/tracking-domains", response_model=DomainOut, status_code=201)
def create_domain(
    body: DomainIn, conn: Conn, account: AccountId, settings: SettingsDep
) -> dict[str, Any]:
    """Add a hostname; the answer's `dns_record` is the CNAME to create at its DNS provider."""
    return add_domain(conn, account, body.hostname, settings).as_record()


@router.get("/tracking-domains/{domain_id}", response_model=DomainOut)
def read_domain(domain_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    return get_domain(conn, account, domain_id).as_record()


@router.post(
    "/tracking-domains/{domain_id}/verify",
    response_model=DomainOut,
    responses={422: {"model": DomainOut, "description": "Not verified: see last_error."}},
)
def verify(domain_id: str, request: Request, account: Account, settings: SettingsDep) -> Any:
    """Look the CNAME up now: 200 when it points here, 422 with `last_error` saying what DNS
    answered and what to fix otherwise."""
    domain = verify_domain(
        engine_of(request), account, domain_id, CnameResolver.from_settings(settings)
    )
    _served_hosts_changed(request)
    record = domain.as_record()
    if domain.status != DomainStatus.VERIFIED:
        return JSONResponse(DomainOut.model_validate(record).model_dump(), status_code=422)
    return record


@router.delete("/tracking-domains/{domain_id}", status_code=204)
def remove_domain(domain_id: str, request: Request, account: Account) -> Response:
    """Remove a domain: links on it stop being answered. Refused while a campaign uses it."""
    with write_transaction(engine_of(request)) as conn:
        delete_domain(conn, account, domain_id)
    _served_hosts_changed(request)
    return Response(status_code=204)
