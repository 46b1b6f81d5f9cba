"""/webhooks over real HTTP on SQLite and PostgreSQL: secrets once, SSRF, tenants, the log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pixeltrail.platform.secretbox import SecretBox
from pixeltrail.platform.webhooks.delivery import WebhookDeliverer
from pixeltrail.store.schema import webhook_endpoints
from pixeltrail.web.api.app import mounted_api

from ..api.conftest import Api, Tenant, make_settings, serving
from ..dbs import Database
from .conftest import Receiver

EVENTS = ["message.opened", "message.clicked"]


def _api(database: Database, tmp_path: Path, **env: str) -> Iterator[Api]:
    settings = make_settings(tmp_path, database.url, **env)
    with (
        serving(mounted_api(database.engine, settings)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield Api(database.engine, settings, client)


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[Api]:
    yield from _api(database, tmp_path)


@pytest.fixture
def local_api(database: Database, tmp_path: Path) -> Iterator[Api]:
    """The API of an instance set up for local testing (PIXELTRAIL_WEBHOOKS_ALLOW_LOCAL=1)."""
    yield from _api(database, tmp_path, PIXELTRAIL_WEBHOOKS_ALLOW_LOCAL="1")


def deliverer(api: Api) -> WebhookDeliverer:
    return WebhookDeliverer(
        api.engine, SecretBox(api.settings.key_ring()), allow_local=True, jitter=0
    )


def add(
    tenant: Tenant, url: str = "https://hooks.example.com/in", events: list[str] = EVENTS
) -> dict[str, Any]:
    r = tenant.post("/webhooks", {"url": url, "event_types": events})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def test_the_secret_is_shown_once_and_stored_encrypted(api: Api) -> None:
    alice = api.account("alice@acme.example")
    created = add(alice, events=["message.clicked", "message.opened"])
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["message.opened", "message.clicked"]
    assert created["url"] == "https://hooks.example.com/in"
    assert created["id"].startswith("wh_")
    assert created["disabled_at"] is None

    shown = alice.get(f"/webhooks/{created['id']}").json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    listed = alice.get("/webhooks").json()
    assert listed == {"items": [shown], "next_cursor": None}
    with api.engine.connect() as conn:
        stored = conn.execute(select(webhook_endpoints.c.secret_encrypted)).scalar_one()
    assert created["secret"] not in stored
    assert created["secret"].removeprefix("whsec_") not in stored
    assert SecretBox(api.settings.key_ring()).decrypt(stored) == created["secret"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://hooks.example.com", "event_types": ["message.spam"]}, "event_types"),
        ({"url": "https://hooks.example.com", "event_types": []}, "event_types"),
        ({"url": "https://hooks.example.com", "event_types": "message.opened"}, "event_types"),
        ({"url": "https://hooks.example.com"}, "event_types"),
        ({"url": "ftp://hooks.example.com", "event_types": EVENTS}, "url"),
        ({"url": 5, "event_types": EVENTS}, "url"),
        ({"url": "https://hooks.example.com", "event_types": EVENTS, "secret": "x"}, "secret"),
    ],
)
def test_bad_input_names_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post("/webhooks", body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/in",
        "http://127.0.0.1:8080/in",
        "https://127.0.0.1/in",
        "https://localhost/in",
        "https://10.0.0.5/in",
        "https://[::1]/in",
        "https://169.254.169.254/latest/meta-data",
    ],
)
def test_internal_and_plain_http_urls_are_refused(api: Api, url: str) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post("/webhooks", {"url": url, "event_types": EVENTS})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "url"
    assert alice.get("/webhooks").json()["items"] == []


def test_local_testing_allows_loopback_over_http(local_api: Api) -> None:
    alice = local_api.account("alice@acme.example")
    add(alice, "http://127.0.0.1:9999/in")
    r = alice.post("/webhooks", {"url": "http://10.0.0.5/in", "event_types": EVENTS})
    assert r.status_code == 422


def test_other_accounts_ids_are_not_found(local_api: Api, receiver: Receiver) -> None:
    alice = local_api.account("alice@acme.example")
    bob = local_api.account("bob@other.example")
    endpoint = add(alice, receiver.url)["id"]
    delivery = alice.post(f"/webhooks/{endpoint}/test").json()["id"]
    for tenant, status in [(bob, 404), (alice, None)]:
        answers = [
            tenant.get(f"/webhooks/{endpoint}"),
            tenant.get(f"/webhooks/{endpoint}/deliveries"),
            tenant.post(f"/webhooks/{endpoint}/test"),
            tenant.post(f"/webhooks/{endpoint}/deliveries/{delivery}/retry"),
        ]
        if status is None:
            assert [a.status_code for a in answers] == [200, 200, 202, 409]
        else:
            assert [a.status_code for a in answers] == [404] * 4
            missing = tenant.get("/webhooks/wh_doesnotexist0000").json()
            assert answers[0].json()["error"]["code"] == missing["error"]["code"] == "not_found"
    assert bob.delete(f"/webhooks/{endpoint}").status_code == 404
    assert bob.get("/webhooks").json()["items"] == []
    assert alice.get(f"/webhooks/{endpoint}").status_code == 200
    # Bob's own endpoint does not let him read Alice's deliveries through it either.
    bobs = add(bob, receiver.url)["id"]
    assert bob.post(f"/webhooks/{bobs}/deliveries/{delivery}/retry").status_code == 404


def test_the_delivery_log_pages_newest_first(local_api: Api) -> None:
    alice = local_api.account("alice@acme.example")
    endpoint = add(alice, "http://127.0.0.1:9/in")["id"]
    queued = [alice.post(f"/webhooks/{endpoint}/test").json()["id"] for _ in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = alice.get(f"/webhooks/{endpoint}/deliveries", **params).json()
        assert len(body["items"]) <= 3
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(queued)
    assert len(set(seen)) == 7
    created = [
        item["created_at"]
        for item in alice.get(f"/webhooks/{endpoint}/deliveries", limit=10).json()["items"]
    ]
    assert created == sorted(created, reverse=True)
    item = alice.get(f"/webhooks/{endpoint}/deliveries", limit=1).json()["items"][0]
    assert set(item) == {
        "id", "endpoint_id", "event_type", "status", "attempts", "last_status_code",
        "last_error", "created_at", "delivered_at", "next_attempt_at", "payload",
    }  # fmt: skip
    assert (item["status"], item["attempts"], item["event_type"]) == ("pending", 0, "webhook.test")
    assert alice.get(f"/webhooks/{endpoint}/deliveries", status="failed").json()["items"] == []
    bad: list[dict[str, Any]] = [{"cursor": "garbage"}, {"status": "lost"}, {"limit": 0}]
    for query in bad:
        r = alice.get(f"/webhooks/{endpoint}/deliveries", **query)
        assert r.status_code == 422
        assert r.json()["error"]["field"] == next(iter(query))


def test_test_deliveries_and_retries(local_api: Api, receiver: Receiver) -> None:
    alice = local_api.account("alice@acme.example")
    endpoint = add(alice, receiver.url)["id"]
    receiver.answers += [410]
    first = alice.post(f"/webhooks/{endpoint}/test")
    assert first.status_code == 202
    assert first.json()["status"] == "pending"
    assert deliverer(local_api).run_once() == 1
    [failed] = alice.get(f"/webhooks/{endpoint}/deliveries").json()["items"]
    assert (failed["status"], failed["last_status_code"]) == ("failed", 410)
    assert failed["next_attempt_at"] is None

    again = alice.post(f"/webhooks/{endpoint}/deliveries/{failed['id']}/retry")
    assert again.status_code == 202
    assert (again.json()["id"], again.json()["status"]) == (failed["id"], "pending")
    assert deliverer(local_api).run_once() == 1
    [done] = alice.get(f"/webhooks/{endpoint}/deliveries").json()["items"]
    assert (done["status"], done["attempts"], done["last_status_code"]) == ("delivered", 2, 200)
    assert done["delivered_at"] is not None
    assert [r.headers["webhook-id"] for r in receiver.requests] == [failed["id"]] * 2
    r = alice.post(f"/webhooks/{endpoint}/deliveries/{failed['id']}/retry")
    assert r.status_code == 409


def test_removing_an_endpoint_removes_its_log(local_api: Api) -> None:
    alice = local_api.account("alice@acme.example")
    endpoint = add(alice, "http://127.0.0.1:9/in")["id"]
    alice.post(f"/webhooks/{endpoint}/test")
    assert alice.delete(f"/webhooks/{endpoint}").status_code == 204
    assert alice.get(f"/webhooks/{endpoint}").status_code == 404
    assert alice.get(f"/webhooks/{endpoint}/deliveries").status_code == 404
    assert alice.delete(f"/webhooks/{endpoint}").status_code == 404
    assert deliverer(local_api).run_once() == 0


def test_an_account_has_at_most_20_endpoints(api: Api) -> None:
    alice = api.account("alice@acme.example")
    for n in range(20):
        add(alice, f"https://hooks.example.com/{n}")
    r = alice.post("/webhooks", {"url": "https://hooks.example.com/21", "event_types": EVENTS})
    assert r.status_code == 409
    first = alice.get("/webhooks", limit=15).json()
    rest = alice.get("/webhooks", limit=15, cursor=first["next_cursor"]).json()
    assert len(first["items"]) + len(rest["items"]) == 20
    assert rest["next_cursor"] is None
    assert "/webhooks" in api.client.get("/api/v1/openapi.json").json()["paths"]
