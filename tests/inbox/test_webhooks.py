"""What an INBOX message means reaches webhook endpoints subscribed to it: message.replied,
message.auto_replied and message.bounced, in the Standard Webhooks shape, once per message."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from pixeltrail.config import Settings
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.mail.mailboxes import secret_box
from pixeltrail.platform.webhooks.endpoints import create_endpoint
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import webhook_deliveries

from ..chain import Chain, make_chain
from .conftest import message_rows, record, reply_to, sample, schedule, send, sent_email

INBOX_EVENTS = ["message.replied", "message.auto_replied", "message.bounced"]


def _sent(engine: Engine, settings: Settings, events: list[str]) -> tuple[Chain, str, str]:
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings)
        endpoint, _ = create_endpoint(
            conn, chain.account_id, "https://hooks.example.com/in", events, secret_box(settings)
        )
    now = now_ms()
    schedule(engine, settings, now)
    send(engine, settings, now)
    (message,) = message_rows(engine, chain.campaign_id)
    return chain, str(message["id"]), endpoint.id


def _deliveries(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.created_at_ms))
        return [dict(r._mapping) for r in rows]


def test_a_reply_is_sent_to_subscribers_once(engine: Engine, settings: Settings) -> None:
    chain, message_id, endpoint_id = _sent(engine, settings, INBOX_EVENTS)
    raw = reply_to(sent_email(settings, message_id), "Call me on Monday.")
    row_id = record(engine, raw, uid=1)
    assert record(engine, raw, uid=1) is None
    (delivery,) = _deliveries(engine)
    assert (delivery["endpoint_id"], delivery["event_type"]) == (endpoint_id, "message.replied")
    payload = delivery["payload"]
    assert payload["type"] == "message.replied"
    assert payload["timestamp"] == "1970-01-01T00:00:01.001Z"  # when the mailbox received it
    assert payload["data"] == {
        "inbound_id": row_id,
        "message_id": message_id,
        "campaign_id": chain.campaign_id,
        "contact_id": chain.contact_ids[0],
        "email": "ada@example.org",
        "matched_by": "in_reply_to",
        "from_email": "ada@example.org",
        "subject": "Re: Hello Ada",
        "text": "Call me on Monday.\n",
        "at": "1970-01-01T00:00:01.001Z",
    }


def test_a_bounce_carries_the_servers_words(engine: Engine, settings: Settings) -> None:
    _, message_id, _ = _sent(engine, settings, INBOX_EVENTS)
    raw = sample("lhost-postfix-02.eml", {"userunknown@example.co.jp": "ada@example.org"})
    record(engine, raw, uid=2)
    (delivery,) = _deliveries(engine)
    data = delivery["payload"]["data"]
    assert delivery["event_type"] == "message.bounced"
    assert (data["message_id"], data["matched_by"], data["status_code"]) == (
        message_id,
        "recipient",
        "5.1.1",
    )
    assert "User Unknown" in data["diagnostic"]
    assert "text" not in data


def test_an_auto_reply_is_its_own_event(engine: Engine, settings: Settings) -> None:
    _, message_id, _ = _sent(engine, settings, INBOX_EVENTS)
    ours = str(sent_email(settings, message_id)["Message-ID"])
    raw = sample("rfc3834-03.eml", {"<25203A4E-F90F-4A14-BF51-3E7B9D39BE8E@libsisimai.org>": ours})
    record(engine, raw, uid=3)
    (delivery,) = _deliveries(engine)
    assert delivery["event_type"] == "message.auto_replied"
    assert delivery["payload"]["data"]["message_id"] == message_id


def test_only_subscribed_types_and_matched_messages_are_sent(
    engine: Engine, settings: Settings
) -> None:
    _, message_id, _ = _sent(engine, settings, ["message.bounced"])
    record(engine, reply_to(sent_email(settings, message_id)), uid=1)  # not subscribed
    stray = reply_to(
        sent_email(settings, message_id),
        From="x@example.net",
        **{"In-Reply-To": "", "References": ""},
    )
    record(engine, stray, uid=2)
    assert _deliveries(engine) == []
