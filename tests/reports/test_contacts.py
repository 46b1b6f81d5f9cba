"""Per-contact report rows: first and last opens, counts, clicks with link and time, machine
events apart with their reasons; paged by contact id; and the spreadsheet-safe CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from ..api.conftest import Api, Tenant
from .conftest import LINKS, OUTLOOK, SAFARI, SENT, Campaign, H, make_campaign

Story = tuple[Api, Tenant, Campaign]


def _rows(tenant: Tenant, campaign: Campaign) -> dict[str, dict[str, Any]]:
    r = tenant.get(f"/campaigns/{campaign.id}/report/contacts", limit=500)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None
    return {row["email"].split("@")[0]: row for row in body["items"]}


def test_every_recipient_has_a_row_and_failed_ones_none(story: Story) -> None:
    _, tenant, campaign = story
    rows = _rows(tenant, campaign)
    assert set(rows) == {"ann", "bob", "cy", "dee", "eve", "gus", "hal"}  # fay's bounced
    assert all(rows[name]["contact_id"] == campaign.contact[name] for name in rows)
    assert rows["gus"]["suppressed"] == "unsubscribed"
    assert rows["gus"] | {"contact_id": None, "email": None} == {
        "contact_id": None,
        "email": None,
        "suppressed": "unsubscribed",
        "first_opened_at": None,
        "last_opened_at": None,
        "open_count": 0,
        "proxy_open_count": 0,
        "click_count": 0,
        "machine_open_count": 0,
        "machine_click_count": 0,
        "clicks": [],
        "machine_events": [],
        "replied_at": None,
        "reply_count": 0,
        "read_by_reply": False,
        "sequence_status": None,  # never enrolled: the rows were inserted directly
        "replies": [],
    }


def test_a_person_who_opened_twice_and_clicked_once(story: Story) -> None:
    _, tenant, campaign = story
    ann = _rows(tenant, campaign)["ann"]
    assert ann["first_opened_at"] == "2026-03-28T23:00:00.000Z"
    assert ann["last_opened_at"] == "2026-03-29T03:00:00.000Z"
    assert (ann["open_count"], ann["click_count"]) == (2, 1)
    assert ann["clicks"] == [
        {
            "message_id": campaign.message["ann"],
            "link": 1,
            "destination": LINKS[1],
            "at": "2026-03-28T23:00:30.000Z",
        }
    ]
    assert ann["machine_events"] == []


def test_machine_events_are_apart_with_their_reasons(story: Story) -> None:
    _, tenant, campaign = story
    rows = _rows(tenant, campaign)
    bob = rows["bob"]
    assert (bob["open_count"], bob["machine_open_count"], bob["first_opened_at"]) == (0, 1, None)
    assert bob["machine_events"] == [
        {
            "message_id": campaign.message["bob"],
            "kind": "open",
            "at": "2026-03-28T22:02:00.000Z",
            "link": None,
            "destination": None,
            "classification": "apple_mpp",
            "reason": "Apple Mail Privacy Protection: user agent is exactly 'Mozilla/5.0'",
            "user_agent": "Mozilla/5.0",
        }
    ]
    cy = rows["cy"]
    # Safe Links opened and clicked everything at delivery; cy opened for real at 01:30 UTC.
    assert (cy["open_count"], cy["click_count"]) == (1, 0)
    assert (cy["machine_open_count"], cy["machine_click_count"]) == (1, 3)
    assert cy["first_opened_at"] == cy["last_opened_at"] == "2026-03-29T01:30:00.000Z"
    assert [(e["kind"], e["link"], e["classification"]) for e in cy["machine_events"]] == [
        ("open", None, "scanner"),
        ("click", 1, "scanner"),
        ("click", 2, "scanner"),
        ("click", 3, "scanner"),
    ]
    assert {e["reason"] for e in cy["machine_events"]} == {
        "Microsoft Exchange Online Protection address range (Safe Links / Safe Attachments scan)"
    }
    hal = rows["hal"]
    assert (hal["click_count"], hal["machine_click_count"], hal["clicks"]) == (0, 2, [])
    assert [e["reason"] for e in hal["machine_events"]] == [
        "within 10 s of a honeypot click (3 s before it)",
        "honeypot link clicked (invisible to people)",
    ]


def test_forwards_and_proxied_opens_count_as_opens(story: Story) -> None:
    _, tenant, campaign = story
    rows = _rows(tenant, campaign)
    dee, eve = rows["dee"], rows["eve"]
    assert (dee["open_count"], dee["machine_events"]) == (2, [])
    assert dee["last_opened_at"] == "2026-03-30T00:00:00.000Z"  # the forward, a day later
    assert (eve["open_count"], eve["proxy_open_count"], eve["click_count"]) == (1, 1, 1)
    assert eve["clicks"][0]["destination"] == LINKS[2]
    assert eve["machine_events"] == []


def test_pages_follow_contact_ids_without_gaps_or_repeats(story: Story) -> None:
    _, tenant, campaign = story
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        r = tenant.get(f"/campaigns/{campaign.id}/report/contacts", **params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 3
        seen += [row["contact_id"] for row in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(campaign.contact[n] for n in campaign.contact if n != "fay")
    bad = tenant.get(f"/campaigns/{campaign.id}/report/contacts", cursor="nonsense")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"
    too_many = tenant.get(f"/campaigns/{campaign.id}/report/contacts", limit=501)
    assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "limit"


def test_lists_are_capped_but_counts_are_not(api: Api) -> None:
    tenant = api.account("many@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id, ["ann"])
    campaign.record(
        *(
            campaign.hit("ann", "open", SENT + n * 60_000, "17.1.1.1", "Mozilla/5.0")
            for n in range(130)
        )
    )
    row = _rows(tenant, campaign)["ann"]
    assert row["machine_open_count"] == 130
    assert len(row["machine_events"]) == 100
    assert row["machine_events"][0]["at"] == "2026-03-28T22:00:00.000Z"  # oldest first


# ---- CSV -------------------------------------------------------------------------------------


def _csv(tenant: Tenant, campaign: Campaign) -> list[dict[str, str]]:
    r = tenant.get(f"/campaigns/{campaign.id}/report/contacts.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="{campaign.id}-contacts.csv"' in r.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(r.text)))


def test_the_csv_has_a_row_per_recipient(story: Story) -> None:
    _, tenant, campaign = story
    rows = {row["email"]: row for row in _csv(tenant, campaign)}
    assert len(rows) == 7
    assert rows["ann@example.com"] == {
        "contact_id": campaign.contact["ann"],
        "email": "ann@example.com",
        "suppressed": "",
        "first_opened_at": "2026-03-28T23:00:00.000Z",
        "last_opened_at": "2026-03-29T03:00:00.000Z",
        "open_count": "2",
        "proxy_open_count": "0",
        "click_count": "1",
        "clicked_links": LINKS[1],
        "machine_open_count": "0",
        "machine_click_count": "0",
        "replied_at": "",
        "reply_count": "0",
        "read_by_reply": "no",
        "sequence_status": "",
    }
    assert rows["cy@example.com"]["clicked_links"] == ""  # only Safe Links clicked
    assert rows["cy@example.com"]["machine_click_count"] == "3"
    assert rows["gus@example.com"]["suppressed"] == "unsubscribed"


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(api: Api) -> None:
    tenant = api.account("csv@acme.example")
    names = ["=1+2", "+1", "-1", "@sum", "\tx", "\rx", "\uff1dx", "plain"]
    campaign = make_campaign(api.engine, tenant.account_id, names)
    campaign.record(campaign.hit("plain", "click", SENT + H, "198.51.100.1", SAFARI, link=1))
    emails = sorted(row["email"] for row in _csv(tenant, campaign))
    assert emails == sorted(
        [
            "'=1+2@example.com",
            "'+1@example.com",
            "'-1@example.com",
            "'@sum@example.com",
            "'\tx@example.com",
            "'\rx@example.com",
            "'\uff1dx@example.com",
            "plain@example.com",
        ]
    )
    # The JSON rows give the address exactly as stored.
    assert "=1+2@example.com" in {row["email"] for row in _rows(tenant, campaign).values()}


def test_opens_before_any_click_show_in_the_csv_too(api: Api) -> None:
    tenant = api.account("csv2@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id, ["ann"])
    campaign.record(campaign.hit("ann", "open", SENT + H, "198.51.100.1", OUTLOOK))
    (row,) = _csv(tenant, campaign)
    assert (row["open_count"], row["click_count"], row["clicked_links"]) == ("1", "0", "")
