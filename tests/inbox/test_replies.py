"""A reply read from the INBOX ends the contact's sequence when the campaign stops on replies: no
later step goes out, a step already scheduled is cancelled; an auto-reply changes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select, update

from pixeltrail.config import Settings
from pixeltrail.platform.ids import now_ms
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import campaigns, enrollments, inbound_messages

from ..chain import Chain, make_chain
from .conftest import (
    inbound_row,
    message_rows,
    record,
    reply_to,
    sample,
    schedule,
    send,
    sent_email,
)

DAY_MS = 86_400_000
TWO_STEPS = [("Hello {{ first_name }}", "<p>Hi</p>", 0), ("Still there?", "<p>Bump</p>", 2)]


def _sent_chain(engine: Engine, settings: Settings, **options: object) -> tuple[Chain, str, int]:
    """A campaign of two steps whose first went out to ada@example.org; its message id."""
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, steps=TWO_STEPS, **options)  # type: ignore[arg-type]
    now = now_ms()
    assert schedule(engine, settings, now) == 1
    assert send(engine, settings, now) == 1
    (first,) = message_rows(engine, chain.campaign_id)
    assert first["status"] == "sent"
    return chain, str(first["id"]), now


def _enrollment(engine: Engine, chain: Chain, contact: int = 0) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(enrollments.c.status).where(
                    enrollments.c.campaign_id == chain.campaign_id,
                    enrollments.c.contact_id == chain.contact_ids[contact],
                )
            ).scalar_one()
        )


def test_a_reply_ends_the_sequence_and_no_later_step_is_scheduled(
    engine: Engine, settings: Settings
) -> None:
    chain, message_id, now = _sent_chain(engine, settings)
    original = sent_email(settings, message_id)
    row_id = record(engine, reply_to(original, "Yes, let us talk.\n\n> Hi"), uid=1)
    assert row_id is not None

    row = inbound_row(engine, row_id)
    assert row["kind"] == "reply"
    assert (row["message_id"], row["campaign_id"], row["contact_id"]) == (
        message_id,
        chain.campaign_id,
        chain.contact_ids[0],
    )
    assert row["matched_by"] == "in_reply_to"
    assert row["from_email"] == "ada@example.org"
    assert row["subject"] == "Re: Hello Ada"
    assert row["text"].startswith("Yes, let us talk.")
    assert (row["uid_validity"], row["uid"], row["received_at_ms"]) == (7, 1, 1_001)
    assert _enrollment(engine, chain) == "replied"
    # The second step would be due two days after the first: it never comes.
    assert schedule(engine, settings, now + 3 * DAY_MS) == 0
    assert len(message_rows(engine, chain.campaign_id)) == 1


def test_a_step_already_scheduled_is_cancelled_by_the_reply(
    engine: Engine, settings: Settings
) -> None:
    steps = [("Hello", "<p>Hi</p>", 0), ("Next", "<p>Next</p>", 0)]
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, steps=steps)
    now = now_ms()
    schedule(engine, settings, now)
    send(engine, settings, now)
    assert schedule(engine, settings, now + 1) == 1
    first, second = message_rows(engine, chain.campaign_id)
    assert (first["status"], second["status"]) == ("sent", "scheduled")

    record(engine, reply_to(sent_email(settings, str(first["id"]))), uid=1)
    first, second = message_rows(engine, chain.campaign_id)
    assert second["status"] == "cancelled"
    assert second["error"] == "not sent: the contact replied"
    assert send(engine, settings, now + 60_000) == 0
    assert not (settings.data_dir / "outbox" / f"{second['id']}.eml").exists()


def test_the_same_uid_twice_is_recorded_once(engine: Engine, settings: Settings) -> None:
    _, message_id, _ = _sent_chain(engine, settings)
    raw = reply_to(sent_email(settings, message_id))
    assert record(engine, raw, uid=5) is not None
    assert record(engine, raw, uid=5) is None
    assert record(engine, raw, uid=6) is not None  # another message of the INBOX
    with engine.connect() as conn:
        uids = conn.execute(select(inbound_messages.c.uid).order_by(inbound_messages.c.uid))
        assert list(uids.scalars()) == [5, 6]


def test_with_stop_on_reply_off_the_sequence_goes_on(engine: Engine, settings: Settings) -> None:
    chain, message_id, now = _sent_chain(engine, settings)
    with write_transaction(engine) as conn:
        conn.execute(update(campaigns).values(stop_on_reply=False))
    row_id = record(engine, reply_to(sent_email(settings, message_id)), uid=1)
    assert row_id is not None
    assert inbound_row(engine, row_id)["message_id"] == message_id  # recorded all the same
    assert _enrollment(engine, chain) == "active"
    assert schedule(engine, settings, now + 2 * DAY_MS) == 1


def test_references_match_when_in_reply_to_names_another_message(
    engine: Engine, settings: Settings
) -> None:
    chain, message_id, _ = _sent_chain(engine, settings)
    original = sent_email(settings, message_id)
    ours = str(original["Message-ID"])
    raw = reply_to(
        original,
        **{"In-Reply-To": "<colleague-42@mail.example.org>", "References": f"{ours} <x@y.org>"},
    )
    row = inbound_row(engine, str(record(engine, raw, uid=1)))
    assert (row["message_id"], row["matched_by"]) == (message_id, "references")
    assert _enrollment(engine, chain) == "replied"


def test_another_accounts_message_id_matches_nothing(engine: Engine, settings: Settings) -> None:
    with write_transaction(engine) as conn:
        mine = make_chain(conn, settings, steps=TWO_STEPS, prefix="a")
        theirs = make_chain(conn, settings, steps=TWO_STEPS, prefix="b", emails=["bob@example.org"])
    now = now_ms()
    schedule(engine, settings, now)
    send(engine, settings, now)
    (their_message,) = message_rows(engine, theirs.campaign_id)
    # A reply to the other account's message arrives in this account's mailbox.
    raw = reply_to(sent_email(settings, str(their_message["id"])))
    row = inbound_row(engine, str(record(engine, raw, uid=1, mailbox_id="mbx_a")))
    assert row["kind"] == "reply"
    assert (row["message_id"], row["campaign_id"], row["matched_by"]) == (None, None, None)
    assert _enrollment(engine, theirs) == "active"
    assert _enrollment(engine, mine) == "active"


def test_an_auto_reply_is_recorded_and_the_sequence_goes_on(
    engine: Engine, settings: Settings
) -> None:
    chain, message_id, now = _sent_chain(engine, settings)
    ours = str(sent_email(settings, message_id)["Message-ID"])
    raw = sample("rfc3834-03.eml", {"<25203A4E-F90F-4A14-BF51-3E7B9D39BE8E@libsisimai.org>": ours})
    row = inbound_row(engine, str(record(engine, raw, uid=1)))
    assert row["kind"] == "auto_reply"
    assert (row["message_id"], row["matched_by"]) == (message_id, "in_reply_to")
    assert _enrollment(engine, chain) == "active"
    assert schedule(engine, settings, now + 2 * DAY_MS) == 1


def test_hostile_text_is_stored_cleaned(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    _, message_id, _ = _sent_chain(engine, settings)
    original = sent_email(settings, message_id)
    raw = reply_to(original, "a\x00b " + "x" * 10_000, Subject="Re: " + "\x00" * 3 + "y" * 5000)
    row = inbound_row(engine, str(record(engine, raw, uid=1)))
    assert "\x00" not in row["text"] and "\x00" not in row["subject"]
    assert len(row["text"].encode()) <= 2048
    assert row["message_id"] == message_id


def test_bytes_that_are_no_text_are_stored_readable(engine: Engine, settings: Settings) -> None:
    _, message_id, _ = _sent_chain(engine, settings)
    ours = str(sent_email(settings, message_id)["Message-ID"]).encode()
    raw = (
        b"From: ada@example.org\r\nSubject: Re: \xff\xfe Hello \xed\xa0\x80\r\n"
        b"In-Reply-To: " + ours + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nOk \xff\x00\xed\xa0\x80 fine\r\n"
    )
    row = inbound_row(engine, str(record(engine, raw, uid=1)))
    assert (row["kind"], row["message_id"]) == ("reply", message_id)
    assert "Hello" in row["subject"] and "fine" in row["text"]
    for value in (row["subject"], row["text"]):
        value.encode("utf-8")  # no lone surrogate
        assert "\x00" not in value
