"""Campaigns over the API: defaults, schedule and step rules, template errors, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import STEP, Api, add_contact, add_message, new_campaign, new_mailbox


def test_a_new_campaign_is_a_draft_with_the_documented_defaults(api: Api) -> None:
    alice = api.account("alice@acme.example", timezone="Europe/Paris")
    campaign = new_campaign(alice, steps=2)
    assert campaign["status"] == "draft"
    assert campaign["settings"] == {
        "track_opens": True,
        "track_clicks": False,
        "track_text_links": True,
        "tracking_domain_id": None,
        "stop_on_reply": True,
    }
    assert campaign["schedule"] == {
        "timezone": "Europe/Paris",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start_hour": 0,
        "end_hour": 24,
        "daily_cap": None,
    }
    assert [s["position"] for s in campaign["steps"]] == [1, 2]
    assert campaign["steps"][0] == {**STEP, "position": 1, "text": None}
    assert (campaign["step_count"], campaign["contacts"]) == (2, {"total": 0, "active": 0})
    assert campaign["start_at"] is None
    read = alice.get(f"/campaigns/{campaign['id']}").json()
    # GET also carries the report summary; the rest is what POST answered.
    assert read.pop("report")["sent"] == 0
    assert read == {k: v for k, v in campaign.items() if k != "report"}


def test_open_tracking_follows_the_accounts_default(api: Api) -> None:
    alice = api.account("alice@acme.example")
    assert alice.patch("/account", {"default_track_opens": False}).status_code == 200
    assert new_campaign(alice)["settings"]["track_opens"] is False


def test_schedule_days_are_kept_in_week_order(api: Api) -> None:
    alice = api.account("alice@acme.example")
    schedule = {"days": ["fri", "mon", "fri"], "start_hour": 9, "end_hour": 17, "daily_cap": 40}
    campaign = new_campaign(alice, schedule=schedule)
    assert campaign["schedule"] == {**schedule, "days": ["mon", "fri"], "timezone": "UTC"}


BAD_CAMPAIGNS: list[tuple[dict[str, Any], str]] = [
    ({"schedule": {"timezone": "Mars/Olympus"}}, "schedule.timezone"),
    ({"schedule": {"days": []}}, "schedule.days"),
    ({"schedule": {"days": ["mon", "funday"]}}, "schedule.days.1"),
    ({"schedule": {"start_hour": 24}}, "schedule.start_hour"),
    ({"schedule": {"start_hour": 10, "end_hour": 9}}, "schedule.end_hour"),
    ({"schedule": {"daily_cap": 0}}, "schedule.daily_cap"),
    ({"schedule": {"weekends": False}}, "schedule.weekends"),
    ({"schedule": "weekdays"}, "schedule"),
    ({"colour": "red"}, "colour"),
    ({"name": 5}, "name"),
    ({"name": ""}, "name"),
    ({"name": "Q1\nBcc"}, "name"),
    ({"mailbox_id": None}, "mailbox_id"),
    ({"steps": "one"}, "steps"),
    ({"steps": [STEP] * 21}, "steps"),
    ({"steps": [{**STEP, "delay_days": "1"}]}, "steps.0.delay_days"),
    ({"steps": [STEP, {**STEP, "delay_days": -1}]}, "steps.1.delay_days"),
    ({"steps": [{**STEP, "delay_days": 366}]}, "steps.0.delay_days"),
    ({"steps": [{"subject": "x", "html": "y"}]}, "steps.0.delay_days"),
    ({"steps": [{**STEP, "attachment": "x"}]}, "steps.0.attachment"),
    ({"steps": [{**STEP, "subject": "   "}]}, "steps.0.subject"),
    ({"steps": [{**STEP, "html": "x" * (256 * 1024 + 1)}]}, "steps.0.html"),
]


def test_bad_campaigns_name_the_field_and_leave_nothing(api: Api) -> None:
    alice = api.account("alice@acme.example")
    mailbox = new_mailbox(alice)["id"]
    for change, field in BAD_CAMPAIGNS:
        r = alice.post("/campaigns", {"name": "Q1", "mailbox_id": mailbox, **change})
        assert r.status_code == 422, (change, r.text)
        assert r.json()["error"]["field"] == field, change
    assert alice.get("/campaigns").json()["items"] == []


@pytest.mark.parametrize(
    ("content", "status"),
    [('{"name": ', 422), ("[1, 2]", 422), ('{"name": "x"' + " " * (1024 * 1024) + "}", 413)],
)
def test_malformed_and_oversized_bodies(api: Api, content: str, status: int) -> None:
    alice = api.account("alice@acme.example")
    headers = {"content-type": "application/json"}
    r = alice.request("POST", "/campaigns", content=content, headers=headers)
    assert r.status_code == status
    assert r.json()["error"]["message"]


def test_template_errors_name_the_step_and_the_line(api: Api) -> None:
    alice = api.account("alice@acme.example")
    mailbox = new_mailbox(alice)["id"]
    broken = {**STEP, "html": "<p>Hi {{ first_name }},</p>\n<p>\n{% if company %}\n</p>"}
    r = alice.post("/campaigns", {"name": "Q1", "mailbox_id": mailbox, "steps": [STEP, broken]})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["field"] == "steps.1.html"
    assert error["message"].startswith("step 2 html, line 3: Unexpected end of template")
    typo = {**STEP, "subject": "Hi {{ frist_name }}"}
    r = alice.post("/campaigns", {"name": "Q1", "mailbox_id": mailbox, "steps": [typo]})
    assert r.json()["error"] == {
        "code": "invalid",
        "field": "steps.0.subject",
        "message": "step 1 subject, line 1: unknown variable 'frist_name' (use first_name, "
        "last_name, company, email or fields.<name>)",
    }


def test_filter_calls_a_render_would_refuse_are_refused_with_the_step_and_the_line(
    api: Api,
) -> None:
    alice = api.account("alice@acme.example")
    campaign = new_campaign(alice)
    mailbox = campaign["mailbox_id"]
    wrong = {**STEP, "html": "<p>Hi,</p>\n<p>{{ first_name|default(boolean=true) }}</p>"}
    r = alice.post("/campaigns", {"name": "Q1", "mailbox_id": mailbox, "steps": [STEP, wrong]})
    assert r.status_code == 422
    assert r.json()["error"] == {
        "code": "invalid",
        "field": "steps.1.html",
        "message": "step 2 html, line 2: filter 'default' has no argument 'boolean' "
        "(it takes fallback)",
    }
    r = alice.patch(
        f"/campaigns/{campaign['id']}", {"steps": [{**STEP, "subject": "{{ email|upper(1) }}"}]}
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "steps.0.subject"
    assert r.json()["error"]["message"] == (
        "step 1 subject, line 1: filter 'upper' takes no arguments"
    )
    assert [c["id"] for c in alice.get("/campaigns").json()["items"]] == [campaign["id"]]
    kept = alice.get(f"/campaigns/{campaign['id']}").json()["steps"]
    assert kept[0]["subject"] == STEP["subject"]


INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ config }}",
    "{{ self }}",
    "{{ cycler.__init__.__globals__ }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ 'a' * 10**9 }}",
    "{{ 9**9**9 }}",
    "{{ request }}",
]


def test_template_injection_is_refused_on_create_and_on_change(api: Api) -> None:
    alice = api.account("alice@acme.example")
    campaign = new_campaign(alice)
    for source in INJECTIONS:
        for part in ["subject", "html", "text"]:
            step = {**STEP, part: source}
            body = {"name": "Q1", "mailbox_id": campaign["mailbox_id"], "steps": [step]}
            r = alice.post("/campaigns", body)
            assert r.status_code == 422, (source, part)
            assert r.json()["error"]["field"] == f"steps.0.{part}"
            assert r.json()["error"]["message"].startswith(f"step 1 {part}, line 1: ")
            r = alice.patch(f"/campaigns/{campaign['id']}", {"steps": [STEP, step]})
            assert r.status_code == 422, (source, part)
            assert r.json()["error"]["field"] == f"steps.1.{part}"
    assert [c["id"] for c in alice.get("/campaigns").json()["items"]] == [campaign["id"]]
    assert alice.get(f"/campaigns/{campaign['id']}").json()["step_count"] == 1


def test_changing_a_campaign(api: Api) -> None:
    alice = api.account("alice@acme.example")
    campaign = new_campaign(alice, schedule={"start_hour": 8, "end_hour": 18})
    path = f"/campaigns/{campaign['id']}"
    other_mailbox = new_mailbox(alice, name="Other")["id"]
    r = alice.patch(
        path,
        {
            "name": "Renamed",
            "mailbox_id": other_mailbox,
            "steps": [STEP, {**STEP, "text": "Bye {{ first_name }}", "delay_days": 3}],
            "schedule": {"daily_cap": 25},
        },
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["name"], changed["mailbox_id"]) == ("Renamed", other_mailbox)
    assert [(s["position"], s["delay_days"], s["text"]) for s in changed["steps"]] == [
        (1, 0, None),
        (2, 3, "Bye {{ first_name }}"),
    ]
    # A partial schedule changes only what it names; null puts a field back to its default.
    assert (changed["schedule"]["start_hour"], changed["schedule"]["daily_cap"]) == (8, 25)
    r = alice.patch(path, {"schedule": {"start_hour": None, "daily_cap": None}})
    assert (r.json()["schedule"]["start_hour"], r.json()["schedule"]["daily_cap"]) == (0, None)
    for body, field in [({"name": None}, "name"), ({"steps": None}, "steps")]:
        r = alice.patch(path, body)
        assert (r.status_code, r.json()["error"]["field"]) == (422, field)


def test_an_active_campaign_keeps_its_steps_and_mailbox_until_paused(api: Api) -> None:
    alice = api.account("alice@acme.example")
    campaign = new_campaign(alice, steps=2)
    path = f"/campaigns/{campaign['id']}"
    contact = add_contact(api.engine, alice.account_id, "ada@example.com")
    alice.post(f"{path}/contacts", {"contact_ids": [contact]})
    assert alice.post(f"{path}/launch").status_code == 200
    r = alice.patch(path, {"steps": [STEP]})
    assert r.status_code == 409
    assert r.json()["error"]["message"] == "pause the campaign before changing its steps"
    assert alice.patch(path, {"mailbox_id": new_mailbox(alice)["id"]}).status_code == 409
    assert alice.patch(path, {"name": "Still editable"}).status_code == 200
    assert alice.patch(path, {"schedule": {"days": ["mon"]}}).status_code == 200
    alice.post(f"{path}/pause")
    # A step with messages can be edited, not removed.
    add_message(api.engine, campaign, alice.account_id, contact, position=2)
    r = alice.patch(path, {"steps": [STEP]})
    assert r.status_code == 409
    assert r.json()["error"]["message"].startswith("step 2 already has messages")
    r = alice.patch(path, {"steps": [STEP, {**STEP, "subject": "Fixed typo"}]})
    assert r.status_code == 200
    assert r.json()["steps"][1]["subject"] == "Fixed typo"


def test_lists_page_and_filter(api: Api) -> None:
    alice = api.account("alice@acme.example")
    mailbox = new_mailbox(alice)["id"]
    ids = [new_campaign(alice, mailbox_id=mailbox)["id"] for _ in range(3)]
    first = alice.get("/campaigns", limit=2).json()
    assert [c["id"] for c in first["items"]] == ids[:2]
    assert "steps" not in first["items"][0] and first["items"][0]["step_count"] == 1
    rest = alice.get("/campaigns", limit=2, cursor=first["next_cursor"]).json()
    assert ([c["id"] for c in rest["items"]], rest["next_cursor"]) == (ids[2:], None)
    assert alice.get("/campaigns", status="active").json()["items"] == []
    r = alice.get("/campaigns", status="sent")
    assert (r.status_code, r.json()["error"]["field"]) == (422, "status")
    bad_params: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "limit"),
        ({"cursor": "x"}, "cursor"),
    ]
    for params, field in bad_params:
        r = alice.get("/campaigns", **params)
        assert (r.status_code, r.json()["error"]["field"]) == (422, field)


def test_another_accounts_ids_answer_exactly_like_missing_ones(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    campaign = new_campaign(alice)
    alice_contact = add_contact(api.engine, alice.account_id, "ada@example.com")
    bob_mailbox = new_mailbox(bob)["id"]
    # Alice's mailbox in Bob's campaign, and Bob's in Alice's.
    for tenant, mailbox in [(bob, campaign["mailbox_id"]), (alice, "mbx_missing0000000000")]:
        r = tenant.post("/campaigns", {"name": "x", "mailbox_id": mailbox})
        assert (r.status_code, r.json()["error"]) == (
            404,
            {"code": "not_found", "message": "no such mailbox", "field": "mailbox_id"},
        )
    r = alice.patch(f"/campaigns/{campaign['id']}", {"mailbox_id": bob_mailbox})
    assert (r.status_code, r.json()["error"]["message"]) == (404, "no such mailbox")
    for campaign_id in [campaign["id"], "cmp_missing0000000000"]:
        path = f"/campaigns/{campaign_id}"
        answers = [
            bob.get(path),
            bob.patch(path, {"name": "mine"}),
            bob.get(f"{path}/settings"),
            bob.patch(f"{path}/settings", {"track_opens": False}),
            bob.post(f"{path}/contacts", {"contact_ids": [alice_contact]}),
            bob.post(f"{path}/launch"),
            bob.post(f"{path}/pause"),
            bob.post(f"{path}/resume"),
        ]
        assert [r.status_code for r in answers] == [404] * len(answers)
        assert {r.json()["error"]["message"] for r in answers} == {"no such campaign"}
    assert bob.get("/campaigns").json()["items"] == []
    assert alice.get(f"/campaigns/{campaign['id']}").json()["name"] == campaign["name"]
