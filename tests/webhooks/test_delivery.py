"""Delivering to a real receiver: headers, signatures, retries, the 24 h cut-off, SSRF."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from pathlib import Path

import pytest

from pixeltrail.platform.secretbox import SecretBox
from pixeltrail.platform.webhooks.endpoints import send_test
from pixeltrail.store.db import write_transaction
from pixeltrail.tracking.keys import KeyRing

from .conftest import Received, Receiver, World, receiving, self_signed

HOUR = 3600_000


def queue_test(world: World, endpoint_id: str) -> str:
    """A webhook.test delivery, due now; the deliverers' clock catches up with it."""
    with write_transaction(world.engine) as conn:
        delivery = send_test(conn, world.account_id, endpoint_id)
    world.now = max(world.now, delivery.created_at_ms)
    return delivery.id


def verify(secret: str, request: Received) -> bool:
    """The receiver's check, written from the spec and nothing of pixeltrail's."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = b".".join(
        [
            request.headers["webhook-id"].encode(),
            request.headers["webhook-timestamp"].encode(),
            request.body,
        ]
    )
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1) for s in request.headers["webhook-signature"].split()]
    return any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in given)


def test_a_delivery_is_signed_per_the_spec(receiver: Receiver, world: World) -> None:
    endpoint, secret = world.endpoint(receiver.url, ["message.opened"])
    delivery_id = queue_test(world, endpoint.id)
    assert world.deliverer().run_once() == 1

    [request] = receiver.requests
    assert request.path == "/hooks/pixeltrail?src=test"
    assert request.headers["webhook-id"] == delivery_id
    assert request.headers["webhook-timestamp"] == str(world.now // 1000)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert verify(secret, request)
    assert not verify(secret.replace(secret[-6:-2], "AAAA"), request)
    payload = json.loads(request.body)
    assert payload["type"] == "webhook.test"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"]["endpoint_id"] == endpoint.id

    [row] = world.deliveries()
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
        "delivered",
        1,
        200,
        None,
    )
    assert row.delivered_at_ms == world.now
    assert world.deliverer().run_once() == 0


def test_retries_keep_the_id_and_body_until_a_2xx(receiver: Receiver, world: World) -> None:
    receiver.answers += [500, (503, {"retry-after": "60"}), 200]
    endpoint, secret = world.endpoint(receiver.url, ["message.opened"])
    delivery_id = queue_test(world, endpoint.id)
    deliverer = world.deliverer()
    start = world.now

    assert deliverer.run_once() == 1
    [row] = world.deliveries()
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
    assert row.last_error == "HTTP 500: ok"
    assert row.next_attempt_at_ms == start + 5_000

    world.now += 4_999
    assert deliverer.run_once() == 0  # not due yet
    world.now += 1
    assert deliverer.run_once() == 1
    [row] = world.deliveries()
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 2, 503)
    # Retry-After (60 s) is shorter than the schedule's 5 min: the longer of the two wins.
    assert row.next_attempt_at_ms == world.now + 300_000

    world.now = row.next_attempt_at_ms
    assert deliverer.run_once() == 1
    [row] = world.deliveries()
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
        "delivered",
        3,
        200,
        None,
    )
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery_id] * 3
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["webhook-timestamp"] for r in receiver.requests}) == 3
    assert all(verify(secret, r) for r in receiver.requests)


def test_retry_after_longer_than_the_schedule_is_honoured(receiver: Receiver, world: World) -> None:
    receiver.answers += [(429, {"retry-after": "600"})]
    endpoint, _ = world.endpoint(receiver.url, ["message.opened"])
    queue_test(world, endpoint.id)
    world.deliverer().run_once()
    [row] = world.deliveries()
    assert row.next_attempt_at_ms == world.now + 600_000


def test_after_24_hours_a_delivery_fails(receiver: Receiver, world: World) -> None:
    receiver.answers += [500] * 10
    endpoint, _ = world.endpoint(receiver.url, ["message.opened"])
    queue_test(world, endpoint.id)
    [row] = world.deliveries()
    deliverer = world.deliverer()

    world.now = row.created_at_ms + 24 * HOUR - 1_000
    deliverer.run_once()
    [row] = world.deliveries()
    # The next 5 s would fall past the deadline: one last try exactly at 24 h.
    assert (row.status, row.next_attempt_at_ms) == ("pending", row.created_at_ms + 24 * HOUR)

    world.now = row.next_attempt_at_ms
    deliverer.run_once()
    [row] = world.deliveries()
    assert (row.status, row.attempts, row.next_attempt_at_ms) == ("failed", 2, None)
    assert row.last_error == "HTTP 500: ok"
    world.now += 48 * HOUR
    assert deliverer.run_once() == 0
    assert len(receiver.requests) == 2


def test_the_default_schedule_spans_24_hours(receiver: Receiver, world: World) -> None:
    receiver.answers += [500] * 20
    endpoint, _ = world.endpoint(receiver.url, ["message.opened"])
    queue_test(world, endpoint.id)
    created = world.deliveries()[0].created_at_ms
    deliverer = world.deliverer()
    offsets = []
    while world.deliveries()[0].status == "pending":
        world.now = world.deliveries()[0].next_attempt_at_ms
        offsets.append(world.now - created)
        deliverer.run_once()
    minute = 60_000
    assert [round(o / minute, 2) for o in offsets] == [
        0,
        round(5_000 / minute, 2),
        5.08,
        35.08,
        155.08,
        455.08,
        1055.08,
        1440,
    ]


def test_410_gone_stops_the_retries(receiver: Receiver, world: World) -> None:
    receiver.answers += [410]
    endpoint, _ = world.endpoint(receiver.url, ["message.opened"])
    queue_test(world, endpoint.id)
    world.deliverer().run_once()
    [row] = world.deliveries()
    assert (row.status, row.last_status_code) == ("failed", 410)


def test_redirects_are_not_followed(receiver: Receiver, world: World) -> None:
    with receiving() as elsewhere:
        receiver.answers += [(307, {"location": elsewhere.url})]
        endpoint, _ = world.endpoint(receiver.url, ["message.opened"])
        queue_test(world, endpoint.id)
        world.deliverer().run_once()
        assert elsewhere.requests == []
    [row] = world.deliveries()
    assert (row.status, row.last_status_code) == ("pending", 307)


def test_hosts_resolving_to_private_addresses_are_never_called(
    receiver: Receiver, world: World
) -> None:
    """A hostname passes when saved; what it resolves to is checked at every attempt."""
    port = receiver.url.split(":")[2].split("/")[0]
    endpoint, _ = world.endpoint(f"https://rebind.example:{port}/x", ["message.opened"])
    queue_test(world, endpoint.id)
    resolved: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    world.deliverer(allow_local=False, resolver=resolver).run_once()
    [row] = world.deliveries()
    assert resolved == ["rebind.example"]
    assert row.status == "pending"
    assert row.last_status_code is None
    assert "rebind.example resolves to 127.0.0.1" in row.last_error
    assert "loopback" in row.last_error
    assert receiver.requests == []


def test_the_request_goes_to_the_checked_address_with_the_hosts_name(
    receiver: Receiver, world: World
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    endpoint, secret = world.endpoint(f"http://hooks.localhost:{port}/in", ["message.opened"])
    queue_test(world, endpoint.id)
    # The first address refuses connections: the next one checked is tried.
    deliverer = world.deliverer(resolver=lambda _h, _p: ["127.0.0.2", "127.0.0.1"])
    deliverer.run_once()
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.localhost:{port}"
    assert verify(secret, request)
    assert world.deliveries()[0].status == "delivered"


def test_https_is_verified_against_the_hostname_not_the_address(
    world: World, tmp_path: Path
) -> None:
    server_tls, client_tls = self_signed(tmp_path, "hooks.localhost")
    with receiving(server_tls) as tls_receiver:
        port = tls_receiver.url.split(":")[2].split("/")[0]
        good, _ = world.endpoint(f"https://hooks.localhost:{port}/in", ["message.opened"])
        bad, _ = world.endpoint(f"https://other.localhost:{port}/in", ["message.opened"])
        queue_test(world, good.id)
        queue_test(world, bad.id)
        deliverer = world.deliverer(resolver=lambda _h, _p: ["127.0.0.1"], verify=client_tls)
        deliverer.run_once()
        assert [r.headers["host"] for r in tls_receiver.requests] == [f"hooks.localhost:{port}"]
    by_endpoint = {row.endpoint_id: row for row in world.deliveries()}
    assert by_endpoint[good.id].status == "delivered"
    assert by_endpoint[bad.id].status == "pending"
    assert "CERTIFICATE_VERIFY_FAILED" in by_endpoint[bad.id].last_error


def test_unreachable_endpoints_are_retried_with_the_reason(world: World) -> None:
    with receiving() as gone:
        url = gone.url
    endpoint, _ = world.endpoint(url, ["message.opened"])
    queue_test(world, endpoint.id)
    world.deliverer().run_once()
    [row] = world.deliveries()
    assert row.status == "pending"
    assert "cannot connect to 127.0.0.1" in row.last_error


def test_secrets_the_instance_keys_cannot_read_are_reported_not_sent(
    receiver: Receiver, world: World
) -> None:
    endpoint, _ = world.endpoint(receiver.url, ["message.opened"])
    queue_test(world, endpoint.id)
    other_keys = SecretBox(KeyRing.parse("another-secret-key-0123456789abcdef"))
    world.deliverer(box=other_keys).run_once()
    [row] = world.deliveries()
    assert row.status == "pending"
    assert row.last_error.startswith("cannot sign: ")
    assert "PIXELTRAIL_SECRET_KEY" in row.last_error
    assert receiver.requests == []


def test_the_secret_never_reaches_logs_or_the_log_table(
    receiver: Receiver, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answers += [500]
    endpoint, secret = world.endpoint(receiver.url, ["message.opened"])
    queue_test(world, endpoint.id)
    with caplog.at_level(logging.DEBUG):
        world.deliverer().run_once()
    assert "HTTP 500" in caplog.text
    key = secret.removeprefix("whsec_")
    assert key not in caplog.text
    assert all(key not in str(tuple(row)) for row in world.deliveries())


def test_two_workers_never_send_the_same_delivery(receiver: Receiver, world: World) -> None:
    endpoint, _ = world.endpoint(receiver.url, ["message.opened"])
    ids = {queue_test(world, endpoint.id) for _ in range(40)}
    workers = [world.deliverer(), world.deliverer()]
    barrier = threading.Barrier(len(workers))

    def drain(index: int) -> None:
        barrier.wait()
        while workers[index].run_once():
            pass

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    sent = [r.headers["webhook-id"] for r in receiver.requests]
    errors = [row.last_error for row in world.deliveries() if row.last_error]
    assert sorted(sent) == sorted(ids), errors
    assert {row.status for row in world.deliveries()} == {"delivered"}
