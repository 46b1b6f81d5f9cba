"""Event retention: events older than the account's retention_days are deleted, the reports
stay what they were, and hits arriving afterwards are counted on top of them."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from pixeltrail.cli import main
from pixeltrail.platform.reports.activity import link_report, timeline
from pixeltrail.platform.reports.contacts import contacts_page
from pixeltrail.platform.reports.summary import campaign_summary
from pixeltrail.recording.retention import RetentionLoop
from pixeltrail.runtime.background_process import PURGED_AFTER_EVENTS, Background
from pixeltrail.store.db import write_transaction
from pixeltrail.store.event_retention import purge_expired_events
from pixeltrail.store.report_aggregates import TABLES, rebuild_reports
from pixeltrail.store.schema import events, messages
from pixeltrail.tracking.hits import now_ms

from ..api.conftest import Api, Tenant, make_settings
from ..dbs import Database
from .conftest import NAMES, OUTLOOK, SAFARI, SENT, Campaign, make_campaign, tell_story

DAY = 86_400_000
Story = tuple[Api, Tenant, Campaign]
# The per-contact lists of single events (clicks, machine events) are read from the events
# themselves: they show the retained ones only. Every count stays.
EVENT_LISTS = ("clicks", "machine_events")


def _reports(engine: Engine, account_id: str, campaign_id: str) -> list[Any]:
    with engine.connect() as conn:
        page, _ = contacts_page(conn, account_id, campaign_id)
        return [
            campaign_summary(conn, account_id, campaign_id),
            link_report(conn, account_id, campaign_id),
            timeline(conn, account_id, campaign_id, "hour"),
            timeline(conn, account_id, campaign_id, "day"),
            [{k: v for k, v in row.items() if k not in EVENT_LISTS} for row in page],
        ]


def _aggregates(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(row) for row in conn.execute(select(t))) for t in TABLES}


def _events_of(engine: Engine, campaign: Campaign) -> int:
    query = (
        select(func.count())
        .select_from(events.join(messages, messages.c.id == events.c.message_id))
        .where(messages.c.campaign_id == campaign.id)
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _rebuilt(engine: Engine, *campaigns: Campaign) -> dict[str, list[tuple[Any, ...]]]:
    with write_transaction(engine) as conn:
        for campaign in campaigns:
            rebuild_reports(conn, campaign.id)
    return _aggregates(engine)


def test_old_events_go_reports_stay_and_new_hits_count_on_top(story: Story) -> None:
    api, tenant, campaign = story
    engine = api.engine
    assert tenant.patch("/account", {"retention_days": 30}).status_code == 200
    now = now_ms()
    # A recent open, inside the 30 days, and another account (no retention) with old events.
    campaign.record(campaign.hit("ann", "open", now - 2 * DAY, "198.51.100.7", OUTLOOK))
    other_tenant = api.account("owner@other.example")
    other = make_campaign(engine, other_tenant.account_id, NAMES, failed=["fay"])
    tell_story(other)
    old = _events_of(engine, campaign) - 1
    kept_other = _events_of(engine, other)
    before = _reports(engine, tenant.account_id, campaign.id)
    before_other = _reports(engine, other_tenant.account_id, other.id)
    aggregates = _aggregates(engine)
    assert before[0]["opens"]["human"]["total"] == 7

    purged = purge_expired_events(engine, at_ms=now, batch=4, pause=0)

    assert [(p.account_id, p.retention_days, p.events) for p in purged] == [
        (tenant.account_id, 30, old)
    ]
    assert _events_of(engine, campaign) == 1  # the recent open
    assert _events_of(engine, other) == kept_other
    assert _reports(engine, tenant.account_id, campaign.id) == before
    assert _reports(engine, other_tenant.account_id, other.id) == before_other
    assert _aggregates(engine) == aggregates
    # A rebuild from what is left gives the same numbers: purged events still count there.
    assert _rebuilt(engine, campaign, other) == aggregates
    # Idempotent: nothing more to delete, nothing changes.
    again = purge_expired_events(engine, at_ms=now, pause=0)
    assert [p.events for p in again] == [0]
    assert _aggregates(engine) == aggregates

    # Hits after the purge, from contacts whose history is gone: counted on top of it.
    campaign.record(
        campaign.hit("cy", "open", now, "192.0.2.80", OUTLOOK),
        campaign.hit("eve", "click", now + 1000, "192.0.2.44", SAFARI, link=2),
    )
    after = _reports(engine, tenant.account_id, campaign.id)
    opens, clicks = after[0]["opens"]["human"], after[0]["clicks"]["human"]
    was_opens, was_clicks = before[0]["opens"]["human"], before[0]["clicks"]["human"]
    assert (opens["total"], opens["unique"]) == (was_opens["total"] + 1, was_opens["unique"])
    assert (clicks["total"], clicks["unique"]) == (was_clicks["total"] + 1, was_clicks["unique"])
    rows = {row["email"]: row for row in after[4]}
    was = {row["email"]: row for row in before[4]}
    cy, eve = rows["cy@example.com"], rows["eve@example.com"]
    assert cy["open_count"] == was["cy@example.com"]["open_count"] + 1
    assert cy["first_opened_at"] == was["cy@example.com"]["first_opened_at"]
    assert eve["click_count"] == 2
    link = {row["destination"]: row for row in after[1]}
    was_link = {row["destination"]: row for row in before[1]}
    guide = "https://blog.example.com/guide"
    assert link[guide]["total_clicks"] == was_link[guide]["total_clicks"] + 1
    assert link[guide]["unique_clicks"] == was_link[guide]["unique_clicks"]
    assert _rebuilt(engine, campaign) == _aggregates(engine)


def test_null_retention_keeps_everything(story: Story) -> None:
    api, tenant, campaign = story
    count = _events_of(api.engine, campaign)
    assert tenant.patch("/account", {"retention_days": 0}).status_code == 422
    purged = purge_expired_events(api.engine, pause=0)
    assert purged == []
    assert _events_of(api.engine, campaign) == count
    assert tenant.patch("/account", {"retention_days": 1}).status_code == 200
    dry = purge_expired_events(api.engine, dry_run=True)
    assert [p.events for p in dry] == [count]
    assert _events_of(api.engine, campaign) == count  # a dry run deletes nothing
    assert tenant.patch("/account", {"retention_days": None}).json()["retention_days"] is None
    assert purge_expired_events(api.engine, pause=0) == []
    assert _events_of(api.engine, campaign) == count


def test_the_cli_purges_and_says_how_many_per_account(
    story: Story, database: Database, tmp_path: Path
) -> None:
    api, tenant, campaign = story
    count = _events_of(api.engine, campaign)
    env = {**database.env, "PIXELTRAIL_DATA_DIR": str(tmp_path / "data")}
    nothing = CliRunner().invoke(main, ["events", "purge"], env=env)
    assert nothing.exit_code == 0, nothing.output
    assert "no account has a retention period: every event is kept" in nothing.output
    tenant.patch("/account", {"retention_days": 7})
    other = api.account("owner@other.example", name="Other")
    other.patch("/account", {"retention_days": 36500})

    dry = CliRunner().invoke(main, ["events", "purge", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert f"{tenant.account_id} (Acme): {count} event(s) older than 7 days" in dry.output
    assert f"{other.account_id} (Other): 0 event(s) older than 36500 days" in dry.output
    assert "would be deleted" in dry.output
    assert _events_of(api.engine, campaign) == count

    done = CliRunner().invoke(main, ["events", "purge"], env=env)
    assert done.exit_code == 0, done.output
    assert f"{tenant.account_id} (Acme): {count} event(s) older than 7 days" in done.output
    assert "deleted" in done.output and "would be" not in done.output
    assert _events_of(api.engine, campaign) == 0
    again = CliRunner().invoke(main, ["events", "purge"], env=env)
    assert f"{tenant.account_id} (Acme): 0 event(s)" in again.output


def test_the_background_process_purges_on_its_own(story: Story, tmp_path: Path) -> None:
    api, tenant, campaign = story
    tenant.patch("/account", {"retention_days": 1})
    background = Background(make_settings(tmp_path, "sqlite://"), api.engine)
    loop = next(s for s in background.services if isinstance(s, RetentionLoop))
    assert (loop.interval, loop.first_after) == (3600, 60)
    fast = RetentionLoop(api.engine, PURGED_AFTER_EVENTS, interval=3600, first_after=0)
    fast.start()
    try:
        deadline = time.monotonic() + 20
        while _events_of(api.engine, campaign) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        fast.stop()
    assert _events_of(api.engine, campaign) == 0


def test_a_purge_beside_the_flusher_loses_and_doubles_nothing(story: Story) -> None:
    api, tenant, campaign = story
    engine = api.engine
    tenant.patch("/account", {"retention_days": 30})
    opens_before = _all_opens(engine, campaign)
    errors: list[BaseException] = []
    done = threading.Event()

    def flusher() -> None:
        try:
            for n in range(15):  # old hits, so that the purge takes them as they arrive
                at = SENT + 2 * DAY + n * 60_000
                campaign.record(
                    campaign.hit("ann", "open", at, "198.51.100.7", OUTLOOK),
                    campaign.hit("bob", "click", at, "203.0.113.9", SAFARI, link=1 + n % 3),
                )
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=flusher)
    thread.start()
    purged = 0
    while not done.is_set():
        purged += sum(p.events for p in purge_expired_events(engine, batch=3, pause=0))
    thread.join(60)
    purged += sum(p.events for p in purge_expired_events(engine, pause=0))
    assert not errors
    assert purged > 0 and _events_of(engine, campaign) == 0
    assert _all_opens(engine, campaign) == opens_before + 15
    assert _rebuilt(engine, campaign) == _aggregates(engine)


def _all_opens(engine: Engine, campaign: Campaign) -> int:
    """Opens of the campaign, people's and machines' (each hit is one or the other)."""
    with engine.connect() as conn:
        summary = campaign_summary(conn, campaign.account_id, campaign.id)
    return int(summary["opens"]["human"]["total"] + summary["opens"]["machine"]["total"])
