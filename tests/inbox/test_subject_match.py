"""The weaker match: a reply without threading headers counts only when its sender is a contact
enrolled in a campaign of the mailbox and its subject is a reply to the subject they were sent."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert, select

from pixeltrail.config import Settings
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.inbox.matches import reply_topic
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import enrollments, mailboxes

from ..chain import Chain, make_chain
from .conftest import inbound_row, message_rows, record, reply_to, schedule, send, sent_email

NO_THREAD = {"In-Reply-To": "", "References": ""}


@pytest.mark.parametrize(
    ("subject", "topic"),
    [
        ("Re: Hello Ada", "hello ada"),
        ("RE: AW: Re[2]:  Hello   Ada ", "hello ada"),
        ("Réf : Hello Ada", "hello ada"),
        ("Sv:Hello Ada", "hello ada"),
        ("Antw: Hello Ada", "hello ada"),
        ("回复：Hello Ada", "hello ada"),
        ("Hello Ada", None),
        ("Fwd: Hello Ada", None),
        ("Regarding: Hello Ada", None),
        ("", None),
    ],
)
def test_reply_prefixes(subject: str, topic: str | None) -> None:
    assert reply_topic(subject) == topic


def _sent(engine: Engine, settings: Settings) -> tuple[Chain, dict[str, str]]:
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, emails=["ada@example.org", "bob@example.org"])
    now = now_ms()
    schedule(engine, settings, now)
    send(engine, settings, now)
    by_contact = {
        str(m["contact_id"]): str(m["id"]) for m in message_rows(engine, chain.campaign_id)
    }
    return chain, by_contact


def _enrollments(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(enrollments.c.contact_id, enrollments.c.status))
        return {r.contact_id: r.status for r in rows}


def test_an_enrolled_contacts_re_of_their_subject_matches(
    engine: Engine, settings: Settings
) -> None:
    chain, sent = _sent(engine, settings)
    ada = chain.contact_ids[0]
    original = sent_email(settings, sent[ada])
    raw = reply_to(original, Subject="AW: RE: hello ada", **NO_THREAD)
    row = inbound_row(engine, str(record(engine, raw, uid=1)))
    assert (row["kind"], row["message_id"], row["matched_by"]) == ("reply", sent[ada], "subject")
    assert _enrollments(engine)[ada] == "replied"


@pytest.mark.parametrize(
    ("sender", "subject"),
    [
        ("stranger@example.net", "Re: Hello Ada"),  # not a contact
        ("bob@example.org", "Re: Hello Ada"),  # a contact, but Bob was sent "Hello Bob"
        ("ada@example.org", "Re: Hello"),  # not the subject she was sent
        ("ada@example.org", "Hello Ada"),  # no reply prefix
    ],
)
def test_no_match_without_the_sender_and_the_subject(
    engine: Engine, settings: Settings, sender: str, subject: str
) -> None:
    chain, sent = _sent(engine, settings)
    original = sent_email(settings, sent[chain.contact_ids[0]])
    raw = reply_to(original, Subject=subject, From=sender, **NO_THREAD)
    row = inbound_row(engine, str(record(engine, raw, uid=1)))
    assert (row["message_id"], row["matched_by"]) == (None, None)
    assert set(_enrollments(engine).values()) == {"active"}


def test_a_subject_match_counts_only_in_the_campaigns_mailbox(
    engine: Engine, settings: Settings
) -> None:
    chain, sent = _sent(engine, settings)
    with write_transaction(engine) as conn:
        conn.execute(
            insert(mailboxes).values(
                id="mbx_support",
                account_id=chain.account_id,
                name="Support",
                from_email="help@acme.example",
                from_name="Help",
                smtp_url_encrypted=None,
                daily_limit=100,
                created_at_ms=0,
            )
        )
    original = sent_email(settings, sent[chain.contact_ids[0]])
    raw = reply_to(original, **NO_THREAD)
    row_id = record(engine, raw, uid=1, mailbox_id="mbx_support", account_id=chain.account_id)
    row = inbound_row(engine, str(row_id))
    assert row["message_id"] is None
    assert set(_enrollments(engine).values()) == {"active"}
