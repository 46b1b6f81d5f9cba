"""`pixeltrail webhooks ...`: endpoints and their delivery log, as the API offers them."""

from __future__ import annotations

import json

import click

from pixeltrail.commands.common import (
    account_option,
    all_pages,
    json_option,
    open_engine,
    resolve_account,
    settings,
)
from pixeltrail.platform.secretbox import SecretBox
from pixeltrail.platform.webhooks.endpoints import (
    Delivery,
    Endpoint,
    create_endpoint,
    delete_endpoint,
    list_deliveries,
    list_endpoints,
    retry_delivery,
    send_test,
)
from pixeltrail.platform.webhooks.events import EVENT_TYPES
from pixeltrail.platform.webhooks.status import DeliveryStatus
from pixeltrail.store.db import write_transaction


def _show_endpoint(endpoint: Endpoint, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(endpoint.as_record(), ensure_ascii=False))
    else:
        disabled = "  (disabled)" if endpoint.disabled_at_ms else ""
        click.echo(f"{endpoint.id}  {endpoint.url}  {','.join(endpoint.event_types)}{disabled}")


def _show_delivery(delivery: Delivery, as_json: bool) -> None:
    record = delivery.as_record()
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    code = delivery.last_status_code or "-"
    line = (
        f"{delivery.id}  {record['created_at']}  {delivery.event_type:20} {delivery.status:9} "
        f"attempts={delivery.attempts} last={code}"
    )
    if delivery.status == DeliveryStatus.PENDING:
        line += f" next={record['next_attempt_at']}"
    click.echo(line)
    if delivery.last_error:
        click.echo(f"  {delivery.last_error}")


@click.group()
def webhooks() -> None:
    """Outbound webhooks: endpoints and their delivery log."""


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--event",
    "event_types",
    multiple=True,
    required=True,
    type=click.Choice(EVENT_TYPES),
    help="An event type to receive (repeat for several).",
)
@account_option
@json_option
def webhooks_add(
    url: str, event_types: tuple[str, ...], account_id: str | None, as_json: bool
) -> None:
    """Register URL for the given events and print its signing secret (shown only this once)."""
    config = settings()
    with open_engine() as engine, write_transaction(engine) as conn:
        endpoint, secret = create_endpoint(
            conn,
            resolve_account(conn, account_id),
            url,
            list(event_types),
            SecretBox(config.key_ring()),
            allow_local=config.webhooks_allow_local,
        )
    if as_json:
        click.echo(json.dumps({**endpoint.as_record(), "secret": secret}, ensure_ascii=False))
        return
    click.echo(f"added {endpoint.url} ({endpoint.id})")
    click.echo(f"signing secret  {secret}")
    click.echo("Keep the secret: it is not shown again.", err=True)


@webhooks.command("list")
@account_option
@json_option
def webhooks_list(account_id: str | None, as_json: bool) -> None:
    """Every webhook endpoint of the account (with --json, one object per line)."""
    with open_engine() as engine, engine.begin() as conn:
        account = resolve_account(conn, account_id)
        found = list(all_pages(lambda cursor: list_endpoints(conn, account, cursor, 500)))
    for endpoint in found:
        _show_endpoint(endpoint, as_json)
    if not found and not as_json:
        click.echo(
            "no webhook endpoints yet: add one with `pixeltrail webhooks add URL --event ...`"
        )


@webhooks.command("deliveries")
@click.argument("endpoint_id")
@click.option(
    "--status", type=click.Choice([str(s) for s in DeliveryStatus]), help="Only this status."
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--cursor", help="The cursor printed after the previous page.")
@account_option
@json_option
def webhooks_deliveries(
    endpoint_id: str,
    status: str | None,
    limit: int,
    cursor: str | None,
    account_id: str | None,
    as_json: bool,
) -> None:
    """The endpoint's delivery log, newest first (with --json, one object per line)."""
    with open_engine() as engine, engine.begin() as conn:
        found, next_cursor = list_deliveries(
            conn, resolve_account(conn, account_id), endpoint_id, cursor, limit, status
        )
    for delivery in found:
        _show_delivery(delivery, as_json)
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}", err=True)


@webhooks.command("remove")
@click.argument("endpoint_id")
@account_option
@json_option
def webhooks_remove(endpoint_id: str, account_id: str | None, as_json: bool) -> None:
    """Remove an endpoint and its delivery log."""
    with open_engine() as engine, write_transaction(engine) as conn:
        delete_endpoint(conn, resolve_account(conn, account_id), endpoint_id)
    if as_json:
        click.echo(json.dumps({"id": endpoint_id, "removed": True}))
    else:
        click.echo(f"removed {endpoint_id}")


@webhooks.command("test")
@click.argument("endpoint_id")
@account_option
@json_option
def webhooks_test(endpoint_id: str, account_id: str | None, as_json: bool) -> None:
    """Queue a webhook.test delivery to the endpoint (a running server sends it)."""
    with open_engine() as engine, write_transaction(engine) as conn:
        delivery = send_test(conn, resolve_account(conn, account_id), endpoint_id)
    _show_delivery(delivery, as_json)


@webhooks.command("retry")
@click.argument("endpoint_id")
@click.argument("delivery_id")
@account_option
@json_option
def webhooks_retry(
    endpoint_id: str, delivery_id: str, account_id: str | None, as_json: bool
) -> None:
    """Send a failed or cancelled delivery again (same webhook-id; a running server sends it)."""
    with open_engine() as engine, write_transaction(engine) as conn:
        delivery = retry_delivery(conn, resolve_account(conn, account_id), endpoint_id, delivery_id)
    _show_delivery(delivery, as_json)
