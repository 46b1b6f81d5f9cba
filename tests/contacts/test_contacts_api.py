"""/contacts over HTTP on SQLite and PostgreSQL: add, merge, change, delete, page, search."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api, Tenant, import_csv


def _all(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = tenant.get("/contacts", **params, **({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


def test_add_then_the_same_address_merges(api: Api) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post(
        "/contacts",
        {"email": " Ada@Example.COM ", "first_name": "Ada", "fields": {"plan": "gold"}},
    )
    assert r.status_code == 201
    created = r.json()
    assert created["email"] == "ada@example.com"
    assert created["id"].startswith("ct_")
    assert set(created) == {
        "id",
        "email",
        "first_name",
        "last_name",
        "company",
        "fields",
        "suppressed",
        "do_not_track",
        "created_at",
        "updated_at",
    }
    r = alice.post(
        "/contacts", {"email": "ADA@example.com", "last_name": "Lovelace", "fields": {"city": "X"}}
    )
    assert r.status_code == 200
    merged = r.json()
    assert merged["id"] == created["id"]
    assert (merged["first_name"], merged["last_name"]) == ("Ada", "Lovelace")
    assert merged["fields"] == {"plan": "gold", "city": "X"}
    assert alice.get(f"/contacts/{created['id']}").json() == merged


def test_patch_changes_only_what_is_sent(api: Api) -> None:
    alice = api.account("alice@acme.example")
    ada = alice.post(
        "/contacts",
        {"email": "ada@example.com", "company": "Engines", "fields": {"a": "1", "b": "2"}},
    ).json()
    r = alice.patch(
        f"/contacts/{ada['id']}",
        {"first_name": "  Ada \n Augusta ", "fields": {"a": None, "c": "3"}},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["first_name"] == "Ada Augusta"  # one line: names go into headers
    assert body["company"] == "Engines"
    assert body["fields"] == {"b": "2", "c": "3"}
    other = alice.post("/contacts", {"email": "other@example.com"}).json()
    r = alice.patch(f"/contacts/{other['id']}", {"email": "ADA@example.com"})
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "email"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not an address"}, "email"),
        ({"first_name": "Ada"}, "email"),
        ({"email": "a@example.com", "colour": "red"}, "colour"),
        ({"email": "a@example.com", "first_name": 5}, "first_name"),
        ({"email": "a@example.com", "fields": ["x"]}, "fields"),
        ({"email": "a@example.com", "fields": {"plan": 5}}, "fields.plan"),
        ({"email": "a@example.com", "fields": {"Plan Tier": "x"}}, "fields"),
        ({"email": "a@example.com", "fields": {"x": "y" * 5001}}, "fields.x"),
        ({"email": "a@example.com", "fields": {f"k{i}": "v" for i in range(51)}}, "fields"),
        ({"email": "a@example.com", "company": "x" * 201}, "company"),
        ({"email": "a@example.com", "last_name": "nul\u0000byte"}, "last_name"),
        ({"email": 12}, "email"),
    ],
)
def test_bad_bodies_name_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post("/contacts", body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert r.json()["error"]["message"]
    assert alice.get("/contacts").json()["items"] == []


@pytest.mark.parametrize(
    ("content", "status"),
    [('{"email": ', 422), ('["a@example.com"]', 422), ("x" * (2 * 1024 * 1024), 413)],
)
def test_malformed_and_oversized_json(api: Api, content: str, status: int) -> None:
    alice = api.account("alice@acme.example")
    r = alice.request(
        "POST", "/contacts", content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == status
    assert r.json()["error"]["message"]


def test_another_accounts_contact_is_exactly_like_a_missing_one(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    theirs = bob.post("/contacts", {"email": "x@example.com"}).json()["id"]
    missing = alice.get("/contacts/ct_aaaaaaaaaaaaaaaa")
    for method, body in [("GET", None), ("PATCH", {"first_name": "Eve"}), ("DELETE", None)]:
        r = alice.request(method, f"/contacts/{theirs}", json=body)
        assert r.status_code == 404, method
        assert r.json() == missing.json()
    assert bob.get(f"/contacts/{theirs}").json()["first_name"] == ""
    assert alice.get("/contacts").json() == {"items": [], "next_cursor": None}


def test_delete_keeps_the_suppression(api: Api) -> None:
    alice = api.account("alice@acme.example")
    ada = alice.post("/contacts", {"email": "ada@example.com"}).json()
    alice.post("/suppressions", {"email": "ada@example.com", "reason": "unsubscribed"})
    assert alice.delete(f"/contacts/{ada['id']}").status_code == 204
    assert alice.get(f"/contacts/{ada['id']}").status_code == 404
    again = alice.post("/contacts", {"email": "ada@example.com"}).json()
    assert again["suppressed"] == "unsubscribed"


def test_paging_through_250_contacts_gives_each_once(api: Api) -> None:
    alice = api.account("alice@acme.example")
    rows = "".join(f"user{i:03}@example.com,User {i}\n" for i in range(250))
    assert import_csv(alice, "email,first_name\n" + rows)[1]["created"] == 250
    alice.post("/contacts", {"email": "late@example.com"})
    pages = []
    cursor = None
    while True:
        r = alice.get("/contacts", limit=100, **({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200
        pages.append(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [100, 100, 51]
    emails = [item["email"] for p in pages for item in p]
    assert len(set(emails)) == 251
    assert emails[-1] == "late@example.com"  # oldest first
    assert alice.get("/contacts", limit=0).status_code == 422
    assert alice.get("/contacts", limit="many").json()["error"]["field"] == "limit"
    assert alice.get("/contacts", cursor="garbage").json()["error"]["field"] == "cursor"


def test_search_is_case_insensitive_on_every_word(api: Api) -> None:
    alice = api.account("alice@acme.example")
    for body in [
        {"email": "ada@engines.example", "first_name": "Ada", "last_name": "Lovelace"},
        {"email": "emile@example.fr", "first_name": "Émile", "company": "Société Générale"},
        {"email": "pct@example.com", "company": "100% Pure_Co"},
        {"email": "grace@navy.example", "first_name": "Grace", "company": "Navy"},
    ]:
        assert alice.post("/contacts", body).status_code == 201
    bob = api.account("bob@other.example")
    bob.post("/contacts", {"email": "ada@bob.example", "first_name": "Ada"})

    def found(q: str) -> list[str]:
        return sorted(item["email"] for item in _all(alice, q=q))

    assert found("ADA") == ["ada@engines.example"]
    assert found("ada lovelace") == ["ada@engines.example"]
    assert found("émile") == ["emile@example.fr"]
    assert found("SOCIÉTÉ") == ["emile@example.fr"]
    assert found("NAVY.EXAMPLE") == ["grace@navy.example"]
    assert found("100%") == ["pct@example.com"]
    assert found("%pure") == []  # % and _ are text, not wildcards
    assert found("0_") == []
    assert found("ada grace") == []
    assert len(found("  ")) == 4
    assert alice.get("/contacts", q="x" * 201).status_code == 422
