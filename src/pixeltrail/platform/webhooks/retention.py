"""How long webhook delivery logs are kept: as long as the account keeps its events, and never
more than 90 days.

A delivery's payload is the event it tells of (for an open or a click: the time, and the
reader's address and user agent as recorded), so it must not outlive the event's retention.
Past that, the log is for following up failed deliveries, which 90 days covers (the common
choice of webhook services). Deliveries still being retried are never deleted.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, delete, select

from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.webhooks.status import FINISHED
from pixeltrail.store.db import write_transaction
from pixeltrail.store.event_retention import DAY_MS
from pixeltrail.store.schema import accounts, webhook_deliveries, webhook_endpoints

DELIVERY_LOG_DAYS = 90
BATCH = 2000
_d = webhook_deliveries.c


def purge_old_deliveries(
    engine: Engine, now: int | None = None, stopping: Callable[[], bool] = lambda: False
) -> int:
    """Delete finished deliveries past their account's keep time; returns how many.

    Endpoint by endpoint (their index is endpoint and time), in short transactions of at most
    BATCH rows, so other writers get their turn between them on SQLite.
    """
    now = now_ms() if now is None else now
    with engine.connect() as conn:
        owners = conn.execute(
            select(webhook_endpoints.c.id, accounts.c.retention_days).join(
                accounts, accounts.c.id == webhook_endpoints.c.account_id
            )
        ).all()
    deleted = 0
    for endpoint_id, retention_days in owners:
        days = min(retention_days or DELIVERY_LOG_DAYS, DELIVERY_LOG_DAYS)
        expired = select(_d.id).where(
            _d.endpoint_id == endpoint_id,
            _d.created_at_ms < now - days * DAY_MS,
            _d.status.in_(FINISHED),
        )
        while not stopping():
            with write_transaction(engine) as conn:
                ids = conn.execute(expired.limit(BATCH)).scalars().all()
                if ids:
                    conn.execute(delete(webhook_deliveries).where(_d.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < BATCH:
                break
    return deleted
