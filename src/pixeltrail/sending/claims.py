"""The message queue as the sender sees it: claiming due messages, the intent to send, leases.

While a message is `claimed` or `sending`, its `send_at_ms` holds the lease: when its worker
last touched it. A worker that stops renewing leases is taken for dead by `reconcile`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, update

from pixeltrail.platform.campaigns.status import CampaignStatus
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import campaigns, messages

# Messages claimed in one transaction: enough to keep a worker's connections busy for a while,
# few enough that several workers share a short queue evenly.
BATCH = 200
SENDING_LEASE_MS = 10 * 60 * 1000
# A worker renews the lease of its claimed, untried messages this often (a tenth of the lease,
# so a slow server never makes a live worker look dead).
LEASE_RENEWAL_MS = SENDING_LEASE_MS // 10


@dataclass(frozen=True)
class Claimed:
    id: str
    account_id: str
    campaign_id: str
    contact_id: str
    mailbox_id: str
    step_id: str
    attempts: int
    track_opens: bool
    track_clicks: bool
    track_text_links: bool
    tracking_base_url: str


def claim(conn: Connection, now: int, limit: int = BATCH) -> list[Claimed]:
    """Take up to `limit` due messages of active campaigns; several workers never share one."""
    due = (
        select(messages.c.id)
        .join(campaigns, campaigns.c.id == messages.c.campaign_id)
        .where(
            messages.c.status == MessageStatus.SCHEDULED,
            messages.c.send_at_ms <= now,
            campaigns.c.status == CampaignStatus.ACTIVE,
        )
        .order_by(messages.c.send_at_ms)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=messages)
    ids = [r.id for r in conn.execute(due)]
    if not ids:
        return []
    conn.execute(
        update(messages)
        .where(messages.c.id.in_(ids))
        .values(status=MessageStatus.CLAIMED, send_at_ms=now, attempts=messages.c.attempts + 1)
    )
    rows = conn.execute(select(messages).where(messages.c.id.in_(ids))).all()
    order = {message_id: n for n, message_id in enumerate(ids)}
    return sorted(
        (
            Claimed(
                r.id,
                r.account_id,
                r.campaign_id,
                r.contact_id,
                r.mailbox_id,
                r.step_id,
                r.attempts,
                r.track_opens,
                r.track_clicks,
                r.track_text_links,
                r.tracking_base_url,
            )
            for r in rows
        ),
        key=lambda m: order[m.id],
    )


def reconcile(conn: Connection, now: int) -> int:
    """Messages of a worker that died: untried ones go back, the ones in flight fail."""
    expired = messages.c.send_at_ms < now - SENDING_LEASE_MS
    back = conn.execute(
        update(messages)
        .where(messages.c.status == MessageStatus.CLAIMED, expired)
        .values(status=MessageStatus.SCHEDULED, attempts=messages.c.attempts - 1)
    )
    failed = conn.execute(
        update(messages)
        .where(messages.c.status == MessageStatus.SENDING, expired)
        .values(
            status=MessageStatus.FAILED,
            error="the worker stopped while sending it: it may or may not have been delivered, "
            "and is not retried so it is never sent twice",
        )
    )
    return (back.rowcount or 0) + (failed.rowcount or 0)


# Built once: the worker runs these for every few messages, and building a statement costs
# more than SQLite takes to run it.
_MARK_SENDING = (
    update(messages)
    .where(messages.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=MessageStatus.SENDING, send_at_ms=bindparam("now"))
)
_RENEW_LEASE = (
    update(messages)
    .where(
        messages.c.id.in_(bindparam("ids", expanding=True)),
        messages.c.status == MessageStatus.CLAIMED,
    )
    .values(send_at_ms=bindparam("now"))
)


def mark_sending(conn: Connection, message_ids: list[str], others: list[str], now: int) -> None:
    """The intent to send these (committed before their DATA), and a fresh lease for `others`."""
    if message_ids:
        conn.execute(_MARK_SENDING, {"ids": message_ids, "now": now})
    if others:
        conn.execute(_RENEW_LEASE, {"ids": others, "now": now})
