"""A campaign's enrolled contacts as people see them: the list, the sample one, taking one out.

- `enrolled` pages the contacts in the campaign (by contact, oldest first) with the status of
  their enrollment: `active` (still in the sequence), `finished`, `replied`, `bounced`,
  `unsubscribed`, or `stopped` (suppressed by hand, taken out, or ended before the reason
  was kept).
- `sample_contact` is who a step is previewed for: the campaign's first enrolled contact, or
  a made-up one while nobody is enrolled.
- `remove_contacts` takes contacts out. One who was never sent anything from the campaign
  leaves no trace; one with messages stays in the list as `stopped` (the report still counts
  what was sent) and their messages not yet sent are cancelled, as after an unsubscribe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from pixeltrail.platform.campaigns.campaigns import campaign_row
from pixeltrail.platform.campaigns.status import CampaignStatus, EnrollmentStatus
from pixeltrail.platform.contacts.contacts import (
    SUPPRESSED,
    Contact,
    list_contacts,
    with_suppression,
)
from pixeltrail.platform.errors import Conflict, NotFound
from pixeltrail.platform.paging import page
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import contacts, enrollments, messages

SAMPLE_CONTACT: dict[str, Any] = {
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines",
    "fields": {},
}


@dataclass(frozen=True)
class Enrolled:
    contact_id: str
    email: str
    first_name: str
    last_name: str
    company: str
    status: str
    next_step: int
    added_at_ms: int
    suppressed: str | None


def enrolled(
    conn: Connection,
    account_id: str,
    campaign_id: str,
    cursor: str | None = None,
    limit: int | None = None,
) -> tuple[list[Enrolled], str | None]:
    campaign_row(conn, account_id, campaign_id)
    query = (
        select(
            contacts.c.id,
            contacts.c.created_at_ms,
            contacts.c.email,
            contacts.c.first_name,
            contacts.c.last_name,
            contacts.c.company,
            enrollments.c.status,
            enrollments.c.next_step,
            enrollments.c.added_at_ms,
            SUPPRESSED,
        )
        .select_from(
            with_suppression(enrollments.join(contacts, contacts.c.id == enrollments.c.contact_id))
        )
        .where(enrollments.c.campaign_id == campaign_id)
    )
    rows, next_cursor = page(conn, query, contacts, cursor, limit)
    return [
        Enrolled(
            r.id,
            r.email,
            r.first_name,
            r.last_name,
            r.company,
            r.status,
            r.next_step,
            r.added_at_ms,
            r.suppressed,
        )
        for r in rows
    ], next_cursor


def sample_contact(conn: Connection, account_id: str, campaign_id: str) -> dict[str, Any]:
    """The contact a preview is rendered for (a contacts row as a mapping)."""
    campaign_row(conn, account_id, campaign_id)
    row = conn.execute(
        select(contacts)
        .join(enrollments, enrollments.c.contact_id == contacts.c.id)
        .where(enrollments.c.campaign_id == campaign_id, contacts.c.account_id == account_id)
        .order_by(enrollments.c.added_at_ms, contacts.c.created_at_ms, contacts.c.id)
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else dict(SAMPLE_CONTACT)


def account_contact_ids(conn: Connection, account_id: str) -> list[str]:
    """Every contact of the account, for "add all contacts"."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        found, cursor = list_contacts(conn, account_id, cursor=cursor, limit=500)
        ids.extend(contact.id for contact in found)
        if cursor is None:
            return ids


def candidates(
    conn: Connection, account_id: str, campaign_id: str, search: str | None, limit: int = 50
) -> list[tuple[Contact, bool]]:
    """Contacts of the account matching `search`, each with whether it is already enrolled."""
    campaign_row(conn, account_id, campaign_id)
    found, _ = list_contacts(conn, account_id, search=search, limit=limit)
    ids = [contact.id for contact in found]
    already = {
        r.contact_id
        for r in conn.execute(
            select(enrollments.c.contact_id).where(
                enrollments.c.campaign_id == campaign_id, enrollments.c.contact_id.in_(ids)
            )
        )
    }
    return [(contact, contact.id in already) for contact in found]


def remove_contacts(
    conn: Connection, account_id: str, campaign_id: str, contact_ids: Sequence[str]
) -> dict[str, int]:
    """Take contacts out of the campaign: {"removed", "stopped"} (see the module docstring)."""
    row = campaign_row(conn, account_id, campaign_id, lock=True)
    if row.status == CampaignStatus.FINISHED:
        raise Conflict("this campaign is finished: its contacts stay as they were")
    ids = list(dict.fromkeys(contact_ids))
    found = {
        r.contact_id
        for r in conn.execute(
            select(enrollments.c.contact_id).where(
                enrollments.c.campaign_id == campaign_id, enrollments.c.contact_id.in_(ids)
            )
        )
    }
    if len(found) != len(ids):
        raise NotFound("this contact is not in the campaign", "contact_ids")
    with_messages = {
        r.contact_id
        for r in conn.execute(
            select(messages.c.contact_id)
            .where(messages.c.campaign_id == campaign_id, messages.c.contact_id.in_(ids))
            .distinct()
        )
    }
    untouched = [i for i in ids if i not in with_messages]
    if untouched:
        conn.execute(
            delete(enrollments).where(
                enrollments.c.campaign_id == campaign_id, enrollments.c.contact_id.in_(untouched)
            )
        )
    if with_messages:
        conn.execute(
            update(enrollments)
            .where(
                enrollments.c.campaign_id == campaign_id,
                enrollments.c.contact_id.in_(with_messages),
                enrollments.c.status == EnrollmentStatus.ACTIVE,
            )
            .values(status=EnrollmentStatus.STOPPED)
        )
        conn.execute(
            update(messages)
            .where(
                messages.c.campaign_id == campaign_id,
                messages.c.contact_id.in_(with_messages),
                messages.c.status == MessageStatus.SCHEDULED,
            )
            .values(status=MessageStatus.CANCELLED, error="not sent: taken out of the campaign")
        )
    return {"removed": len(untouched), "stopped": len(with_messages)}
