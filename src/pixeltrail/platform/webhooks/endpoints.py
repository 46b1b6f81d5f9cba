"""Webhook endpoints of an account and their delivery log (Standard Webhooks).

An endpoint is an https URL and the event types it receives. Its signing secret (`whsec_`
and 32 random bytes in base64, as the Standard Webhooks spec writes it) is shown once, when
the endpoint is created, and stored encrypted with the instance keys (`secretbox`).
Removing an endpoint removes its delivery log with it. Another account's ids answer exactly
like ids that do not exist.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from pixeltrail.platform.errors import Conflict, Invalid, NotFound
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.platform.paging import check_limit, decode_cursor, encode_cursor, page
from pixeltrail.platform.secretbox import SecretBox
from pixeltrail.platform.webhooks.events import (
    EVENT_TYPES,
    WEBHOOK_TEST,
    WebhookEvent,
    delivery_row,
    insert_deliveries,
    iso,
)
from pixeltrail.platform.webhooks.status import DeliveryStatus
from pixeltrail.platform.webhooks.urls import check_endpoint_url
from pixeltrail.store.schema import webhook_deliveries, webhook_endpoints

SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)
SECRET_BYTES = 32
MAX_ENDPOINTS = 20


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    event_types: tuple[str, ...]
    created_at_ms: int
    disabled_at_ms: int | None

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "event_types": list(self.event_types),
            "created_at": iso(self.created_at_ms),
            "disabled_at": iso(self.disabled_at_ms) if self.disabled_at_ms else None,
        }


def _endpoint_of(row: Any) -> Endpoint:
    return Endpoint(
        row.id, row.url, tuple(row.event_types or ()), row.created_at_ms, row.disabled_at_ms
    )


def check_event_types(value: object, field: str = "event_types") -> tuple[str, ...]:
    """The event types asked for, without repeats, in the order of EVENT_TYPES."""
    known = ", ".join(EVENT_TYPES)
    if not isinstance(value, list | tuple) or not value:
        raise Invalid(f"event_types is a non-empty list of: {known}", field)
    for item in value:
        if not isinstance(item, str) or item not in EVENT_TYPES:
            raise Invalid(f"unknown event type {item!r}; known: {known}", field)
    return tuple(t for t in EVENT_TYPES if t in value)


def create_endpoint(
    conn: Connection,
    account_id: str,
    url: object,
    event_types: object,
    box: SecretBox,
    *,
    allow_local: bool = False,
) -> tuple[Endpoint, str]:
    """A new endpoint and its signing secret (returned this once, stored encrypted)."""
    checked_url = check_endpoint_url(url, allow_local)
    types = check_event_types(event_types)
    count = len(
        conn.execute(
            select(webhook_endpoints.c.id).where(webhook_endpoints.c.account_id == account_id)
        ).all()
    )
    if count >= MAX_ENDPOINTS:
        raise Conflict(f"an account has at most {MAX_ENDPOINTS} webhook endpoints", "url")
    secret = new_signing_secret()
    endpoint = Endpoint(new_id("wh"), checked_url, types, now_ms(), None)
    conn.execute(
        insert(webhook_endpoints).values(
            id=endpoint.id,
            account_id=account_id,
            url=endpoint.url,
            secret_encrypted=box.encrypt(secret),
            event_types=list(types),
            created_at_ms=endpoint.created_at_ms,
            disabled_at_ms=None,
        )
    )
    return endpoint, secret


def get_endpoint(conn: Connection, account_id: str, endpoint_id: str) -> Endpoint:
    row = conn.execute(
        select(webhook_endpoints).where(
            webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.account_id == account_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}", "id")
    return _endpoint_of(row)


def list_endpoints(
    conn: Connection, account_id: str, cursor: str | None = None, limit: int | None = None
) -> tuple[list[Endpoint], str | None]:
    query = select(webhook_endpoints).where(webhook_endpoints.c.account_id == account_id)
    rows, next_cursor = page(conn, query, webhook_endpoints, cursor, limit)
    return [_endpoint_of(r) for r in rows], next_cursor


def delete_endpoint(conn: Connection, account_id: str, endpoint_id: str) -> None:
    """Remove an endpoint and its delivery log; deliveries in flight are not recorded."""
    get_endpoint(conn, account_id, endpoint_id)
    conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id))
    conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))


# ---- the delivery log ----------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    id: str
    endpoint_id: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at_ms: int | None
    last_status_code: int | None
    last_error: str | None
    created_at_ms: int
    delivered_at_ms: int | None

    def as_record(self) -> dict[str, Any]:
        def when(ms: int | None) -> str | None:
            return iso(ms) if ms is not None else None

        return {
            "id": self.id,
            "endpoint_id": self.endpoint_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "created_at": iso(self.created_at_ms),
            "delivered_at": when(self.delivered_at_ms),
            "next_attempt_at": when(
                self.next_attempt_at_ms if self.status == DeliveryStatus.PENDING else None
            ),
            "payload": self.payload,
        }


def _delivery_of(row: Any) -> Delivery:
    return Delivery(
        row.id,
        row.endpoint_id,
        row.event_type,
        row.payload,
        row.status,
        row.attempts,
        row.next_attempt_at_ms,
        row.last_status_code,
        row.last_error,
        row.created_at_ms,
        row.delivered_at_ms,
    )


def list_deliveries(
    conn: Connection,
    account_id: str,
    endpoint_id: str,
    cursor: str | None = None,
    limit: int | None = None,
    status: str | None = None,
) -> tuple[list[Delivery], str | None]:
    """An endpoint's deliveries, newest first, optionally of one status; and the next cursor."""
    get_endpoint(conn, account_id, endpoint_id)
    size = check_limit(limit)
    d = webhook_deliveries.c
    query = select(webhook_deliveries).where(
        d.endpoint_id == endpoint_id, d.account_id == account_id
    )
    if status is not None:
        if status not in set(DeliveryStatus):
            raise Invalid(f"status is one of: {', '.join(DeliveryStatus)}", "status")
        query = query.where(d.status == status)
    if cursor:
        before_ms, before_id = decode_cursor(cursor)
        query = query.where(
            or_(d.created_at_ms < before_ms, and_(d.created_at_ms == before_ms, d.id < before_id))
        )
    rows: Sequence[Any] = conn.execute(
        query.order_by(d.created_at_ms.desc(), d.id.desc()).limit(size + 1)
    ).all()
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = encode_cursor(rows[-1].created_at_ms, rows[-1].id)
    return [_delivery_of(r) for r in rows], next_cursor


def get_delivery(conn: Connection, account_id: str, endpoint_id: str, delivery_id: str) -> Delivery:
    row = conn.execute(
        select(webhook_deliveries).where(
            webhook_deliveries.c.id == delivery_id,
            webhook_deliveries.c.endpoint_id == endpoint_id,
            webhook_deliveries.c.account_id == account_id,
        )
    ).first()
    if row is None:
        raise NotFound(f"no delivery {delivery_id} for this endpoint", "delivery_id")
    return _delivery_of(row)


def retry_delivery(
    conn: Connection, account_id: str, endpoint_id: str, delivery_id: str
) -> Delivery:
    """Send a failed or cancelled delivery again now, with the same id (one more attempt)."""
    found = get_delivery(conn, account_id, endpoint_id, delivery_id)
    if found.status not in {DeliveryStatus.FAILED, DeliveryStatus.CANCELLED}:
        raise Conflict(
            f"this delivery is {found.status}: only failed or cancelled ones are retried"
        )
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(status=DeliveryStatus.PENDING, next_attempt_at_ms=now_ms())
    )
    return get_delivery(conn, account_id, endpoint_id, delivery_id)


def send_test(conn: Connection, account_id: str, endpoint_id: str) -> Delivery:
    """Queue a `webhook.test` delivery to one endpoint, whatever it subscribes to."""
    endpoint = get_endpoint(conn, account_id, endpoint_id)
    at = now_ms()
    data = {"endpoint_id": endpoint.id, "message": "a test delivery from pixeltrail"}
    event = WebhookEvent(account_id, WEBHOOK_TEST, data, at)
    row = delivery_row(endpoint.id, event, at)
    insert_deliveries(conn, [row])
    return get_delivery(conn, account_id, endpoint_id, row["id"])
