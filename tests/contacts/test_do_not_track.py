"""A contact can be marked "do not track": their messages carry no pixel and no rewritten link."""

from __future__ import annotations

from .conftest import Api


def test_do_not_track_is_off_by_default_and_can_be_set(api: Api) -> None:
    alice = api.account("alice@acme.example")
    created = alice.post("/contacts", {"email": "ada@example.org"})
    assert created.json()["do_not_track"] is False
    changed = alice.patch(f"/contacts/{created.json()['id']}", {"do_not_track": True})
    assert changed.status_code == 200
    assert changed.json()["do_not_track"] is True
    wrong = alice.patch(f"/contacts/{created.json()['id']}", {"do_not_track": "yes"})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["field"] == "do_not_track"
