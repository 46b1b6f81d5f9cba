"""A permanent bounce: the address is suppressed and leaves every sequence of its account
(`end_sequences`, which an unsubscribe shares)."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from pixeltrail.platform.campaigns.status import EnrollmentStatus
from pixeltrail.platform.contacts.suppressions import suppress
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import contacts, enrollments, messages


def bounce_address(conn: Connection, account_id: str, email: str) -> bool:
    """Suppress `email` as bounced (an unsubscribe stays the stronger reason), end its active
    sequences `bounced` and cancel its messages not yet sent. True if it was not suppressed
    before. The SMTP refusal of a send and a bounce read from an INBOX both come here."""
    _, added = suppress(conn, account_id, email, "bounced")
    end_sequences(conn, account_id, email.strip().lower(), EnrollmentStatus.BOUNCED, "bounced")
    return added


def end_sequences(
    conn: Connection, account_id: str, email: str, status: EnrollmentStatus, why: str
) -> None:
    """The address (as stored) leaves every active sequence of its account with `status`;
    its messages not yet sent are cancelled ("not sent: the address <why>")."""
    same_address = select(contacts.c.id).where(
        contacts.c.account_id == account_id, contacts.c.email == email
    )
    conn.execute(
        update(enrollments)
        .where(
            enrollments.c.contact_id.in_(same_address),
            enrollments.c.status == EnrollmentStatus.ACTIVE,
        )
        .values(status=status)
    )
    conn.execute(
        update(messages)
        .where(
            messages.c.contact_id.in_(same_address),
            messages.c.status == MessageStatus.SCHEDULED,
        )
        .values(status=MessageStatus.CANCELLED, error=f"not sent: the address {why}")
    )
