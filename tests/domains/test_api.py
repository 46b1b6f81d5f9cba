"""/tracking-domains over HTTP on SQLite and PostgreSQL, with a real DNS server behind verify."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert

from pixeltrail.platform.ids import now_ms
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import campaigns, mailboxes

from ..api.conftest import Api, Tenant
from .conftest import CNAME_TARGET, FakeDns

HOST = "track.acme.test"


def added(tenant: Tenant, hostname: str = HOST) -> dict[str, object]:
    r = tenant.post("/tracking-domains", {"hostname": hostname})
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def test_adding_a_domain_answers_the_record_to_create(api: Api) -> None:
    alice = api.account("alice@acme.example")
    body = added(alice, "Track.ACME.test.")
    assert body["hostname"] == HOST
    assert body["status"] == "pending"
    assert body["cname_target"] == CNAME_TARGET
    assert body["dns_record"] == {"type": "CNAME", "name": HOST, "value": CNAME_TARGET}
    assert (body["last_error"], body["verified_at"], body["checked_at"]) == (None, None, None)
    assert str(body["id"]).startswith("dom_")
    created = dt.datetime.fromisoformat(str(body["created_at"]))
    assert abs(created.timestamp() * 1000 - now_ms()) < 60_000
    assert alice.get(f"/tracking-domains/{body['id']}").json() == body


def test_verify_answers_200_when_the_cname_points_here_and_422_saying_why_not(
    api: Api, dns: FakeDns
) -> None:
    alice = api.account("alice@acme.example")
    domain = added(alice)
    r = alice.post(f"/tracking-domains/{domain['id']}/verify")
    assert r.status_code == 422
    failed = r.json()
    assert failed["status"] == "failed"
    assert failed["last_error"].startswith("no such name: create a CNAME record")
    assert failed["checked_at"] is not None and failed["verified_at"] is None

    dns.a(HOST, "203.0.113.7")
    failed = alice.post(f"/tracking-domains/{domain['id']}/verify").json()
    assert "has A records (203.0.113.7) but no CNAME" in failed["last_error"]

    dns.cname(HOST, CNAME_TARGET)
    r = alice.post(f"/tracking-domains/{domain['id']}/verify")
    assert r.status_code == 200
    verified = r.json()
    assert (verified["status"], verified["last_error"]) == ("verified", None)
    assert verified["verified_at"] == verified["checked_at"] is not None
    assert alice.get(f"/tracking-domains/{domain['id']}").json() == verified


@pytest.mark.parametrize(
    ("hostname", "words"),
    [
        ("203.0.113.7", "is an IP address"),
        ("[2001:db8::1]", "is an IP address"),
        ("track.acme.test/c/abc", "has a path"),
        ("https://track.acme.test", "has a scheme"),
        ("track.acme.test:8443", "has a port"),
        ("*.acme.test", "wildcard"),
        ("acme", "single label"),
        (CNAME_TARGET, "this instance's own tracking host"),
        ("APP.pixeltrail.test", "this instance's own tracking host"),
        ("", "is required"),
    ],
)
def test_hostile_hostnames_are_refused_naming_the_field(
    api: Api, hostname: str, words: str
) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post("/tracking-domains", {"hostname": hostname})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "hostname"
    assert words in error["message"]
    assert alice.get("/tracking-domains").json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [{"hostname": HOST, "account_id": "acct_x"}, {"hostname": 7}, {}, [HOST]],
)
def test_bodies_other_than_a_hostname_are_refused(api: Api, body: object) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post("/tracking-domains", body)
    assert r.status_code == 422
    assert r.json()["error"]["message"]


def test_a_hostname_of_another_account_is_a_conflict_that_does_not_say_whose(api: Api) -> None:
    alice = api.account("alice@acme.example", name="Acme")
    bob = api.account("bob@other.example", name="Other")
    added(alice)
    r = bob.post("/tracking-domains", {"hostname": "TRACK.acme.test"})
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["field"] == "hostname"
    assert "already in use on this instance" in error["message"]
    for secret in (alice.account_id, "Acme", "alice"):
        assert secret not in r.text
    mine = alice.post("/tracking-domains", {"hostname": HOST})
    assert mine.status_code == 409
    assert "already one of your tracking domains" in mine.json()["error"]["message"]


def test_another_accounts_domain_is_answered_exactly_like_a_missing_one(
    api: Api, dns: FakeDns
) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    domain_id = added(alice)["id"]
    dns.cname(HOST, CNAME_TARGET)
    missing = "dom_" + "a" * 16
    for method, suffix in [("GET", ""), ("DELETE", ""), ("POST", "/verify")]:
        theirs = bob.request(method, f"/tracking-domains/{domain_id}{suffix}")
        nothing = bob.request(method, f"/tracking-domains/{missing}{suffix}")
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.json() == nothing.json()
    assert bob.get("/tracking-domains").json() == {"items": [], "next_cursor": None}
    after = alice.get(f"/tracking-domains/{domain_id}").json()
    assert (after["status"], after["checked_at"]) == ("pending", None)


def test_lists_are_paged_by_cursor(api: Api) -> None:
    alice = api.account("alice@acme.example")
    names = [f"t{i}.acme.test" for i in range(5)]
    for name in names:
        added(alice, name)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = alice.get("/tracking-domains", **params).json()
        assert len(page["items"]) <= 2
        seen += [d["hostname"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    bad = alice.get("/tracking-domains", cursor="nonsense")
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "cursor")
    assert alice.get("/tracking-domains", limit=0).status_code == 422


def test_removing_a_domain_frees_its_hostname_unless_a_campaign_uses_it(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    domain_id = str(added(alice)["id"])
    with write_transaction(api.engine) as conn:
        conn.execute(
            insert(mailboxes).values(
                id="mbx_1",
                account_id=alice.account_id,
                name="Sales",
                from_email="sales@acme.example",
                from_name="Sales",
                smtp_url_encrypted=None,
                daily_limit=100,
                created_at_ms=now_ms(),
            )
        )
        conn.execute(
            insert(campaigns).values(
                id="cmp_1",
                account_id=alice.account_id,
                name="Spring launch",
                mailbox_id="mbx_1",
                status="draft",
                schedule={},
                track_opens=True,
                track_clicks=True,
                track_text_links=True,
                tracking_domain_id=domain_id,
                created_at_ms=now_ms(),
                updated_at_ms=now_ms(),
            )
        )
    r = alice.delete(f"/tracking-domains/{domain_id}")
    assert r.status_code == 409
    assert "campaign 'Spring launch'" in r.json()["error"]["message"]
    assert alice.get(f"/tracking-domains/{domain_id}").status_code == 200

    with write_transaction(api.engine) as conn:
        conn.execute(campaigns.delete())
    r = alice.delete(f"/tracking-domains/{domain_id}")
    assert r.status_code == 204
    assert alice.get(f"/tracking-domains/{domain_id}").status_code == 404
    assert alice.delete(f"/tracking-domains/{domain_id}").status_code == 404
    added(bob)


def test_keys_are_required(api: Api) -> None:
    assert api.client.get("/api/v1/tracking-domains").status_code == 401
    assert api.client.post("/api/v1/tracking-domains", json={"hostname": HOST}).status_code == 401
    assert api.client.post("/api/v1/tracking-domains/dom_x/verify").status_code == 401
    assert api.client.delete("/api/v1/tracking-domains/dom_x").status_code == 401


def test_an_instance_without_a_hostname_cannot_take_domains(api: Api) -> None:
    from dataclasses import replace

    from pixeltrail.platform.domains.domains import add_domain
    from pixeltrail.platform.errors import Conflict

    alice = api.account("alice@acme.example")
    bare = replace(api.settings, base_url="http://127.0.0.1:8000", cname_target="")
    with write_transaction(api.engine) as conn, pytest.raises(Conflict) as caught:
        add_domain(conn, alice.account_id, HOST, bare)
    assert "PIXELTRAIL_CNAME_TARGET" in caught.value.message
