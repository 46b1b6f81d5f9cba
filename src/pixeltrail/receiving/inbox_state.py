"""Where the reader is in each INBOX (mailbox_inboxes): its lease, UIDVALIDITY, last UID, error.

A node reads a mailbox only while it holds the lease (an UPDATE that succeeds when the lease is
free, expired or its own), so several nodes on one PostgreSQL database read each mailbox once.
Every write the reader makes is guarded by the lease: a node that lost it (expired while it was
stuck, or the mailbox got a new IMAP URL) finds its write refused and stops.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, Update, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pixeltrail.platform.ids import now_ms
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import mailbox_inboxes

MAX_ERROR = 500


class LeaseLost(Exception):
    """Another node reads this mailbox now, or it is no longer read as it was."""


def take_lease(engine: Engine, mailbox_id: str, owner: str, lease_ms: int) -> bool:
    """Whether this node holds the mailbox's lease now (taken or renewed)."""
    now = now_ms()
    try:
        with write_transaction(engine) as conn:
            exists = conn.execute(
                select(mailbox_inboxes.c.mailbox_id).where(
                    mailbox_inboxes.c.mailbox_id == mailbox_id
                )
            ).first()
            if exists is None:
                conn.execute(insert(mailbox_inboxes).values(mailbox_id=mailbox_id, last_uid=0))
    except IntegrityError:
        pass  # made at the same moment by another node (or the mailbox is gone): see below
    c = mailbox_inboxes.c
    with write_transaction(engine) as conn:
        taken = conn.execute(
            update(mailbox_inboxes)
            .where(
                c.mailbox_id == mailbox_id,
                or_(c.lease_owner.is_(None), c.lease_owner == owner, c.lease_until_ms < now),
            )
            .values(lease_owner=owner, lease_until_ms=now + lease_ms)
        )
        return taken.rowcount == 1


def release_lease(engine: Engine, mailbox_id: str, owner: str) -> None:
    c = mailbox_inboxes.c
    with write_transaction(engine) as conn:
        conn.execute(
            update(mailbox_inboxes)
            .where(c.mailbox_id == mailbox_id, c.lease_owner == owner)
            .values(lease_owner=None, lease_until_ms=None)
        )


def begin_reading(
    engine: Engine, mailbox_id: str, owner: str, uid_validity: int, lease_ms: int
) -> tuple[int, int | None]:
    """The last UID read of this UIDVALIDITY, and the UIDVALIDITY read before when it changed
    (then reading starts again at UID 0 of the new one). Clears the error: the INBOX opened."""
    c = mailbox_inboxes.c
    now = now_ms()
    with write_transaction(engine) as conn:
        row = conn.execute(
            select(c.uid_validity, c.last_uid).where(
                c.mailbox_id == mailbox_id, c.lease_owner == owner
            )
        ).first()
        if row is None:
            raise LeaseLost(mailbox_id)
        changed = row.uid_validity is not None and row.uid_validity != uid_validity
        last_uid = int(row.last_uid) if row.uid_validity == uid_validity else 0
        conn.execute(
            _guarded(mailbox_id, owner).values(
                uid_validity=uid_validity,
                last_uid=last_uid,
                error=None,
                checked_at_ms=now,
                lease_until_ms=now + lease_ms,
            )
        )
    return last_uid, int(row.uid_validity) if changed else None


def advance(
    conn: Connection, mailbox_id: str, owner: str, uid_validity: int, uid: int, lease_ms: int
) -> None:
    """Move the last UID read to `uid`, in the transaction that records the message; LeaseLost
    (rolling it back) unless this node still reads this UIDVALIDITY below `uid`."""
    c = mailbox_inboxes.c
    now = now_ms()
    moved = conn.execute(
        _guarded(mailbox_id, owner)
        .where(c.uid_validity == uid_validity, c.last_uid < uid)
        .values(last_uid=uid, checked_at_ms=now, lease_until_ms=now + lease_ms)
    )
    if moved.rowcount != 1:
        raise LeaseLost(mailbox_id)


def checked(engine: Engine, mailbox_id: str, owner: str, lease_ms: int) -> None:
    """The INBOX was read up to its end just now; the lease goes on. LeaseLost if it is gone."""
    now = now_ms()
    with write_transaction(engine) as conn:
        renewed = conn.execute(
            _guarded(mailbox_id, owner).values(
                error=None, checked_at_ms=now, lease_until_ms=now + lease_ms
            )
        )
        if renewed.rowcount != 1:
            raise LeaseLost(mailbox_id)


def failed(engine: Engine, mailbox_id: str, owner: str, error: str, lease_ms: int) -> None:
    """Why the INBOX cannot be read now, shown with the mailbox as imap_url_error."""
    now = now_ms()
    with write_transaction(engine) as conn:
        conn.execute(
            _guarded(mailbox_id, owner).values(
                error=error[:MAX_ERROR], lease_until_ms=now + lease_ms
            )
        )


def _guarded(mailbox_id: str, owner: str) -> Update:
    c = mailbox_inboxes.c
    return update(mailbox_inboxes).where(and_(c.mailbox_id == mailbox_id, c.lease_owner == owner))
