"""Rows a sending test needs, inserted directly: account, mailbox, contacts, campaign, steps.

The platform's own functions build these for users; tests of the scheduler and the worker
insert them directly so each test states exactly the state it starts from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert

from pixeltrail.config import Settings
from pixeltrail.platform.mail.mailboxes import secret_box
from pixeltrail.store.schema import (
    accounts,
    campaign_steps,
    campaigns,
    contacts,
    enrollments,
    mailboxes,
)


@dataclass(frozen=True)
class Chain:
    account_id: str
    mailbox_id: str
    campaign_id: str
    contact_ids: list[str]
    step_ids: list[str]


def make_chain(
    conn: Connection,
    settings: Settings,
    *,
    emails: Sequence[str] = ("ada@example.org",),
    steps: Sequence[tuple[str, str, int]] = (
        (
            "Hello {{ first_name }}",
            '<p>Hi {{ first_name }}, <a href="https://example.com/x?a=1&amp;b=2">see</a></p>',
            0,
        ),
    ),
    smtp_url: str | None = None,
    schedule: dict[str, Any] | None = None,
    daily_limit: int = 1000,
    track_clicks: bool = True,
    status: str = "active",
    prefix: str = "a",
) -> Chain:
    account = f"acct_{prefix}"
    conn.execute(
        insert(accounts).values(
            id=account,
            name="Acme",
            timezone="UTC",
            default_track_opens=True,
            anonymize_ips=False,
            retention_days=None,
            created_at_ms=0,
        )
    )
    encrypted = secret_box(settings).encrypt(smtp_url) if smtp_url else None
    conn.execute(
        insert(mailboxes).values(
            id=f"mbx_{prefix}",
            account_id=account,
            name="Sales",
            from_email="sales@acme.example",
            from_name="Acme Sales",
            smtp_url_encrypted=encrypted,
            daily_limit=daily_limit,
            created_at_ms=0,
        )
    )
    conn.execute(
        insert(campaigns).values(
            id=f"cmp_{prefix}",
            account_id=account,
            name="Launch",
            mailbox_id=f"mbx_{prefix}",
            status=status,
            schedule=schedule or {},
            track_opens=True,
            track_clicks=track_clicks,
            track_text_links=True,
            tracking_domain_id=None,
            start_at_ms=None,
            created_at_ms=0,
            updated_at_ms=0,
        )
    )
    step_ids = []
    for position, (subject, html, delay) in enumerate(steps, start=1):
        step_id = f"stp_{prefix}{position}"
        conn.execute(
            insert(campaign_steps).values(
                id=step_id,
                campaign_id=f"cmp_{prefix}",
                position=position,
                subject=subject,
                html=html,
                text=None,
                delay_days=delay,
            )
        )
        step_ids.append(step_id)
    contact_ids = []
    for n, email in enumerate(emails):
        contact_id = f"ct_{prefix}{n}"
        conn.execute(
            insert(contacts).values(
                id=contact_id,
                account_id=account,
                email=email,
                first_name=email.split("@")[0].title(),
                last_name="",
                company="",
                fields={},
                created_at_ms=n,
                updated_at_ms=n,
            )
        )
        conn.execute(
            insert(enrollments).values(
                campaign_id=f"cmp_{prefix}",
                contact_id=contact_id,
                status="active",
                next_step=1,
                added_at_ms=0,
            )
        )
        contact_ids.append(contact_id)
    return Chain(account, f"mbx_{prefix}", f"cmp_{prefix}", contact_ids, step_ids)
