"""The suppression list over HTTP and for the sender, on SQLite and PostgreSQL."""

from __future__ import annotations

from pixeltrail.platform.contacts.suppressions import is_suppressed, suppressed_emails
from pixeltrail.store.db import write_transaction

from .conftest import Api


def test_a_suppressed_contact_says_why(api: Api) -> None:
    alice = api.account("alice@acme.example")
    ada = alice.post("/contacts", {"email": "ada@example.com"}).json()
    r = alice.post("/suppressions", {"email": "ADA@example.com", "reason": "bounced"})
    assert r.status_code == 201
    assert r.json()["email"] == "ada@example.com"
    assert r.json()["reason"] == "bounced"
    assert alice.get(f"/contacts/{ada['id']}").json()["suppressed"] == "bounced"
    assert alice.get("/contacts").json()["items"][0]["suppressed"] == "bounced"


def test_a_stronger_reason_wins_and_an_unsubscribe_stays(api: Api) -> None:
    alice = api.account("alice@acme.example")
    assert alice.post("/suppressions", {"email": "a@example.com"}).json()["reason"] == "manual"
    r = alice.post("/suppressions", {"email": "a@example.com", "reason": "unsubscribed"})
    assert (r.status_code, r.json()["reason"]) == (200, "unsubscribed")
    r = alice.post("/suppressions", {"email": "a@example.com", "reason": "bounced"})
    assert (r.status_code, r.json()["reason"]) == (200, "unsubscribed")
    r = alice.delete("/suppressions/a@example.com")
    assert r.status_code == 409
    assert "only the recipient" in r.json()["error"]["message"]
    alice.post("/suppressions", {"email": "b@example.com", "reason": "bounced"})
    assert alice.delete("/suppressions/B@example.com").status_code == 204
    assert alice.delete("/suppressions/b@example.com").status_code == 404


def test_bad_suppressions_name_the_field(api: Api) -> None:
    alice = api.account("alice@acme.example")
    for body, field in [
        ({"email": "a@example.com", "reason": "annoying"}, "reason"),
        ({"email": "nope"}, "email"),
        ({"email": "a@example.com", "extra": 1}, "extra"),
        ({"reason": "manual"}, "email"),
    ]:
        r = alice.post("/suppressions", body)
        assert r.status_code == 422, body
        assert r.json()["error"]["field"] == field, body


def test_the_list_pages_and_belongs_to_its_account(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    with write_transaction(api.engine) as conn:
        from pixeltrail.platform.contacts.suppressions import suppress

        for i in range(120):
            suppress(conn, alice.account_id, f"u{i}@example.com", "bounced")
    bob.post("/suppressions", {"email": "bob-only@example.com"})
    seen: list[str] = []
    cursor = None
    while True:
        r = alice.get("/suppressions", limit=50, **({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200
        seen += [item["email"] for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"u{i}@example.com" for i in range(120))
    assert bob.delete("/suppressions/u1@example.com").status_code == 404


def test_the_sender_asks_which_addresses_are_suppressed(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    alice.post("/suppressions", {"email": "gone@example.com", "reason": "unsubscribed"})
    bob.post("/suppressions", {"email": "bobs@example.com"})
    wanted = [f"x{i}@example.com" for i in range(1200)] + ["Gone@example.com", "bobs@example.com"]
    with api.engine.connect() as conn:
        assert suppressed_emails(conn, alice.account_id, wanted) == {"Gone@example.com"}
        assert is_suppressed(conn, alice.account_id, "gone@example.com")
        assert not is_suppressed(conn, alice.account_id, "bobs@example.com")
