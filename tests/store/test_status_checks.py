"""Statuses and classifications outside their enums are refused by the database itself."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, Table, func, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError

from pixeltrail.inbound.classify import InboundKind
from pixeltrail.platform.campaigns.status import CampaignStatus, EnrollmentStatus
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.inbox.matching import MatchedBy
from pixeltrail.platform.webhooks.status import DeliveryStatus
from pixeltrail.store.db import _alembic_config, current_revision, upgrade, write_transaction
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import (
    accounts,
    campaign_steps,
    campaigns,
    contacts,
    enrollments,
    events,
    inbound_messages,
    mailboxes,
    messages,
    metadata,
    tracking_domains,
    webhook_deliveries,
    webhook_endpoints,
)
from pixeltrail.tracking.hits import Classification

from ..dbs import Database, fresh_database

T = 1_767_225_600_000
CHECKED: list[tuple[Table, str, type[StrEnum]]] = [
    (tracking_domains, "status", DomainStatus),
    (campaigns, "status", CampaignStatus),
    (enrollments, "status", EnrollmentStatus),
    (messages, "status", MessageStatus),
    (webhook_deliveries, "status", DeliveryStatus),
    (events, "classification", Classification),
]
IDS = [f"{table.name}.{column}" for table, column, _ in CHECKED]
# Checked from 0009 on, with the tables that came then.
INBOUND_CHECKED: list[tuple[Table, str, type[StrEnum]]] = [
    (inbound_messages, "kind", InboundKind),
    (inbound_messages, "matched_by", MatchedBy),
]
INBOUND_ROW = {
    "id": "inb_1", "account_id": "acct_1", "mailbox_id": "mbx_1", "uid_validity": 7, "uid": 1,
    "kind": "reply", "reason": "x", "message_id": "AAECAwQFBgcICQoL", "campaign_id": "cmp_1",
    "contact_id": "ct_1", "matched_by": "in_reply_to", "from_email": "ann@example.com",
    "subject": "Re: Hi", "text": "Yes", "received_at_ms": T, "created_at_ms": T,
}  # fmt: skip
# One valid row in each checked table (and what they point at), in the order they can go in.
ROWS: list[tuple[Table, dict[str, Any]]] = [
    (accounts, {"id": "acct_1", "name": "Acme", "timezone": "UTC",
                "default_track_opens": True, "anonymize_ips": False, "created_at_ms": T}),
    (mailboxes, {"id": "mbx_1", "account_id": "acct_1", "name": "Sales",
                 "from_email": "a@acme.example", "from_name": "A", "daily_limit": 100,
                 "created_at_ms": T}),
    (tracking_domains, {"id": "dom_1", "account_id": "acct_1", "hostname": "t.acme.example",
                        "status": "verified", "cname_target": "pixeltrail.example",
                        "created_at_ms": T}),
    (contacts, {"id": "ct_1", "account_id": "acct_1", "email": "ann@example.com",
                "first_name": "Ann", "last_name": "", "company": "", "fields": {},
                "created_at_ms": T, "updated_at_ms": T}),
    (campaigns, {"id": "cmp_1", "account_id": "acct_1", "name": "Spring",
                 "mailbox_id": "mbx_1", "status": "active", "schedule": {},
                 "track_opens": True, "track_clicks": True, "track_text_links": False,
                 "tracking_domain_id": "dom_1", "created_at_ms": T, "updated_at_ms": T}),
    (campaign_steps, {"id": "stp_1", "campaign_id": "cmp_1", "position": 1, "subject": "Hi",
                      "html": "<p>Hi</p>", "delay_days": 0}),
    (enrollments, {"campaign_id": "cmp_1", "contact_id": "ct_1", "status": "stopped",
                   "next_step": 2, "added_at_ms": T}),
    (messages, {"id": "AAECAwQFBgcICQoL", "account_id": "acct_1", "campaign_id": "cmp_1",
                "step_id": "stp_1", "contact_id": "ct_1", "mailbox_id": "mbx_1",
                "status": "sent", "send_at_ms": T, "track_opens": True, "track_clicks": True,
                "track_text_links": False, "tracking_base_url": "https://t.acme.example",
                "attempts": 1, "created_at_ms": T}),
    (webhook_endpoints, {"id": "whe_1", "account_id": "acct_1", "url": "https://h.example/",
                         "secret_encrypted": "x", "event_types": [], "created_at_ms": T}),
    (webhook_deliveries, {"id": "whd_1", "endpoint_id": "whe_1", "account_id": "acct_1",
                          "event_type": "email.opened", "payload": {}, "status": "delivered",
                          "attempts": 1, "created_at_ms": T}),
    (events, {"id": "e1", "kind": "open", "message_id": "AAECAwQFBgcICQoL", "honeypot": False,
              "at_ms": T, "ip": "192.0.2.1", "user_agent": "Mozilla/5.0", "method": "GET",
              "classification": "apple_mpp", "reason": "x", "recorded_at_ms": T}),
]  # fmt: skip


def _insert_rows(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        for table, row in ROWS:
            conn.execute(insert(table).values(row))


def _refused(engine: Engine, table: Table, column: str, value: str) -> bool:
    try:
        with write_transaction(engine) as conn:
            conn.execute(update(table).values({column: value}))
    except IntegrityError:
        return True
    return False


@pytest.mark.parametrize(("table", "column", "values"), CHECKED, ids=IDS)
def test_a_value_outside_the_enum_is_refused(
    store: Engine, table: Table, column: str, values: type[StrEnum]
) -> None:
    _insert_rows(store)
    assert _refused(store, table, column, "archived")
    assert _refused(store, table, column, next(iter(values)).name)  # a name is not a value
    assert not any(_refused(store, table, column, value) for value in values)


def test_the_upgrade_keeps_existing_rows_and_then_checks_them(engine: Engine) -> None:
    with engine.connect() as conn:
        command.upgrade(_alembic_config(conn), "0007")
    _insert_rows(engine)
    upgrade(engine)
    assert current_revision(engine) != "0007"
    with engine.connect() as conn:
        for table, row in ROWS:
            kept = conn.execute(select(table)).one()._mapping
            assert {name: kept[name] for name in row} == row
    for table, column, _ in CHECKED:
        assert _refused(engine, table, column, "archived")
    # Foreign keys hold as before (SQLite's are on again and point at the rebuilt tables).
    with pytest.raises(IntegrityError), write_transaction(engine) as conn:
        conn.execute(update(enrollments).values(campaign_id="cmp_gone"))


def test_a_database_holding_an_unknown_status_is_left_as_it_was(engine: Engine) -> None:
    with engine.connect() as conn:
        command.upgrade(_alembic_config(conn), "0007")
    _insert_rows(engine)
    with write_transaction(engine) as conn:
        conn.execute(update(campaigns).values(status="archived"))
    with pytest.raises(IntegrityError):
        upgrade(engine)
    assert current_revision(engine) == "0007"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(campaigns)).scalar_one() == 1


def test_the_migrations_make_the_checks_schema_py_describes(
    database: Database, tmp_path: Path
) -> None:
    # Alembic's comparison leaves CHECK constraints out: each database compares its own.
    migrated = database.migrated()
    with fresh_database(database.kind, tmp_path / "described") as described:
        metadata.create_all(described.engine)
        assert _checks(migrated) == _checks(described.engine)
    assert {name for table in _checks(migrated).values() for name, _ in table} == {
        f"ck_{table.name}_{column}" for table, column, _ in CHECKED + INBOUND_CHECKED
    }


@pytest.mark.parametrize(("table", "column", "values"), INBOUND_CHECKED, ids=["kind", "match"])
def test_an_inbound_message_of_no_known_kind_or_match_is_refused(
    store: Engine, table: Table, column: str, values: type[StrEnum]
) -> None:
    _insert_rows(store)
    with write_transaction(store) as conn:
        conn.execute(insert(inbound_messages).values(INBOUND_ROW))
    assert _refused(store, table, column, "archived")
    assert not any(_refused(store, table, column, value) for value in values)


def _checks(engine: Engine) -> dict[str, list[tuple[str, str]]]:
    found = inspect(engine)
    return {
        table: sorted((c["name"] or "", c["sqltext"]) for c in found.get_check_constraints(table))
        for table in metadata.tables
    }
