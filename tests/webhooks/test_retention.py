"""Webhook delivery logs are kept as long as the account keeps its events, at most 90 days,
and deliveries still being retried are never deleted."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from pixeltrail.platform.accounts.accounts import update_account
from pixeltrail.platform.webhooks.retention import purge_old_deliveries
from pixeltrail.recording.retention import RetentionLoop
from pixeltrail.runtime.background_process import PURGED_AFTER_EVENTS
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import webhook_deliveries

from .conftest import World

DAY = 86_400_000


def _delivery(
    world: World, endpoint_id: str, account_id: str, name: str, age_days: float, status: str
) -> None:
    with write_transaction(world.engine) as conn:
        conn.execute(
            insert(webhook_deliveries).values(
                id=f"whd_{name}", endpoint_id=endpoint_id, account_id=account_id,
                event_type="message.opened",
                payload={"type": "message.opened", "data": {"ip": "203.0.113.9"}},
                status=status, attempts=1, next_attempt_at_ms=None, last_status_code=200,
                last_error=None, created_at_ms=world.now - int(age_days * DAY),
                delivered_at_ms=None,
            )
        )  # fmt: skip


def _left(world: World) -> set[str]:
    return {row.id.removeprefix("whd_") for row in world.deliveries()}


def test_logs_follow_the_accounts_retention_and_never_pass_90_days(world: World) -> None:
    with write_transaction(world.engine) as conn:
        update_account(conn, world.account_id, {"retention_days": 30})
    endpoint, _ = world.endpoint("https://hooks.example/a", ["message.opened"])
    other = world.other_account()  # keeps its events for ever
    other_endpoint, _ = world.endpoint("https://hooks.example/b", ["message.opened"], other)
    for name, age, status in [
        ("old_delivered", 31, "delivered"),
        ("old_failed", 45, "failed"),
        ("old_cancelled", 200, "cancelled"),
        ("old_pending", 31, "pending"),  # still being retried: never deleted
        ("recent", 29, "delivered"),
    ]:
        _delivery(world, endpoint.id, world.account_id, name, age, status)
    for name, age in [("others_old", 91), ("others_recent", 60)]:
        _delivery(world, other_endpoint.id, other, name, age, "delivered")

    assert purge_old_deliveries(world.engine, world.now) == 4
    assert _left(world) == {"old_pending", "recent", "others_recent"}
    assert purge_old_deliveries(world.engine, world.now) == 0  # nothing more to do


def test_the_hourly_retention_loop_purges_the_logs_too(world: World) -> None:
    endpoint, _ = world.endpoint("https://hooks.example/a", ["message.opened"])
    _delivery(world, endpoint.id, world.account_id, "ancient", 120, "delivered")
    _delivery(world, endpoint.id, world.account_id, "fresh", 0, "delivered")
    RetentionLoop(world.engine, PURGED_AFTER_EVENTS).run_once()
    assert _left(world) == {"fresh"}


def test_large_logs_go_in_several_batches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pixeltrail.platform.webhooks.retention.BATCH", 10)
    endpoint, _ = world.endpoint("https://hooks.example/a", ["message.opened"])
    for n in range(25):
        _delivery(world, endpoint.id, world.account_id, f"old{n}", 100, "delivered")
    _delivery(world, endpoint.id, world.account_id, "fresh", 1, "delivered")
    assert purge_old_deliveries(world.engine, world.now) == 25
    assert _left(world) == {"fresh"}
