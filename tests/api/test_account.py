"""Accounts over the API: defaults, settings, keys, errors that name the field."""

from __future__ import annotations

import pytest

from .conftest import Api


def test_new_account_has_open_tracking_on(api: Api) -> None:
    alice = api.account("alice@acme.example", timezone="Europe/Paris")
    r = alice.get("/account")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == alice.account_id
    assert body["default_track_opens"] is True
    assert body["timezone"] == "Europe/Paris"
    assert body["anonymize_ips"] is False


def test_settings_change_and_bad_values_name_the_field(api: Api) -> None:
    alice = api.account("alice@acme.example")
    r = alice.patch("/account", {"name": "Acme Sales", "anonymize_ips": True, "retention_days": 90})
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["anonymize_ips"], r.json()["retention_days"]) == (
        "Acme Sales",
        True,
        90,
    )
    for body, field in [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"colour": "red"}, "colour"),
        ({"anonymize_ips": "yes"}, "anonymize_ips"),
        ({"retention_days": 0}, "retention_days"),
        ({"name": ""}, "name"),
    ]:
        r = alice.patch("/account", body)
        assert r.status_code == 422, body
        assert r.json()["error"]["field"] == field
    assert alice.get("/account").json()["name"] == "Acme Sales"


@pytest.mark.parametrize(
    ("content", "status"),
    [('{"name": ', 422), ("[1, 2]", 422), ("x" * (2 * 1024 * 1024), 413)],
)
def test_malformed_and_oversized_bodies(api: Api, content: str, status: int) -> None:
    alice = api.account("alice@acme.example")
    r = alice.request(
        "PATCH", "/account", content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == status
    assert r.json()["error"]["message"]


def test_keys_are_required_and_checked(api: Api) -> None:
    alice = api.account("alice@acme.example")
    assert api.client.get("/api/v1/account").status_code == 401
    for key in ["-", "nonsense", alice.api_key[:-1] + ("A" if alice.api_key[-1] != "A" else "B")]:
        r = api.client.get("/api/v1/account", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401, key
        assert r.headers["www-authenticate"] == "Bearer"


def test_each_key_sees_only_its_own_account(api: Api) -> None:
    alice = api.account("alice@acme.example", name="Acme")
    bob = api.account("bob@other.example", name="Other")
    assert alice.get("/account").json()["name"] == "Acme"
    assert bob.get("/account").json()["name"] == "Other"
    bob.patch("/account", {"name": "Bob's"})
    assert alice.get("/account").json()["name"] == "Acme"


def test_openapi_document(api: Api) -> None:
    r = api.client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert "/account" in r.json()["paths"]
