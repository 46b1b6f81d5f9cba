"""Clicks per link destination, and opens and clicks per local hour or day (DST included)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ..api.conftest import Api, Tenant
from .conftest import LINKS, OUTLOOK, SAFARI, Campaign, make_campaign

Story = tuple[Api, Tenant, Campaign]


def test_links_count_people_and_machines_apart(story: Story) -> None:
    _, tenant, campaign = story
    r = tenant.get(f"/campaigns/{campaign.id}/report/links")
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [
        # eve; Safe Links on cy's copy.
        {
            "destination": LINKS[2],
            "unique_clicks": 1,
            "total_clicks": 1,
            "machine_unique_clicks": 1,
            "machine_clicks": 1,
        },
        # ann; Safe Links on cy's copy and hal's click condemned by the honeypot.
        {
            "destination": LINKS[1],
            "unique_clicks": 1,
            "total_clicks": 1,
            "machine_unique_clicks": 2,
            "machine_clicks": 2,
        },
        {
            "destination": LINKS[3],
            "unique_clicks": 0,
            "total_clicks": 0,
            "machine_unique_clicks": 1,
            "machine_clicks": 1,
        },
    ]


def test_a_destination_repeated_in_a_message_counts_its_people_once(api: Api) -> None:
    tenant = api.account("links@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id, ["ann", "bob"])
    at = int(datetime(2026, 5, 4, 9, tzinfo=UTC).timestamp() * 1000)
    # Links 1 and 4 of the message go to the same page (a button and a text link).
    ann = [campaign.hit("ann", "click", at + n * 60_000, "198.51.100.7", SAFARI, 1) for n in (0, 1)]
    twin = replace(campaign.hit("ann", "click", at + 300_000, "198.51.100.7", SAFARI, 1), link=4)
    bob = campaign.hit("bob", "click", at, "203.0.113.9", SAFARI, link=1)
    campaign.record(*ann, twin, bob)
    (item,) = tenant.get(f"/campaigns/{campaign.id}/report/links").json()["items"]
    assert (item["destination"], item["unique_clicks"], item["total_clicks"]) == (LINKS[1], 2, 4)


def _timeline(tenant: Tenant, campaign: Campaign, **params: str) -> dict[str, Any]:
    r = tenant.get(f"/campaigns/{campaign.id}/report/timeline", **params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_hours_in_the_accounts_zone_across_the_night_clocks_go_forward(story: Story) -> None:
    _, tenant, campaign = story
    body = _timeline(tenant, campaign, granularity="hour")
    assert (body["granularity"], body["timezone"]) == ("hour", "Europe/Paris")
    assert body["items"] == [
        # 22:00-23:00 UTC: MPP prefetch, Safe Links (open and 3 clicks), eve via Gmail + click.
        {"start": "2026-03-28T23:00:00+01:00", "opens": 1, "machine_opens": 2, "clicks": 1,
         "machine_clicks": 3},
        {"start": "2026-03-29T00:00:00+01:00", "opens": 1, "machine_opens": 0, "clicks": 1,
         "machine_clicks": 0},  # ann opens and clicks
        {"start": "2026-03-29T01:00:00+01:00", "opens": 1, "machine_opens": 0, "clicks": 0,
         "machine_clicks": 0},  # dee
        # 02:00 does not exist that night: the next hour is 03:00, summer time.
        {"start": "2026-03-29T03:00:00+02:00", "opens": 1, "machine_opens": 0, "clicks": 0,
         "machine_clicks": 2},  # cy for real; hal's click and the honeypot
        {"start": "2026-03-29T05:00:00+02:00", "opens": 1, "machine_opens": 0, "clicks": 0,
         "machine_clicks": 0},  # ann again
        {"start": "2026-03-30T02:00:00+02:00", "opens": 1, "machine_opens": 0, "clicks": 0,
         "machine_clicks": 0},  # the forward
    ]  # fmt: skip


def test_days_are_local_days(story: Story) -> None:
    _, tenant, campaign = story
    body = _timeline(tenant, campaign)  # days by default
    assert body["items"] == [
        {"start": "2026-03-28T00:00:00+01:00", "opens": 1, "machine_opens": 2, "clicks": 1,
         "machine_clicks": 3},
        # The 23-hour day: everything from 23:00 UTC on the 28th to 22:00 UTC on the 29th.
        {"start": "2026-03-29T00:00:00+01:00", "opens": 4, "machine_opens": 0, "clicks": 1,
         "machine_clicks": 2},
        {"start": "2026-03-30T00:00:00+02:00", "opens": 1, "machine_opens": 0, "clicks": 0,
         "machine_clicks": 0},
    ]  # fmt: skip


def test_another_zone_on_request(story: Story) -> None:
    _, tenant, campaign = story
    utc = _timeline(tenant, campaign, tz="UTC")
    assert utc["timezone"] == "UTC"
    assert [item["start"] for item in utc["items"]] == [
        "2026-03-28T00:00:00+00:00",
        "2026-03-29T00:00:00+00:00",
        "2026-03-30T00:00:00+00:00",  # the forward, at midnight UTC
    ]
    kolkata = _timeline(tenant, campaign, tz="Asia/Kolkata", granularity="hour")
    starts = [item["start"] for item in kolkata["items"]]
    assert starts[0] == "2026-03-29T03:00:00+05:30"  # 22:00 UTC is 03:30 there


def test_the_night_clocks_go_back_has_two_hours_at_two(api: Api) -> None:
    tenant = api.account("fall@acme.example", timezone="Europe/Paris")
    campaign = make_campaign(api.engine, tenant.account_id, ["ann"])
    first = int(datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp() * 1000)  # 02:30 CEST
    campaign.record(
        campaign.hit("ann", "open", first, "198.51.100.7", OUTLOOK),
        campaign.hit("ann", "open", first + 3_600_000, "198.51.100.7", OUTLOOK),  # 02:30 CET
    )
    hours = _timeline(tenant, campaign, granularity="hour")["items"]
    assert [(h["start"], h["opens"]) for h in hours] == [
        ("2026-10-25T02:00:00+02:00", 1),
        ("2026-10-25T02:00:00+01:00", 1),
    ]
    (day,) = _timeline(tenant, campaign)["items"]
    assert (day["start"], day["opens"]) == ("2026-10-25T00:00:00+02:00", 2)


def test_bad_granularity_or_zone_names_the_parameter(story: Story) -> None:
    _, tenant, campaign = story
    r = tenant.get(f"/campaigns/{campaign.id}/report/timeline", granularity="week")
    assert r.status_code == 422 and r.json()["error"]["field"] == "granularity"
    r = tenant.get(f"/campaigns/{campaign.id}/report/timeline", tz="Mars/Olympus")
    assert r.status_code == 422 and r.json()["error"]["field"] == "tz"
