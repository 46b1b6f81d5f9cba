"""Replies in reports: who replied and when, read by a reply, where each sequence stands, the
summary's replied and read, and the report per step (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from typing import Any

from ..api.conftest import Api, Tenant
from .conftest import SENT, Campaign, H, make_campaign
from .replies_story import ANN_TEXT, add_inbound, enroll, tell_replies

Story = tuple[Api, Tenant, Campaign]


def _rows(tenant: Tenant, campaign: Campaign) -> dict[str, dict[str, Any]]:
    r = tenant.get(f"/campaigns/{campaign.id}/report/contacts", limit=500)
    assert r.status_code == 200, r.text
    return {row["email"].split("@")[0]: row for row in r.json()["items"]}


def test_a_reply_gives_its_time_count_and_text(story: Story) -> None:
    _, tenant, campaign = story
    tell_replies(campaign)
    rows = _rows(tenant, campaign)
    ann = rows["ann"]
    assert (ann["replied_at"], ann["reply_count"], ann["read_by_reply"]) == (
        "2026-03-29T04:00:00.000Z",
        1,
        False,  # she opened as a person too
    )
    assert ann["replies"] == [
        {
            "message_id": campaign.message["ann"],
            "at": "2026-03-29T04:00:00.000Z",
            "from_email": "ann@example.com",
            "subject": "Re: Spring",
            "text": ANN_TEXT,  # as written: escaping is the page's business
        }
    ]
    assert ann["sequence_status"] == "replied"


def test_a_reply_without_a_human_open_is_read_by_reply(story: Story) -> None:
    _, tenant, campaign = story
    tell_replies(campaign)
    bob = _rows(tenant, campaign)["bob"]
    assert bob["open_count"] == 0 and bob["machine_open_count"] == 1  # Apple's prefetch only
    assert bob["read_by_reply"] is True
    assert (bob["replied_at"], bob["reply_count"]) == ("2026-03-28T23:00:00.000Z", 2)
    assert [r["text"] for r in bob["replies"]] == ["Interested.", "Also: pricing?"]


def test_an_auto_reply_is_no_reply(story: Story) -> None:
    _, tenant, campaign = story
    tell_replies(campaign)
    cy = _rows(tenant, campaign)["cy"]
    assert (cy["replied_at"], cy["reply_count"], cy["replies"]) == (None, 0, [])
    assert cy["read_by_reply"] is False
    assert cy["sequence_status"] == "active"


def test_sequence_status_names_older_stopped_ones_by_their_suppression(story: Story) -> None:
    _, tenant, campaign = story
    tell_replies(campaign)
    rows = _rows(tenant, campaign)
    statuses = {name: row["sequence_status"] for name, row in rows.items()}
    # fay's message failed (no row); hal bounced at step 2, gus unsubscribed; eve taken out.
    assert statuses == {
        "ann": "replied",
        "bob": "replied",
        "cy": "active",
        "dee": "finished",
        "eve": None,
        "gus": "unsubscribed",
        "hal": "bounced",
    }


def test_a_stopped_sequence_without_suppression_stays_stopped(api: Api) -> None:
    tenant = api.account("owner@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id, ["ann"])
    enroll(campaign, {"ann": "stopped"})
    assert _rows(tenant, campaign)["ann"]["sequence_status"] == "stopped"


def test_the_summary_counts_people_who_replied_and_who_read(story: Story) -> None:
    _, tenant, campaign = story
    before = tenant.get(f"/campaigns/{campaign.id}/report").json()
    assert (before["replied"], before["read"]) == (0, 4)
    assert (before["rates"]["reply"], before["rates"]["read"]) == (0.0, round(4 / 7, 4))
    tell_replies(campaign)
    s = tenant.get(f"/campaigns/{campaign.id}/report").json()
    # ann, bob (twice), eve and dee replied; cy's out-of-office is not a reply.
    assert s["replied"] == 4
    # human openers ann, cy, dee, eve, and bob who replied without loading the pixel
    assert s["read"] == 5
    assert (s["rates"]["reply"], s["rates"]["read"]) == (round(4 / 7, 4), round(5 / 7, 4))
    # hal's step 2 message went out before it bounced: it counts as sent
    assert (s["sent"], s["recipients"]) == (9, 7)
    assert s["messages"] == {"bounced": 1, "failed": 1, "sent": 8}
    assert s["bounced"] == 2


def test_the_report_per_step(story: Story) -> None:
    _, tenant, campaign = story
    tell_replies(campaign)
    r = tenant.get(f"/campaigns/{campaign.id}/report/steps")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "items": [
            # people only: bob's prefetch, cy's scanner clicks and hal's click are machines'
            {
                "step": 1,
                "sent": 7,
                "opened": 4,
                "clicked": 2,
                "replied": 3,  # ann, bob, eve (matched by subject: her last message's step)
                "bounced": 1,  # fay
                "unsubscribed": 1,  # gus
            },
            {
                "step": 2,
                "sent": 2,
                "opened": 0,
                "clicked": 0,
                "replied": 1,  # dee
                "bounced": 1,  # hal: his bounced message
                "unsubscribed": 0,
            },
        ]
    }
    summary = tenant.get(f"/campaigns/{campaign.id}/report").json()
    items = r.json()["items"]
    for name in ("bounced", "unsubscribed"):
        assert sum(item[name] for item in items) == summary[name]


def test_a_new_campaigns_steps_report_zeros(api: Api) -> None:
    tenant = api.account("new@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id)
    r = tenant.get(f"/campaigns/{campaign.id}/report/steps")
    assert r.json() == {
        "items": [
            {
                "step": 1,
                "sent": 0,
                "opened": 0,
                "clicked": 0,
                "replied": 0,
                "bounced": 0,
                "unsubscribed": 0,
            }
        ]
    }


def test_another_accounts_campaign_and_replies_stay_apart(story: Story) -> None:
    api, tenant, campaign = story
    other = api.account("other@else.example")
    theirs = make_campaign(api.engine, other.account_id, ["ann"])
    add_inbound(theirs, "ann", "reply", SENT + H)
    for path in ("report/steps", "report", "report/contacts", "report/contacts.csv"):
        assert other.get(f"/campaigns/{campaign.id}/{path}").status_code == 404
        assert tenant.get(f"/campaigns/{theirs.id}/{path}").status_code == 404
    # the other campaign's reply counts there, not in ours (same address, another account)
    assert tenant.get(f"/campaigns/{campaign.id}/report").json()["replied"] == 0
    assert other.get(f"/campaigns/{theirs.id}/report").json()["replied"] == 1


def test_the_csv_carries_replies_and_sequence_status(story: Story) -> None:
    _, tenant, campaign = story
    tell_replies(campaign)
    add_inbound(campaign, "gus", "reply", SENT + 2 * H, text="=HYPERLINK(1)")
    r = tenant.get(f"/campaigns/{campaign.id}/report/contacts.csv")
    assert r.status_code == 200, r.text
    rows = {row["email"].split("@")[0]: row for row in csv.DictReader(io.StringIO(r.text))}
    new = ("replied_at", "reply_count", "read_by_reply", "sequence_status")
    assert {name: tuple(row[c] for c in new) for name, row in rows.items()} == {
        "ann": ("2026-03-29T04:00:00.000Z", "1", "no", "replied"),
        "bob": ("2026-03-28T23:00:00.000Z", "2", "yes", "replied"),
        "cy": ("", "0", "no", "active"),
        "dee": ("2026-03-30T01:00:00.000Z", "1", "no", "finished"),
        "eve": ("2026-03-29T02:00:00.000Z", "1", "no", ""),
        "gus": ("2026-03-29T00:00:00.000Z", "1", "yes", "unsubscribed"),
        "hal": ("", "0", "no", "bounced"),
    }
    assert "HYPERLINK" not in r.text  # reply texts stay out of the CSV
