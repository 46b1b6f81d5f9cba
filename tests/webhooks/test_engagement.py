"""Opens and clicks recorded by the flusher become webhooks: a person's only, once, settled."""

from __future__ import annotations

import json

from pixeltrail.platform.webhooks.events import (
    SETTLE_MS,
    enqueue,
    enqueue_contact_unsubscribed,
    enqueue_engagement,
    enqueue_message_sent,
)
from pixeltrail.recording.flusher import record_hits
from pixeltrail.store.db import write_transaction
from pixeltrail.tracking.classify import Rules
from pixeltrail.tracking.hits import Hit, HitKind, new_event_id

from .conftest import SENT_AT, Receiver, World

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
LATER = SENT_AT + 3_600_000


def hit(
    message_id: str,
    kind: HitKind = "open",
    at_ms: int = LATER,
    method: str = "GET",
    link: int | None = None,
    honeypot: bool = False,
) -> Hit:
    destination = "https://acme.example/pricing?utm=1" if kind == "click" and not honeypot else None
    return Hit(
        new_event_id(),
        kind,
        message_id,
        link,
        destination,
        at_ms,
        "198.51.100.7",
        SAFARI,
        method,
        honeypot,
    )


def record(world: World, *hits: Hit) -> None:
    with write_transaction(world.engine) as conn:
        record_hits(conn, list(hits), Rules.load(), enqueue_engagement)


def test_a_human_open_of_a_sent_message_is_queued(world: World) -> None:
    endpoint, _ = world.endpoint("https://hooks.example.com/x", ["message.opened"])
    message_id = world.sent_message("reader@b.example")
    opened = hit(message_id)
    record(world, opened)
    [row] = world.deliveries()
    assert (row.endpoint_id, row.event_type, row.status, row.attempts) == (
        endpoint.id,
        "message.opened",
        "pending",
        0,
    )
    assert row.next_attempt_at_ms == LATER + SETTLE_MS
    payload = row.payload
    assert payload["type"] == "message.opened"
    assert payload["timestamp"] == "2027-01-15T09:00:00.000Z"
    data = payload["data"]
    assert data["event_id"] == opened.id
    assert data["message_id"] == message_id
    assert data["email"] == "reader@b.example"
    assert data["campaign_id"].startswith("cmp_")
    assert data["contact_id"].startswith("ct_")
    assert (data["classification"], data["at"]) == ("human", payload["timestamp"])
    assert data["reason"]
    assert "link" not in data

    # Replaying the same hits (a spool segment read twice) queues nothing more.
    record(world, opened)
    assert len(world.deliveries()) == 1


def test_a_click_carries_its_link_and_destination(world: World) -> None:
    world.endpoint("https://hooks.example.com/x", ["message.clicked"])
    message_id = world.sent_message()
    record(world, hit(message_id, "open"), hit(message_id, "click", link=2))
    [row] = world.deliveries()
    assert row.event_type == "message.clicked"
    assert row.payload["data"]["link"] == 2
    assert row.payload["data"]["destination"] == "https://acme.example/pricing?utm=1"


def test_machines_and_foreign_messages_are_not_queued(world: World) -> None:
    world.endpoint("https://hooks.example.com/x", ["message.opened", "message.clicked"])
    message_id = world.sent_message()
    record(
        world,
        hit(message_id, "click", link=1, method="HEAD"),  # a link checker
        hit(message_id, "click", at_ms=SENT_AT + 2_000, link=1),  # seconds after sending
        hit("ZZZZZZZZZZZZZZZZ"),  # a message this instance did not send
    )
    assert world.deliveries() == []


def test_only_subscribed_endpoints_of_the_messages_account(world: World) -> None:
    opens, _ = world.endpoint("https://opens.example.com/x", ["message.opened"])
    world.endpoint("https://clicks.example.com/x", ["message.clicked"])
    other = world.other_account()
    world.endpoint("https://other.example.com/x", ["message.opened"], account_id=other)
    record(world, hit(world.sent_message()))
    assert [row.endpoint_id for row in world.deliveries()] == [opens.id]


def test_a_click_reclassified_before_it_is_sent_is_cancelled(
    receiver: Receiver, world: World
) -> None:
    world.endpoint(receiver.url, ["message.clicked"])
    message_id = world.sent_message()
    click = hit(message_id, "click", link=1)
    record(world, click)
    # Three seconds later the honeypot link is followed: that was a scanner.
    record(world, hit(message_id, "click", at_ms=LATER + 3_000, link=0, honeypot=True))
    world.now = LATER + SETTLE_MS
    world.deliverer().run_once()
    [row] = world.deliveries()
    assert row.status == "cancelled"
    assert row.last_error.startswith("not sent: reclassified as scanner")
    assert receiver.requests == []


def test_a_settled_open_is_delivered(receiver: Receiver, world: World) -> None:
    world.endpoint(receiver.url, ["message.opened"])
    record(world, hit(world.sent_message()))
    world.now = LATER + SETTLE_MS - 1
    assert world.deliverer().run_once() == 0
    world.now += 1
    assert world.deliverer().run_once() == 1
    assert json.loads(receiver.requests[0].body)["type"] == "message.opened"


def test_sent_and_unsubscribed_helpers(world: World) -> None:
    endpoint, _ = world.endpoint(
        "https://hooks.example.com/x", ["message.sent", "contact.unsubscribed"]
    )
    message_id = world.sent_message("reader@b.example")
    with write_transaction(world.engine) as conn:
        assert enqueue_message_sent(conn, message_id) == 1
        assert enqueue_message_sent(conn, message_id) == 0  # idempotent per message
        assert (
            enqueue_contact_unsubscribed(
                conn, world.account_id, "reader@b.example", message_id=message_id, at_ms=LATER
            )
            == 1
        )
        # Nobody listens to opens: nothing is queued.
        assert enqueue(conn, world.account_id, "message.opened", {"x": 1}) == 0
    sent, unsubscribed = sorted(world.deliveries(), key=lambda r: r.event_type, reverse=True)
    assert sent.payload["type"] == "message.sent"
    assert sent.payload["data"]["message_id"] == message_id
    assert sent.payload["data"]["email"] == "reader@b.example"
    assert sent.payload["timestamp"] == "2027-01-15T08:00:00.000Z"
    data = unsubscribed.payload["data"]
    assert unsubscribed.payload["type"] == "contact.unsubscribed"
    assert data["contact_id"] == sent.payload["data"]["contact_id"]
    assert data["campaign_id"] == sent.payload["data"]["campaign_id"]
    assert (data["email"], data["message_id"]) == ("reader@b.example", message_id)
    assert {sent.endpoint_id, unsubscribed.endpoint_id} == {endpoint.id}
