"""The report aggregates the flusher keeps are exactly what the events say, whatever the path:
batch by batch with verdicts changing afterwards, replays, concurrent flushers, or the
migration that fills them from events recorded before it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, select

from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.platform.reports.activity import link_report, timeline
from pixeltrail.platform.reports.contacts import contacts_page
from pixeltrail.platform.reports.summary import campaign_summary
from pixeltrail.store.db import _alembic_config, upgrade, write_transaction
from pixeltrail.store.events import insert_events
from pixeltrail.store.report_aggregates import TABLES, reason_label, rebuild_reports
from pixeltrail.tracking.hits import Event, HitKind

from ..dbs import DATABASES, Database, fresh_database
from .conftest import NAMES, OUTLOOK, SAFARI, SENT, Campaign, H, make_campaign, tell_story

Snapshot = dict[str, list[tuple[Any, ...]]]


@pytest.fixture(params=DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        yield database


def _account(engine: Engine, email: str = "o@acme.example") -> str:
    with write_transaction(engine) as conn:
        account, _ = create_account(conn, "Acme", email, timezone="Europe/Paris")
    return account.id


def _snapshot(engine: Engine) -> Snapshot:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(row) for row in conn.execute(select(t))) for t in TABLES}


def _rebuilt(engine: Engine, campaign_id: str) -> Snapshot:
    with write_transaction(engine) as conn:
        rebuild_reports(conn, campaign_id)
    return _snapshot(engine)


def test_flusher_aggregates_equal_a_rebuild_from_the_events(db: Database) -> None:
    engine = db.migrated()
    campaign = make_campaign(engine, _account(engine), NAMES, failed=["fay"])
    tell_story(campaign)  # two batches; the second changes verdicts of the first
    kept = _snapshot(engine)
    assert all(kept.values())  # every table has rows
    assert _rebuilt(engine, campaign.id) == kept


def test_replaying_a_batch_changes_nothing(db: Database) -> None:
    engine = db.migrated()
    campaign = make_campaign(engine, _account(engine), ["ann"])
    batch = [
        campaign.hit("ann", "open", SENT + H, "198.51.100.7", OUTLOOK),
        campaign.hit("ann", "click", SENT + H + 60_000, "198.51.100.7", SAFARI, link=2),
    ]
    campaign.record(*batch)
    once = _snapshot(engine)
    campaign.record(*batch)  # a crash after commit, before the spool segment was deleted
    assert _snapshot(engine) == once


def test_concurrent_flushers_keep_the_aggregates_right(db: Database) -> None:
    engine = db.migrated()
    campaign = make_campaign(engine, _account(engine), ["ann", "bob"])
    errors: list[BaseException] = []

    def flusher(offset: int) -> None:
        try:
            for n in range(15):
                at = SENT + H + (offset + 2 * n) * 60_000
                campaign.record(
                    campaign.hit("ann", "open", at, f"198.51.100.{offset + 1}", OUTLOOK),
                    campaign.hit("bob", "click", at, "203.0.113.9", SAFARI, link=1 + n % 3),
                )
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=flusher, args=(offset,)) for offset in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    kept = _snapshot(engine)
    assert sum(row[2] for row in kept["report_timeline"]) == 30  # (campaign, bucket, opens...)
    assert _rebuilt(engine, campaign.id) == kept


def _reports(engine: Engine, account_id: str, campaign_id: str) -> list[Any]:
    with engine.connect() as conn:
        return [
            campaign_summary(conn, account_id, campaign_id),
            link_report(conn, account_id, campaign_id),
            timeline(conn, account_id, campaign_id, "hour"),
            contacts_page(conn, account_id, campaign_id),
        ]


def test_the_migration_fills_the_aggregates_from_events_already_recorded(db: Database) -> None:
    with db.engine.connect() as conn:
        command.upgrade(_alembic_config(conn), "0003")
    engine = db.engine
    accounts = _account(engine), _account(engine, "p@other.example")
    campaign = make_campaign(engine, accounts[0], ["ann", "bob", "cy"])
    other = make_campaign(engine, accounts[1], ["dee"])
    events = _story_events(campaign) + _story_events(other, name="dee")
    with write_transaction(engine) as conn:
        insert_events(conn, events)
    upgrade(engine)
    migrated = [_reports(engine, accounts[0], campaign.id), _reports(engine, accounts[1], other.id)]
    assert migrated[0][0]["opens"]["human"]["total"] == 3
    assert migrated[1][0]["clicks"]["machine"]["total"] == 2
    with write_transaction(engine) as conn:
        rebuild_reports(conn, campaign.id)
        rebuild_reports(conn, other.id)
    rebuilt = [_reports(engine, accounts[0], campaign.id), _reports(engine, accounts[1], other.id)]
    assert rebuilt == migrated


def _story_events(campaign: Campaign, name: str | None = None) -> list[Event]:
    """Verdicts as the classifier gives them, written directly (no aggregates at 0003)."""
    ip, mpp = "198.51.100.7", "Apple Mail Privacy Protection: IP 17.5.5.5 in Apple's ranges"
    rows: list[tuple[str, HitKind, int, str, str, int | None, str, str]] = [
        ("ann", "open", SENT + H, ip, OUTLOOK, None, "human", "x"),
        ("ann", "open", SENT + 9 * H, ip, OUTLOOK, None, "human", "x"),
        ("ann", "click", SENT + H, ip, SAFARI, 2, "human", "x"),
        ("bob", "open", SENT + 60_000, "17.5.5.5", "Mozilla/5.0", None, "apple_mpp", mpp),
        ("cy", "click", SENT + 20_000, "40.107.1.1", SAFARI, 1, "scanner", "EOP"),
        ("cy", "click", SENT + 20_000, "40.107.1.1", SAFARI, 0, "scanner", "honeypot"),
        ("cy", "open", SENT + 3 * H, "66.249.1.1", "GoogleImageProxy", None, "proxy_open", "G"),
    ]
    return [
        Event(campaign.hit(name or who, kind, at, address, agent, link, link == 0), verdict, why)
        for who, kind, at, address, agent, link, verdict, why in rows
    ]


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        (
            "Apple Mail Privacy Protection: IP 17.58.102.3 in Apple's published egress ranges",
            "Apple Mail Privacy Protection: IP {ip} in Apple's published egress ranges",
        ),
        ("through the relay (IP 2001:db8:aa::);", "through the relay (IP {ip});"),
        ("within 10 s of a honeypot click (3.2 s after it)",
         "within N s of a honeypot click (N s after it)"),
        ("all 3 links clicked within 1.2 s", "all N links clicked within N s"),
        ("4 different links clicked at the same moment",
         "N different links clicked at the same moment"),
        ("clicked 2 s after sending", "clicked N s after sending"),
        # Numbers that name things stay.
        ("user agent is exactly 'Mozilla/5.0'", "user agent is exactly 'Mozilla/5.0'"),
        ("Microsoft Exchange Online Protection address range (40.94.x, seen in Safe Links scans)",
         "Microsoft Exchange Online Protection address range (40.94.x, seen in Safe Links scans)"),
    ],
)  # fmt: skip
def test_reasons_are_counted_without_their_per_event_details(reason: str, label: str) -> None:
    assert reason_label(reason) == label
