"""Tracking settings: open tracking on by default, clicks only through a verified domain,
and changes that apply to what is not yet scheduled, with counts."""

from __future__ import annotations

from sqlalchemy import select, update

from pixeltrail.platform.campaigns.settings import CLICKS_NEED_DOMAIN, CLICKS_NEED_OWN_DOMAIN
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import campaigns, enrollments, messages

from .conftest import (
    Api,
    add_contact,
    add_domain,
    add_message,
    new_campaign,
    set_domain_status,
)


def test_a_new_account_tracks_opens_and_not_clicks(api: Api) -> None:
    alice = api.account("alice@acme.example")
    campaign = new_campaign(alice)
    r = alice.get(f"/campaigns/{campaign['id']}/settings")
    assert r.status_code == 200
    assert r.json() == {
        "track_opens": True,
        "track_clicks": False,
        "track_text_links": True,
        "tracking_domain_id": None,
        "stop_on_reply": True,
    }


def test_click_tracking_waits_for_a_verified_domain(api: Api) -> None:
    alice = api.account("alice@acme.example")
    path = f"/campaigns/{new_campaign(alice)['id']}/settings"
    r = alice.patch(path, {"track_clicks": True})
    assert r.status_code == 409
    assert r.json()["error"] == {
        "code": "conflict",
        "message": CLICKS_NEED_DOMAIN,
        "field": "track_clicks",
    }
    assert "add one under /tracking-domains and verify its CNAME" in CLICKS_NEED_DOMAIN
    domain = add_domain(api.engine, alice.account_id, "t.acme.example", status="pending")
    assert alice.patch(path, {"track_clicks": True}).status_code == 409
    r = alice.patch(path, {"track_clicks": True, "tracking_domain_id": domain})
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "tracking_domain_id"
    assert "t.acme.example is pending, not verified" in r.json()["error"]["message"]
    assert alice.get(path).json()["track_clicks"] is False

    set_domain_status(api.engine, domain, "verified")
    r = alice.patch(path, {"track_clicks": True})
    assert r.status_code == 200, r.text
    # The only verified domain is picked when none is named.
    assert (r.json()["track_clicks"], r.json()["tracking_domain_id"]) == (True, domain)
    assert alice.get(path).json()["tracking_domain_id"] == domain
    # This server's own address (null) with clicks on is refused, never replaced by a domain.
    fresh = f"/campaigns/{new_campaign(alice)['id']}/settings"
    for where in (path, fresh):
        r = alice.patch(where, {"track_clicks": True, "tracking_domain_id": None})
        assert r.status_code == 409
        assert r.json()["error"] == {
            "code": "conflict",
            "message": CLICKS_NEED_OWN_DOMAIN,
            "field": "tracking_domain_id",
        }
    assert alice.get(path).json()["tracking_domain_id"] == domain
    untouched = alice.get(fresh).json()
    assert (untouched["track_clicks"], untouched["tracking_domain_id"]) == (False, None)


def test_naming_the_domain_when_several_are_verified(api: Api) -> None:
    alice = api.account("alice@acme.example")
    path = f"/campaigns/{new_campaign(alice)['id']}/settings"
    add_domain(api.engine, alice.account_id, "t1.acme.example", status="verified")
    second = add_domain(api.engine, alice.account_id, "t2.acme.example", status="verified")
    r = alice.patch(path, {"track_clicks": True})
    assert (r.status_code, r.json()["error"]["field"]) == (409, "tracking_domain_id")
    r = alice.patch(path, {"track_clicks": True, "tracking_domain_id": second})
    assert r.json()["tracking_domain_id"] == second
    # Clicks cannot lose their domain, but switching them off always works.
    r = alice.patch(path, {"tracking_domain_id": None})
    assert r.status_code == 409
    r = alice.patch(path, {"track_clicks": False, "tracking_domain_id": None})
    assert (r.status_code, r.json()["tracking_domain_id"]) == (200, None)


def test_another_accounts_domain_is_not_found(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    bobs = add_domain(api.engine, bob.account_id, "t.other.example", status="verified")
    path = f"/campaigns/{new_campaign(alice)['id']}/settings"
    for domain in [bobs, "dom_missing000000000"]:
        r = alice.patch(path, {"track_clicks": True, "tracking_domain_id": domain})
        assert (r.status_code, r.json()["error"]) == (
            404,
            {
                "code": "not_found",
                "message": "no such tracking domain",
                "field": "tracking_domain_id",
            },
        )
    # Bob's verified domain does not count as Alice's either.
    r = alice.patch(path, {"track_clicks": True})
    assert (r.status_code, r.json()["error"]["message"]) == (409, CLICKS_NEED_DOMAIN)


def test_bad_settings_name_the_field(api: Api) -> None:
    alice = api.account("alice@acme.example")
    path = f"/campaigns/{new_campaign(alice)['id']}/settings"
    for body, field in [
        ({"track_opens": "yes"}, "track_opens"),
        ({"track_opens": 1}, "track_opens"),
        ({"track_opens": None}, "track_opens"),
        ({"track_clicks": None}, "track_clicks"),
        ({"tracking_domain_id": 7}, "tracking_domain_id"),
        ({"track_replies": True}, "track_replies"),
        ({"stop_on_reply": "no"}, "stop_on_reply"),
        ({"stop_on_reply": None}, "stop_on_reply"),
    ]:
        r = alice.patch(path, body)
        assert (r.status_code, r.json()["error"]["field"]) == (422, field), body
    assert alice.get(path).json()["track_opens"] is True


def test_changes_apply_to_unscheduled_outreach_and_leave_scheduled_messages_alone(
    api: Api,
) -> None:
    alice = api.account("alice@acme.example")
    campaign = new_campaign(alice, steps=3)
    cid = campaign["id"]
    contacts = [add_contact(api.engine, alice.account_id, f"c{i}@example.com") for i in range(4)]
    r = alice.post(f"/campaigns/{cid}/contacts", {"contact_ids": contacts})
    assert r.json()["enrolled"] == 4
    # c0: nothing scheduled yet (3 steps to go). c1: step 1 scheduled, steps 2-3 to go.
    # c2: steps 1-2 sent... step 3 scheduled, nothing to go. c3: left the sequence (replied).
    made = [
        add_message(api.engine, campaign, alice.account_id, contacts[1], 1),
        add_message(api.engine, campaign, alice.account_id, contacts[2], 1, status="sent"),
        add_message(api.engine, campaign, alice.account_id, contacts[2], 2, status="sent"),
        add_message(api.engine, campaign, alice.account_id, contacts[2], 3, status="sending"),
        add_message(api.engine, campaign, alice.account_id, contacts[3], 1),
    ]
    with write_transaction(api.engine) as conn:
        for contact, next_step, status in [
            (contacts[1], 2, "active"),
            (contacts[2], 4, "active"),
            (contacts[3], 2, "stopped"),
        ]:
            conn.execute(
                update(enrollments)
                .where(enrollments.c.campaign_id == cid, enrollments.c.contact_id == contact)
                .values(next_step=next_step, status=status)
            )
    r = alice.patch(f"/campaigns/{cid}/settings", {"track_opens": False, "track_text_links": False})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "track_opens": False,
        "track_clicks": False,
        "track_text_links": False,
        "tracking_domain_id": None,
        "stop_on_reply": True,
        "applied_to_unscheduled": 3 + 2,  # c0: steps 1-3, c1: steps 2-3
        "scheduled_unchanged": 3,  # c1 step 1, c2 step 3 (being sent), c3 step 1
    }
    with api.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.id, messages.c.track_opens, messages.c.track_text_links).where(
                messages.c.campaign_id == cid
            )
        ).all()
        stored = conn.execute(
            select(campaigns.c.track_opens).where(campaigns.c.id == cid)
        ).scalar_one()
    assert {row.id for row in rows} == set(made)
    assert all(row.track_opens and row.track_text_links for row in rows)
    assert stored is False
    r = alice.patch(f"/campaigns/{cid}/settings", {})
    assert (r.json()["applied_to_unscheduled"], r.json()["scheduled_unchanged"]) == (5, 3)


def test_a_finished_campaign_keeps_its_settings(api: Api) -> None:
    alice = api.account("alice@acme.example")
    cid = new_campaign(alice)["id"]
    with write_transaction(api.engine) as conn:
        conn.execute(update(campaigns).where(campaigns.c.id == cid).values(status="finished"))
    r = alice.patch(f"/campaigns/{cid}/settings", {"track_opens": False})
    assert r.status_code == 409
    assert "finished" in r.json()["error"]["message"]
    assert alice.get(f"/campaigns/{cid}/settings").json()["track_opens"] is True


def test_stop_on_reply_is_on_and_can_be_switched_off(api: Api) -> None:
    alice = api.account("alice@acme.example")
    path = f"/campaigns/{new_campaign(alice)['id']}/settings"
    assert alice.get(path).json()["stop_on_reply"] is True
    r = alice.patch(path, {"stop_on_reply": False})
    assert r.status_code == 200, r.text
    assert r.json()["stop_on_reply"] is False
    assert r.json()["track_opens"] is True  # the other settings stay as they were
    assert alice.get(path).json()["stop_on_reply"] is False
    with api.engine.connect() as conn:
        assert conn.execute(select(campaigns.c.stop_on_reply)).scalar_one() is False
    assert alice.patch(path, {"stop_on_reply": True}).json()["stop_on_reply"] is True


def test_a_campaign_can_be_created_not_stopping_on_replies(api: Api) -> None:
    alice = api.account("alice@acme.example")
    campaign = new_campaign(alice, stop_on_reply=False)
    assert campaign["settings"]["stop_on_reply"] is False
    assert alice.get(f"/campaigns/{campaign['id']}").json()["settings"]["stop_on_reply"] is False
    r = alice.post("/campaigns", {"name": "x", "mailbox_id": "mbx_x", "stop_on_reply": "sure"})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "stop_on_reply")
