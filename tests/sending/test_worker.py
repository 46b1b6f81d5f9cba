"""Scheduling and sending a campaign to a real SMTP server, with retries, bounces and caps."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re

import pytest
from sqlalchemy import Engine, func, select, update

from pixeltrail.config import Settings
from pixeltrail.platform.campaigns.scheduler import DAY_MS, schedule_due
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.mail.mailboxes import secret_box
from pixeltrail.platform.webhooks.endpoints import create_endpoint
from pixeltrail.platform.webhooks.events import enqueue_engagement
from pixeltrail.recording.flusher import record_hits
from pixeltrail.sending.worker import CONCURRENCY, SendWorker, claim, mark_sending, reconcile
from pixeltrail.store.db import write_transaction
from pixeltrail.store.events import list_events
from pixeltrail.store.schema import (
    campaigns,
    contacts,
    enrollments,
    mailboxes,
    messages,
    suppressions,
    webhook_deliveries,
)
from pixeltrail.tracking.classify import Rules
from pixeltrail.tracking.hits import Hit, new_event_id
from pixeltrail.tracking.links import parse_tracking_url

from ..chain import make_chain
from .conftest import SmtpServer

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36"
)


def _schedule(engine: Engine, settings: Settings, now: int) -> int:
    with write_transaction(engine) as conn:
        return schedule_due(conn, settings, now)


def _send(engine: Engine, settings: Settings, now: int | None = None) -> int:
    worker = SendWorker(engine, settings, settings.signer())

    async def once() -> int:
        try:
            return await worker.run_once(now)
        finally:
            await worker.close()

    return asyncio.run(once())


def _messages(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(select(messages).order_by(messages.c.contact_id))
        ]


def test_a_campaign_reaches_the_smtp_server_tracked(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=smtp_server.url, emails=["ada@example.org"])
    now = now_ms()
    assert _schedule(engine, settings, now) == 1
    assert _send(engine, settings) == 1
    (received,) = smtp_server.inbox.received
    assert received["Subject"] == "Hello Ada"
    assert received["From"] == "Acme Sales <sales@acme.example>"
    assert received["To"] == "Ada <ada@example.org>"
    assert re.fullmatch(r"<[A-Za-z0-9_-]{16}@acme\.example>", received["Message-ID"])
    assert received["Date"]
    unsubscribe = received["List-Unsubscribe"]
    assert re.search(r"<http://127\.0\.0\.1:8000/u/[A-Za-z0-9_-]+>", unsubscribe)
    assert "<mailto:sales@acme.example?subject=unsubscribe>" in unsubscribe
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received.get_content_type() == "multipart/alternative"
    html = received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = received.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hi Ada" in html and "Hi Ada" in text
    click = re.search(r'href="(http://127\.0\.0\.1:8000/c/[A-Za-z0-9_-]+)"', html)
    assert click is not None
    claims = parse_tracking_url(click.group(1), settings.signer())
    assert claims.destination == "https://example.com/x?a=1&b=2"
    assert re.search(r'<img src="http://127\.0\.0\.1:8000/o/', html)
    assert "http://127.0.0.1:8000/c/" in text
    (row,) = _messages(engine)
    # One link, tracked in the HTML part and again in the text part: one destination.
    assert (row["status"], row["link_count"], row["attempts"]) == ("sent", 2, 1)
    assert row["destination_count"] == 1
    assert claims.message_id == row["id"]
    # Sent once: another pass sends nothing.
    assert _send(engine, settings) == 0
    assert len(smtp_server.inbox.received) == 1


def test_a_mailbox_on_an_international_domain_sends_with_its_punycode_name(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, smtp_url=smtp_server.url, emails=["ada@zürich.example"])
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == chain.mailbox_id)
            .values(from_email="sales@bücher.example")
        )
    assert _schedule(engine, settings, now_ms()) == 1
    assert _send(engine, settings) == 1
    (received,) = smtp_server.inbox.received
    assert received["To"] == "Ada <ada@xn--zrich-kva.example>"
    assert received["From"] == "Acme Sales <sales@xn--bcher-kva.example>"
    assert re.fullmatch(r"<[A-Za-z0-9_-]{16}@xn--bcher-kva\.example>", received["Message-ID"])
    assert (
        "<mailto:sales@xn--bcher-kva.example?subject=unsubscribe>" in received["List-Unsubscribe"]
    )
    assert [row["status"] for row in _messages(engine)] == ["sent"]


def test_a_scanner_clicking_every_link_of_a_message_with_a_text_part_is_a_scanner(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    """Two links, each tracked in the HTML part and again in the text part: four tracked links
    but two destinations, and clicking both within a second is every link clicked."""
    html = (
        '<p>Hi, <a href="https://example.com/pricing">pricing</a>'
        ' or <a href="https://example.com/demo">a demo</a></p>'
    )
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=smtp_server.url, steps=[("Hello", html, 0)])
    _schedule(engine, settings, now_ms())
    assert _send(engine, settings) == 1
    (row,) = _messages(engine)
    assert (row["link_count"], row["destination_count"]) == (4, 2)
    (received,) = smtp_server.inbox.received
    body = received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    urls = re.findall(r'href="(http://127\.0\.0\.1:8000/c/[A-Za-z0-9_-]+)"', body)
    claims = [parse_tracking_url(url, settings.signer()) for url in urls]
    assert [c.destination for c in claims] == [
        "https://example.com/pricing",
        "https://example.com/demo",
    ]
    start = int(row["sent_at_ms"]) + 10 * 60_000  # type: ignore[call-overload]
    scan = [
        Hit(
            new_event_id(),
            "click",
            c.message_id,
            c.link,
            c.destination,
            start + i * 400,
            "20.98.147.3",
            CHROME,
            "GET",
        )
        for i, c in enumerate(claims)
    ]
    with write_transaction(engine) as conn:
        record_hits(conn, scan, Rules.load(), enqueue_engagement)
    with engine.connect() as conn:
        verdicts = {(e.classification, e.reason) for e in list_events(conn, str(row["id"]))}
    assert verdicts == {("scanner", "all 2 links clicked within 0.4 s")}


@pytest.mark.parametrize("reply", ["421 4.7.0 Try again later", "450 4.2.1 Mailbox busy"])
def test_temporary_refusals_are_retried_later(
    engine: Engine, settings: Settings, smtp_server: SmtpServer, reply: str
) -> None:
    smtp_server.inbox.refuse["ada@example.org"] = reply
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=smtp_server.url)
    now = now_ms()
    _schedule(engine, settings, now)
    _send(engine, settings, now)
    (row,) = _messages(engine)
    assert row["status"] == "scheduled"
    assert str(row["error"]).startswith(reply[:3])
    assert int(row["send_at_ms"]) >= now + 60_000  # type: ignore[call-overload]
    # Once the server takes it again, the retry goes through.
    del smtp_server.inbox.refuse["ada@example.org"]
    assert _send(engine, settings, int(row["send_at_ms"]) + 1) == 1  # type: ignore[call-overload]
    assert _messages(engine)[0]["status"] == "sent"
    assert len(smtp_server.inbox.received) == 1


def test_a_permanent_refusal_bounces_the_address(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    smtp_server.inbox.refuse["ada@example.org"] = "550 5.1.1 No such user"
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, smtp_url=smtp_server.url)
    _schedule(engine, settings, now_ms())
    _send(engine, settings)
    (row,) = _messages(engine)
    assert row["status"] == "failed"
    assert "550" in str(row["error"])
    with engine.connect() as conn:
        assert conn.execute(select(suppressions.c.reason)).scalar_one() == "bounced"
        assert (
            conn.execute(
                select(enrollments.c.status).where(enrollments.c.contact_id == chain.contact_ids[0])
            ).scalar_one()
            == "bounced"
        )


def test_unreachable_server_is_a_temporary_failure(engine: Engine, settings: Settings) -> None:
    from ..server.conftest import free_port

    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=f"smtp://127.0.0.1:{free_port()}?starttls=off")
    _schedule(engine, settings, now_ms())
    _send(engine, settings)
    (row,) = _messages(engine)
    assert row["status"] == "scheduled"
    assert row["error"]


def test_the_outbox_keeps_messages_without_a_mail_server(
    engine: Engine, settings: Settings
) -> None:
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=None)
    _schedule(engine, settings, now_ms())
    assert _send(engine, settings) == 1
    (row,) = _messages(engine)
    kept = settings.data_dir / "outbox" / f"{row['id']}.eml"
    message = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
    assert message["To"] == "Ada <ada@example.org>"


def test_next_step_waits_for_its_delay_after_the_previous_send(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    steps = [("One", "<p>1</p>", 0), ("Two", "<p>2</p>", 2)]
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=smtp_server.url, steps=steps)
    now = now_ms()
    _schedule(engine, settings, now)
    _send(engine, settings)
    sent_at = int(_messages(engine)[0]["sent_at_ms"])  # type: ignore[call-overload]
    assert _schedule(engine, settings, sent_at + DAY_MS) == 0
    assert _schedule(engine, settings, sent_at + 2 * DAY_MS) == 1
    rows = _messages(engine)
    assert sorted(str(r["status"]) for r in rows) == ["scheduled", "sent"]


def test_settings_changed_after_scheduling_do_not_touch_scheduled_messages(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, smtp_url=smtp_server.url)
    _schedule(engine, settings, now_ms())
    with write_transaction(engine) as conn:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == chain.campaign_id)
            .values(track_clicks=False, track_opens=False)
        )
    _send(engine, settings)
    html = smtp_server.inbox.received[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "/c/" in html and "/o/" in html


def test_daily_cap_of_the_mailbox(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    emails = [f"r{n}@example.org" for n in range(5)]
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=smtp_server.url, emails=emails, daily_limit=2)
    assert _schedule(engine, settings, now_ms()) == 2


def test_suppressed_contacts_are_never_sent_to(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    with write_transaction(engine) as conn:
        chain = make_chain(
            conn, settings, smtp_url=smtp_server.url, emails=["a@example.org", "b@example.org"]
        )
        conn.execute(
            suppressions.insert().values(
                account_id=chain.account_id, email="b@example.org", reason="manual", created_at_ms=0
            )
        )
    _schedule(engine, settings, now_ms())
    _send(engine, settings)
    assert [m["To"] for m in smtp_server.inbox.received] == ["A <a@example.org>"]


def test_paused_campaigns_send_nothing(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, smtp_url=smtp_server.url)
    _schedule(engine, settings, now_ms())
    with write_transaction(engine) as conn:
        conn.execute(
            update(campaigns).where(campaigns.c.id == chain.campaign_id).values(status="paused")
        )
    assert _send(engine, settings) == 0
    with write_transaction(engine) as conn:
        conn.execute(
            update(campaigns).where(campaigns.c.id == chain.campaign_id).values(status="active")
        )
    assert _send(engine, settings) == 1


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_loses_only_the_one_in_flight(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    emails = [f"r{n}@example.org" for n in range(4)]
    with write_transaction(engine) as conn:
        make_chain(conn, settings, smtp_url=smtp_server.url, emails=emails)
    now = now_ms()
    _schedule(engine, settings, now)
    with write_transaction(engine) as conn:
        batch = claim(conn, now)
    assert len(batch) == 4
    # The worker sent the first, was handing the second to the server, then died.
    with write_transaction(engine) as conn:
        mark_sending(conn, [batch[0].id], [m.id for m in batch[1:]], now)
        conn.execute(update(messages).where(messages.c.id == batch[0].id).values(status="sent"))
        mark_sending(conn, [batch[1].id], [m.id for m in batch[2:]], now)
    # Another worker, before the lease runs out, leaves them alone.
    assert _send(engine, settings, now + 60_000) == 0
    with write_transaction(engine) as conn:
        assert reconcile(conn, now + 11 * 60_000) == 3
    rows = {str(r["id"]): r for r in _messages(engine)}
    assert rows[batch[1].id]["status"] == "failed"
    assert "never sent twice" in str(rows[batch[1].id]["error"])
    assert [rows[m.id]["status"] for m in batch[2:]] == ["scheduled", "scheduled"]
    # The untried ones go out; the sent one and the one in flight do not go again.
    assert _send(engine, settings, now + 12 * 60_000) == 2
    expected = sorted(emails[int(m.contact_id.removeprefix("ct_a"))] for m in batch[2:])
    received = sorted(m["To"].addresses[0].addr_spec for m in smtp_server.inbox.received)
    assert received == expected
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 4


def test_do_not_track_contacts_get_untracked_messages(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, smtp_url=smtp_server.url)
        conn.execute(
            update(contacts).where(contacts.c.id == chain.contact_ids[0]).values(do_not_track=True)
        )
    _schedule(engine, settings, now_ms())
    _send(engine, settings)
    html = smtp_server.inbox.received[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'href="https://example.com/x?a=1&amp;b=2"' in html
    assert "/o/" not in html and "/c/" not in html


def test_a_batch_larger_than_the_connections_records_every_outcome_once(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    # More messages than a worker has connections, so outcomes and intents share writes:
    # each message still ends with its own status, and only the sent ones make webhooks.
    emails = [f"r{n:02}@example.org" for n in range(3 * CONCURRENCY + 5)]
    smtp_server.inbox.refuse["r01@example.org"] = "550 5.1.1 No such user"
    smtp_server.inbox.refuse["r02@example.org"] = "451 4.3.0 Try later"
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, smtp_url=smtp_server.url, emails=emails)
        create_endpoint(
            conn,
            chain.account_id,
            "https://hooks.example.com/x",
            ["message.sent"],
            secret_box(settings),
        )
    _schedule(engine, settings, now_ms())
    with write_transaction(engine) as conn:  # suppressed once scheduled: never sent
        conn.execute(
            suppressions.insert().values(
                account_id=chain.account_id,
                email="r03@example.org",
                reason="manual",
                created_at_ms=0,
            )
        )
    assert _send(engine, settings) == len(emails)
    by_email = {
        emails[int(str(r["contact_id"]).removeprefix("ct_a"))]: r for r in _messages(engine)
    }
    assert by_email["r01@example.org"]["status"] == "failed"
    assert by_email["r02@example.org"]["status"] == "scheduled"
    assert by_email["r03@example.org"]["status"] == "cancelled"
    sent = {e for e, r in by_email.items() if r["status"] == "sent"}
    assert sent == set(emails) - {"r01@example.org", "r02@example.org", "r03@example.org"}
    received = [m["To"].addresses[0].addr_spec for m in smtp_server.inbox.received]
    assert sorted(received) == sorted(sent)  # each once
    with engine.connect() as conn:
        payloads = [r.payload for r in conn.execute(select(webhook_deliveries.c.payload))]
    assert sorted(p["data"]["email"] for p in payloads) == sorted(sent)
    assert {p["data"]["message_id"] for p in payloads} == {
        str(r["id"]) for r in by_email.values() if r["status"] == "sent"
    }
    # The bounce suppressed its address.
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(suppressions.c.email).where(suppressions.c.reason == "bounced")
            ).scalar_one()
            == "r01@example.org"
        )
