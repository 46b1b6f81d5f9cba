"""Webhook endpoints: create one (its signing secret shown once), remove, and its delivery log."""

from __future__ import annotations

from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import get_account
from pixeltrail.platform.errors import PlatformError
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
from pixeltrail.platform.webhooks.events import EVENT_TYPES
from pixeltrail.platform.webhooks.status import DeliveryStatus
from pixeltrail.web.dashboard.pages import Ctx, owner_page, route


def _list(ctx: Ctx, status: int = 200, **values: object) -> Response:
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        endpoints, next_cursor = list_endpoints(
            conn, ctx.account_id, cursor=ctx.query.get("cursor") or None, limit=100
        )
    return ctx.render(
        "settings/webhooks.html",
        status=status,
        endpoints=endpoints,
        next_cursor=next_cursor,
        event_types=EVENT_TYPES,
        tz=account.timezone,
        **{"created": None, "secret": None, "url": "", "chosen": (), "error": None, **values},
    )


@owner_page
def webhooks_page(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _list(ctx)
    chosen = [str(value) for value in ctx.form.getlist("event_types")]

    def again(exc: PlatformError) -> Response:
        return _list(ctx, exc.status, error=exc, url=ctx.field("url"), chosen=tuple(chosen))

    with ctx.form_errors(again), ctx.write() as conn:
        endpoint, secret = create_endpoint(
            conn,
            ctx.account_id,
            ctx.field("url").strip(),
            chosen,
            SecretBox(ctx.settings.key_ring()),
            allow_local=ctx.settings.webhooks_allow_local,
        )
    # Stored encrypted, never shown again: this answer is the one time it can be copied.
    return _list(ctx, created=endpoint, secret=secret)


@owner_page
def endpoint_page(ctx: Ctx) -> Response:
    status = ctx.query.get("status")
    status = status if status in set(DeliveryStatus) else None
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        endpoint = get_endpoint(conn, ctx.account_id, ctx.params["endpoint_id"])
        deliveries, next_cursor = list_deliveries(
            conn,
            ctx.account_id,
            endpoint.id,
            cursor=ctx.query.get("cursor") or None,
            limit=50,
            status=status,
        )
    return ctx.render(
        "settings/webhook.html",
        endpoint=endpoint,
        deliveries=deliveries,
        next_cursor=next_cursor,
        shown=status,
        statuses=tuple(DeliveryStatus),
        tz=account.timezone,
    )


@owner_page
def endpoint_test(ctx: Ctx) -> Response:
    endpoint_id = ctx.params["endpoint_id"]
    with ctx.write() as conn:
        send_test(conn, ctx.account_id, endpoint_id)
    return ctx.redirect(
        f"/settings/webhooks/{endpoint_id}", flash="A test delivery is queued: it shows below"
    )


@owner_page
def delivery_retry(ctx: Ctx) -> Response:
    endpoint_id = ctx.params["endpoint_id"]
    with ctx.write() as conn:
        retry_delivery(conn, ctx.account_id, endpoint_id, ctx.params["delivery_id"])
    return ctx.redirect(
        f"/settings/webhooks/{endpoint_id}", flash="Sent again shortly, with the same id"
    )


@owner_page
def endpoint_delete(ctx: Ctx) -> Response:
    endpoint_id = ctx.params["endpoint_id"]
    with ctx.write() as conn:
        endpoint = get_endpoint(conn, ctx.account_id, endpoint_id)
        delete_endpoint(conn, ctx.account_id, endpoint_id)
    return ctx.redirect("/settings/webhooks", flash=f"Endpoint {endpoint.url} removed")


routes = [
    route("/settings/webhooks", webhooks_page, "GET", "POST"),
    route("/settings/webhooks/{endpoint_id}", endpoint_page, "GET"),
    route("/settings/webhooks/{endpoint_id}/test", endpoint_test, "POST"),
    route("/settings/webhooks/{endpoint_id}/delete", endpoint_delete, "POST"),
    route(
        "/settings/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry", delivery_retry, "POST"
    ),
]
