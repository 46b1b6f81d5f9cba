"""Campaign tests: the API fixtures of tests/api, and rows of features built alongside.

Contacts, suppressions, tracking domains and messages are written straight into their
tables here, so these tests do not depend on how those features' own code creates them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, select, update

from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import (
    campaign_steps,
    contacts,
    messages,
    suppressions,
    tracking_domains,
)
from pixeltrail.tracking.tokens import new_message_id

from ..api.conftest import Api, Tenant, api, database

__all__ = ["Api", "Tenant", "api", "database"]

STEP = {"subject": "Hi {{ first_name }}", "html": "<p>Hello {{ first_name }}</p>", "delay_days": 0}


def add_contact(engine: Engine, account_id: str, email: str, first_name: str = "Ada") -> str:
    contact_id = new_id("ct")
    with write_transaction(engine) as conn:
        conn.execute(
            insert(contacts).values(
                id=contact_id,
                account_id=account_id,
                email=email,
                first_name=first_name,
                last_name="",
                company="",
                fields={},
                created_at_ms=now_ms(),
                updated_at_ms=now_ms(),
            )
        )
    return contact_id


def suppress(engine: Engine, account_id: str, email: str) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            insert(suppressions).values(
                account_id=account_id, email=email, reason="unsubscribed", created_at_ms=now_ms()
            )
        )


def add_domain(engine: Engine, account_id: str, hostname: str, status: str = "pending") -> str:
    domain_id = new_id("dom")
    with write_transaction(engine) as conn:
        conn.execute(
            insert(tracking_domains).values(
                id=domain_id,
                account_id=account_id,
                hostname=hostname,
                status=status,
                cname_target="t.pixeltrail.example",
                created_at_ms=now_ms(),
            )
        )
    return domain_id


def set_domain_status(engine: Engine, domain_id: str, status: str) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            update(tracking_domains).where(tracking_domains.c.id == domain_id).values(status=status)
        )


def add_message(
    engine: Engine,
    campaign: dict[str, Any],
    account_id: str,
    contact_id: str,
    position: int = 1,
    status: str = "scheduled",
    **tracking: bool,
) -> str:
    """A message row as the scheduler makes them, with its own snapshot of the settings."""
    message_id = new_message_id()
    with write_transaction(engine) as conn:
        step_id = conn.execute(
            select(campaign_steps.c.id).where(
                campaign_steps.c.campaign_id == campaign["id"],
                campaign_steps.c.position == position,
            )
        ).scalar_one()
        conn.execute(
            insert(messages).values(
                id=message_id,
                account_id=account_id,
                campaign_id=campaign["id"],
                step_id=step_id,
                contact_id=contact_id,
                mailbox_id=campaign["mailbox_id"],
                status=status,
                send_at_ms=now_ms() + 3_600_000,
                track_opens=tracking.get("track_opens", True),
                track_clicks=tracking.get("track_clicks", False),
                track_text_links=tracking.get("track_text_links", True),
                tracking_base_url="http://127.0.0.1:8000",
                attempts=0,
                created_at_ms=now_ms(),
            )
        )
    return message_id


def new_mailbox(tenant: Tenant, **body: Any) -> dict[str, Any]:
    r = tenant.post("/mailboxes", {"name": "Sales", "from_email": "sales@acme.example", **body})
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def new_campaign(tenant: Tenant, steps: int = 1, **body: Any) -> dict[str, Any]:
    mailbox = body.pop("mailbox_id", None) or new_mailbox(tenant)["id"]
    payload = {"name": "Q1 outreach", "mailbox_id": mailbox, "steps": [STEP] * steps, **body}
    r = tenant.post("/campaigns", payload)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result
