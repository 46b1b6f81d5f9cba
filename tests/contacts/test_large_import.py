"""The largest file allowed, 100,000 rows, over HTTP on SQLite and PostgreSQL.

Not a timed test (machines are noisy): `pytest --durations` shows how long it takes.
"""

from __future__ import annotations

from .conftest import Api, contact_count, import_csv


def test_100000_rows_import_then_merge(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    bob.post("/contacts", {"email": "person7@company7.example", "first_name": "Bob's own"})
    rows = "".join(
        f"person{i}@company{i % 997}.example,First{i},Last{i},Company {i % 997},"
        f"{('gold', 'silver', '')[i % 3]},City {i % 50}\n"
        for i in range(100_000)
    )
    data = "Email,First Name,Last Name,Company,Plan,City\n" + rows
    status, body = import_csv(alice, data)
    assert status == 200, body
    assert body == {
        "read": 100_000,
        "created": 100_000,
        "updated": 0,
        "rejected": [],
        "duplicates": [],
    }
    assert contact_count(api, alice.account_id) == 100_000
    found = alice.get("/contacts", q="person99999@").json()["items"]
    assert [(c["first_name"], c["fields"]) for c in found] == [
        ("First99999", {"plan": "gold", "city": "City 49"})
    ]
    # The same addresses again with one more column: all of them merged, none duplicated.
    again = "Email,Score\n" + "".join(
        f"person{i}@company{i % 997}.example,{i}\n" for i in range(100_000)
    )
    status, body = import_csv(alice, again)
    assert (status, body["created"], body["updated"]) == (200, 0, 100_000)
    assert (body["read"], body["rejected"], body["duplicates"]) == (100_000, [], [])
    assert contact_count(api, alice.account_id) == 100_000
    merged = alice.get("/contacts", q="person3@company3.").json()["items"][0]
    assert merged["fields"] == {"plan": "gold", "city": "City 3", "score": "3"}
    assert bob.get("/contacts").json()["items"][0]["first_name"] == "Bob's own"
