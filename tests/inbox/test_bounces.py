"""A bounce read from the INBOX (real reports of real mail servers, their ids and addresses made
ours): the message is bounced with the server's words, the address suppressed, its sequences in
the account end `bounced` and what was queued for it is cancelled. A delay changes nothing."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from pixeltrail.config import Settings
from pixeltrail.platform.contacts.suppressions import suppress
from pixeltrail.platform.ids import now_ms
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import campaign_steps, campaigns, enrollments, suppressions

from ..chain import Chain, make_chain
from .conftest import inbound_row, message_rows, record, sample, schedule, send, sent_email

ADA = "ada@example.org"


def _sent(engine: Engine, settings: Settings) -> tuple[Chain, str]:
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings)
        make_chain(conn, settings, prefix="b")  # ada@example.org in another account too
    now = now_ms()
    schedule(engine, settings, now)
    send(engine, settings, now)
    (message,) = message_rows(engine, chain.campaign_id)
    return chain, str(message["id"])


def _second_campaign(engine: Engine, settings: Settings, chain: Chain) -> str:
    """Ada in another campaign of the account, her first message scheduled, not yet sent."""
    with write_transaction(engine) as conn:
        conn.execute(
            insert(campaigns).values(
                id="cmp_second",
                account_id=chain.account_id,
                name="Second",
                mailbox_id=chain.mailbox_id,
                status="active",
                schedule={},
                track_opens=True,
                track_clicks=False,
                track_text_links=False,
                tracking_domain_id=None,
                start_at_ms=None,
                created_at_ms=0,
                updated_at_ms=0,
            )
        )
        conn.execute(
            insert(campaign_steps).values(
                id="stp_second",
                campaign_id="cmp_second",
                position=1,
                subject="Another",
                html="<p>x</p>",
                text=None,
                delay_days=0,
            )
        )
        conn.execute(
            insert(enrollments).values(
                campaign_id="cmp_second",
                contact_id=chain.contact_ids[0],
                status="active",
                next_step=1,
                added_at_ms=0,
            )
        )
    assert schedule(engine, settings, now_ms()) == 1
    return "cmp_second"


def _statuses(engine: Engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(enrollments.c.campaign_id, enrollments.c.contact_id, enrollments.c.status)
        )
        return {(r.campaign_id, r.contact_id): r.status for r in rows}


def _suppressed(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(suppressions.c.account_id, suppressions.c.email, suppressions.c.reason)
        )
        return sorted(tuple(r) for r in rows)


def test_a_bounce_naming_our_message_bounces_it_and_the_address(
    engine: Engine, settings: Settings
) -> None:
    chain, message_id = _sent(engine, settings)
    second = _second_campaign(engine, settings, chain)
    ours = str(sent_email(settings, message_id)["Message-ID"])
    raw = sample(
        "rfc3464-01.eml",
        {
            "<E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org>": ours,
            "userunknown@bouncehammer.jp": ADA,
        },
    )
    row = inbound_row(engine, str(record(engine, raw, uid=1)))
    assert row["kind"] == "bounce"
    assert (row["message_id"], row["contact_id"], row["matched_by"]) == (
        message_id,
        chain.contact_ids[0],
        "in_reply_to",
    )
    assert row["status_code"] == "5.1.1"
    assert "User Unknown" in row["diagnostic"]

    (message,) = message_rows(engine, chain.campaign_id)
    assert message["status"] == "bounced"
    assert message["error"].startswith("bounced: 5.1.1") and "User Unknown" in message["error"]
    (queued,) = message_rows(engine, second)
    assert (queued["status"], queued["error"]) == ("cancelled", "not sent: the address bounced")
    assert _suppressed(engine) == [(chain.account_id, ADA, "bounced")]
    statuses = _statuses(engine)
    assert statuses[chain.campaign_id, chain.contact_ids[0]] == "bounced"
    assert statuses[second, chain.contact_ids[0]] == "bounced"
    assert statuses["cmp_b", "ct_b0"] == "finished"  # the same address in another account


def test_a_bounce_without_our_id_matches_the_failed_recipient(
    engine: Engine, settings: Settings
) -> None:
    chain, message_id = _sent(engine, settings)
    # Mail servers write the address as they were given it, or in their own case.
    raw = sample("lhost-postfix-02.eml", {"userunknown@example.co.jp": "Ada@EXAMPLE.org"})
    row = inbound_row(engine, str(record(engine, raw, uid=3)))
    assert (row["message_id"], row["matched_by"]) == (message_id, "recipient")
    assert row["status_code"] == "5.1.1"
    assert message_rows(engine, chain.campaign_id)[0]["status"] == "bounced"
    assert _suppressed(engine) == [(chain.account_id, ADA, "bounced")]
    # The same report again under another UID (a copy in the INBOX) changes nothing more.
    assert record(engine, raw, uid=4) is not None
    assert _suppressed(engine) == [(chain.account_id, ADA, "bounced")]


def test_a_bounce_for_an_address_never_written_to_suppresses_nothing(
    engine: Engine, settings: Settings
) -> None:
    chain, _ = _sent(engine, settings)
    # A forged or stray report: its recipient was never sent anything by this mailbox.
    raw = sample("lhost-postfix-02.eml", {"userunknown@example.co.jp": "ceo@acme.example"})
    row = inbound_row(engine, str(record(engine, raw, uid=1)))
    assert row["kind"] == "bounce"
    assert row["message_id"] is None
    assert _suppressed(engine) == []
    assert _statuses(engine)[chain.campaign_id, chain.contact_ids[0]] == "active"
    assert message_rows(engine, chain.campaign_id)[0]["status"] == "sent"


def test_a_delay_changes_nothing(engine: Engine, settings: Settings) -> None:
    chain, message_id = _sent(engine, settings)
    ours = str(sent_email(settings, message_id)["Message-ID"])
    raw = sample(
        "lhost-gmail-06.eml",
        {"<A4D6026C-0699-460F-9F86-C2A5CB4BE6CE@gmail.com>": ours, "kijitora@example.jp": ADA},
    )
    row = inbound_row(engine, str(record(engine, raw, uid=1)))
    assert (row["kind"], row["message_id"]) == ("delayed", message_id)
    assert message_rows(engine, chain.campaign_id)[0]["status"] == "sent"
    assert _suppressed(engine) == []
    assert _statuses(engine)[chain.campaign_id, chain.contact_ids[0]] == "active"


def test_an_unsubscribe_stays_the_reason_after_a_bounce(engine: Engine, settings: Settings) -> None:
    chain, _ = _sent(engine, settings)
    with write_transaction(engine) as conn:
        suppress(conn, chain.account_id, ADA, "unsubscribed")
    raw = sample("lhost-postfix-02.eml", {"userunknown@example.co.jp": ADA})
    record(engine, raw, uid=1)
    assert _suppressed(engine) == [(chain.account_id, ADA, "unsubscribed")]
    assert message_rows(engine, chain.campaign_id)[0]["status"] == "bounced"


def test_other_and_unreadable_messages_are_recorded_only(
    engine: Engine, settings: Settings
) -> None:
    chain, _ = _sent(engine, settings)
    newsletter = b"From: news@shop.example\r\nSubject: Sale\r\n\r\nBuy now.\r\n"
    other = inbound_row(engine, str(record(engine, newsletter, uid=1)))
    assert (other["kind"], other["message_id"], other["from_email"]) == (
        "other",
        None,
        "news@shop.example",
    )
    empty = inbound_row(engine, str(record(engine, b"  \r\n", uid=2)))
    assert (empty["kind"], empty["subject"], empty["from_email"]) == ("unreadable", "", "")
    assert _statuses(engine)[chain.campaign_id, chain.contact_ids[0]] == "active"
    assert _suppressed(engine) == []


def test_the_scheduler_ends_a_suppressed_contacts_sequence_by_the_reason(
    engine: Engine, settings: Settings
) -> None:
    emails = ["b@example.org", "u@example.org", "m@example.org", "ok@example.org"]
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, emails=emails)
        for email, reason in zip(emails, ("bounced", "unsubscribed", "manual"), strict=False):
            suppress(conn, chain.account_id, email, reason)
    assert schedule(engine, settings, now_ms()) == 1  # ok@example.org only
    statuses = _statuses(engine)
    assert [statuses[chain.campaign_id, contact] for contact in chain.contact_ids] == [
        "bounced",
        "unsubscribed",
        "stopped",
        "active",
    ]
