"""/webhooks: endpoints (the secret is shown once, at creation), their delivery log, tests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from pixeltrail.platform.secretbox import SecretBox
from pixeltrail.platform.webhooks.endpoints import (
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_deliveries,
    list_endpoints,
    retry_delivery,
    send_test,
)
from pixeltrail.web.api.deps import AccountId, Conn, SettingsDep

router = APIRouter(tags=["webhooks"])

Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Limit = Annotated[int | None, Query(description="page size, 1 to 500 (default 50)")]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str
    event_types: list[str]


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    created_at: str
    disabled_at: str | None


class EndpointCreated(EndpointOut):
    secret: str


class EndpointPage(BaseModel):
    items: list[EndpointOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    next_attempt_at: str | None
    payload: dict[str, Any]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


@router.get("/webhooks", response_model=EndpointPage)
def read_endpoints(
    conn: Conn, account: AccountId, cursor: Cursor = None, limit: Limit = None
) -> dict[str, Any]:
    found, next_cursor = list_endpoints(conn, account, cursor, limit)
    return {"items": [e.as_record() for e in found], "next_cursor": next_cursor}


@router.post("/webhooks", response_model=EndpointCreated, status_code=201)
def add_endpoint(
    body: EndpointIn, conn: Conn, account: AccountId, settings: SettingsDep
) -> dict[str, Any]:
    """Register an endpoint; the answer holds its signing secret, which is never shown again."""
    endpoint, secret = create_endpoint(
        conn,
        account,
        body.url,
        body.event_types,
        SecretBox(settings.key_ring()),
        allow_local=settings.webhooks_allow_local,
    )
    return {**endpoint.as_record(), "secret": secret}


@router.get("/webhooks/{endpoint_id}", response_model=EndpointOut)
def read_endpoint(endpoint_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    return get_endpoint(conn, account, endpoint_id).as_record()


@router.delete("/webhooks/{endpoint_id}", status_code=204)
def remove_endpoint(endpoint_id: str, conn: Conn, account: AccountId) -> Response:
    delete_endpoint(conn, account, endpoint_id)
    return Response(status_code=204)


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=DeliveryPage)
def read_deliveries(
    endpoint_id: str,
    conn: Conn,
    account: AccountId,
    cursor: Cursor = None,
    limit: Limit = None,
    status: Annotated[
        str | None, Query(description="pending, delivered, failed or cancelled")
    ] = None,
) -> dict[str, Any]:
    """The endpoint's deliveries, newest first."""
    found, next_cursor = list_deliveries(conn, account, endpoint_id, cursor, limit, status)
    return {"items": [d.as_record() for d in found], "next_cursor": next_cursor}


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry",
    response_model=DeliveryOut,
    status_code=202,
)
def retry(endpoint_id: str, delivery_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    """Send a failed or cancelled delivery again, with the same webhook-id."""
    return retry_delivery(conn, account, endpoint_id, delivery_id).as_record()


@router.post("/webhooks/{endpoint_id}/test", response_model=DeliveryOut, status_code=202)
def test_endpoint(endpoint_id: str, conn: Conn, account: AccountId) -> dict[str, Any]:
    """Queue a `webhook.test` delivery to this endpoint; follow it in the delivery log."""
    return send_test(conn, account, endpoint_id).as_record()
