"""Enrolling contacts, and draft → active ⇄ paused → finished, over the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import campaigns, enrollments

from .conftest import (
    STEP,
    Api,
    Tenant,
    add_contact,
    add_domain,
    new_campaign,
    set_domain_status,
    suppress,
)


def ready_campaign(api: Api, tenant: Tenant, **body: Any) -> str:
    campaign = new_campaign(tenant, **body)
    email = f"{campaign['id']}@example.com"
    contact = add_contact(api.engine, tenant.account_id, email)
    r = tenant.post(f"/campaigns/{campaign['id']}/contacts", {"contact_ids": [contact]})
    assert r.status_code == 200
    return str(campaign["id"])


def test_enrolling_skips_and_counts_suppressed_and_already_enrolled(api: Api) -> None:
    alice = api.account("alice@acme.example")
    cid = new_campaign(alice)["id"]
    ids = [add_contact(api.engine, alice.account_id, f"c{i}@example.com") for i in range(4)]
    suppress(api.engine, alice.account_id, "c3@example.com")
    r = alice.post(f"/campaigns/{cid}/contacts", {"contact_ids": [ids[0], ids[1], ids[0]]})
    assert r.json() == {"enrolled": 2, "already_enrolled": 0, "suppressed": 0}
    r = alice.post(f"/campaigns/{cid}/contacts", {"contact_ids": ids})
    assert r.json() == {"enrolled": 1, "already_enrolled": 2, "suppressed": 1}
    assert alice.get(f"/campaigns/{cid}").json()["contacts"] == {"total": 3, "active": 3}
    with api.engine.connect() as conn:
        next_steps = conn.execute(
            select(enrollments.c.next_step).where(enrollments.c.campaign_id == cid)
        ).scalars()
        assert set(next_steps) == {1}


def test_unknown_or_foreign_contacts_enrol_nothing_and_name_no_id(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    cid = new_campaign(alice)["id"]
    mine = add_contact(api.engine, alice.account_id, "ada@example.com")
    bobs = add_contact(api.engine, bob.account_id, "bo@example.com")
    answers = [
        alice.post(f"/campaigns/{cid}/contacts", {"contact_ids": [mine, bobs]}),
        alice.post(f"/campaigns/{cid}/contacts", {"contact_ids": [mine, "ct_missing0000000000"]}),
    ]
    for r in answers:
        assert r.status_code == 404
        assert r.json()["error"] == {
            "code": "not_found",
            "message": "1 of these contacts does not exist; nothing was enrolled",
            "field": "contact_ids",
        }
    assert alice.get(f"/campaigns/{cid}").json()["contacts"]["total"] == 0
    for body, field in [
        ({"contact_ids": []}, "contact_ids"),
        ({"contact_ids": [1]}, "contact_ids.0"),
        ({"contact_ids": "ct_x"}, "contact_ids"),
        ({"contact_ids": ["ct_x"] * 10_001}, "contact_ids"),
        ({"ids": [mine]}, "contact_ids"),
    ]:
        r = alice.post(f"/campaigns/{cid}/contacts", body)
        assert (r.status_code, r.json()["error"]["field"]) == (422, field)


def test_launch_needs_steps_and_contacts(api: Api) -> None:
    alice = api.account("alice@acme.example")
    cid = new_campaign(alice, steps=0)["id"]
    r = alice.post(f"/campaigns/{cid}/launch")
    assert (r.status_code, r.json()["error"]["field"]) == (409, "steps")
    alice.patch(f"/campaigns/{cid}", {"steps": [STEP]})
    r = alice.post(f"/campaigns/{cid}/launch")
    assert (r.status_code, r.json()["error"]["field"]) == (409, "contact_ids")
    assert "enroll contacts before launching" in r.json()["error"]["message"]
    contact = add_contact(api.engine, alice.account_id, "ada@example.com")
    alice.post(f"/campaigns/{cid}/contacts", {"contact_ids": [contact]})
    before = datetime.now(UTC).replace(microsecond=0)
    r = alice.post(f"/campaigns/{cid}/launch")
    assert r.status_code == 200
    assert r.json()["status"] == "active"
    assert datetime.fromisoformat(r.json()["start_at"]) >= before


def test_start_at_is_read_in_the_campaigns_time_zone(api: Api) -> None:
    alice = api.account("alice@acme.example", timezone="Europe/Paris")
    cid = ready_campaign(api, alice)
    year = datetime.now(UTC).year + 1
    for bad in ["next tuesday", f"{year + 1}-06-01T09:00:00Z"]:
        r = alice.post(f"/campaigns/{cid}/launch", {"start_at": bad})
        assert (r.status_code, r.json()["error"]["field"]) == (422, "start_at")
    r = alice.post(f"/campaigns/{cid}/launch", {"start_at": f"{year}-01-05T09:00:00"})
    assert r.json()["start_at"] == f"{year}-01-05T09:00:00+01:00"
    other = ready_campaign(api, alice, name="Second")
    r = alice.post(f"/campaigns/{other}/launch", {"start_at": "2001-01-01T00:00:00Z"})
    started = datetime.fromisoformat(r.json()["start_at"])
    assert abs(started - datetime.now(UTC)) < timedelta(minutes=1)  # the past means now


def test_the_state_machine(api: Api) -> None:
    alice = api.account("alice@acme.example")
    cid = ready_campaign(api, alice)

    def act(action: str) -> tuple[int, str]:
        r = alice.post(f"/campaigns/{cid}/{action}")
        body = r.json()
        return r.status_code, body["status"] if r.status_code == 200 else body["error"]["message"]

    assert act("pause") == (409, "cannot pause this campaign: it is a draft: launch it first")
    assert act("resume") == (409, "cannot resume this campaign: it is a draft: launch it first")
    assert act("launch") == (200, "active")
    assert act("launch") == (409, "cannot launch this campaign: it is already active")
    assert act("resume") == (200, "active")  # already what was asked: a retry is harmless
    assert act("pause") == (200, "paused")
    assert act("pause") == (200, "paused")
    assert act("launch") == (409, "cannot launch this campaign: it is paused: resume it instead")
    assert act("resume") == (200, "active")
    with write_transaction(api.engine) as conn:
        conn.execute(update(campaigns).where(campaigns.c.id == cid).values(status="finished"))
    for action in ["launch", "pause", "resume"]:
        assert act(action) == (409, f"cannot {action} this campaign: it is finished")
    assert alice.patch(f"/campaigns/{cid}", {"steps": [STEP]}).status_code == 409
    assert alice.patch(f"/campaigns/{cid}", {"name": "Done"}).status_code == 200
    contact = add_contact(api.engine, alice.account_id, "late@example.com")
    r = alice.post(f"/campaigns/{cid}/contacts", {"contact_ids": [contact]})
    assert r.status_code == 409
    with api.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(enrollments)).scalar_one() == 1


def test_launch_and_resume_refuse_clicks_through_a_domain_no_longer_verified(api: Api) -> None:
    alice = api.account("alice@acme.example")
    cid = ready_campaign(api, alice)
    domain = add_domain(api.engine, alice.account_id, "t.acme.example", status="verified")
    assert alice.patch(f"/campaigns/{cid}/settings", {"track_clicks": True}).status_code == 200
    set_domain_status(api.engine, domain, "failed")
    r = alice.post(f"/campaigns/{cid}/launch")
    assert (r.status_code, r.json()["error"]["field"]) == (409, "tracking_domain_id")
    assert "t.acme.example is failed" in r.json()["error"]["message"]
    set_domain_status(api.engine, domain, "verified")
    assert alice.post(f"/campaigns/{cid}/launch").status_code == 200
    alice.post(f"/campaigns/{cid}/pause")
    set_domain_status(api.engine, domain, "failed")
    assert alice.post(f"/campaigns/{cid}/resume").status_code == 409
    # Switching clicks (and the domain) off is always possible, and then it resumes.
    r = alice.patch(
        f"/campaigns/{cid}/settings", {"track_clicks": False, "tracking_domain_id": None}
    )
    assert r.status_code == 200
    assert alice.post(f"/campaigns/{cid}/resume").json()["status"] == "active"
