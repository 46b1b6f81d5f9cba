"""Reports of what the INBOX reader records (record_inbound on real messages): a reply, a bounce
and an out-of-office to a sent campaign, and the step that follows, on SQLite and PostgreSQL."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.reports.contacts import contacts_page
from pixeltrail.platform.reports.steps import step_report
from pixeltrail.platform.reports.summary import campaign_summary
from pixeltrail.store.db import write_transaction

from ..chain import make_chain
from ..inbox.conftest import (
    engine,
    message_rows,
    record,
    reply_to,
    sample,
    schedule,
    send,
    sent_email,
    settings,
)

__all__ = ["engine", "settings"]

DAY = 86_400_000
EMAILS = ("ada@example.org", "bea@example.org", "cal@example.org")
STEPS = (("Hello {{ first_name }}", "<p>Hi</p>", 0), ("Again", "<p>Again</p>", 1))


def _out_of_office(original: EmailMessage) -> bytes:
    answer = EmailMessage()
    answer["From"] = str(original["To"])
    answer["To"] = str(original["From"])
    answer["Subject"] = f"Out of office: {original['Subject']}"
    answer["Auto-Submitted"] = "auto-replied"
    answer["In-Reply-To"] = str(original["Message-ID"])
    answer.set_content("I am away until Monday.")
    return answer.as_bytes()


def test_replies_bounces_and_auto_replies_recorded_from_the_inbox(
    engine: Engine, settings: Settings
) -> None:
    with write_transaction(engine) as conn:
        chain = make_chain(conn, settings, emails=EMAILS, steps=STEPS)
    start = now_ms()
    schedule(engine, settings, start)
    assert send(engine, settings, start) == 3
    sent = {str(m["contact_id"]): str(m["id"]) for m in message_rows(engine, chain.campaign_id)}
    ada, bea, cal = (sent_email(settings, sent[c]) for c in chain.contact_ids)
    record(engine, reply_to(ada, "Yes <b>please</b>"), uid=1)
    bounce = {
        "<E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org>": str(bea["Message-ID"]),
        "userunknown@bouncehammer.jp": "bea@example.org",
    }
    record(engine, sample("rfc3464-01.eml", bounce), uid=2)
    record(engine, _out_of_office(cal), uid=3)

    later = start + 2 * DAY  # step 2 is due: it goes to cal alone
    schedule(engine, settings, later)
    assert send(engine, settings, later) == 1

    account, campaign = chain.account_id, chain.campaign_id
    with engine.connect() as conn:
        summary = campaign_summary(conn, account, campaign)
        rows, _ = contacts_page(conn, account, campaign)
        steps = step_report(conn, account, campaign)
    assert (summary["sent"], summary["recipients"]) == (4, 3)  # bea's bounced message went out
    assert (summary["replied"], summary["read"], summary["bounced"]) == (1, 1, 1)
    by_email = {row["email"]: row for row in rows}
    ada_row = by_email["ada@example.org"]
    assert (ada_row["reply_count"], ada_row["read_by_reply"], ada_row["sequence_status"]) == (
        1,
        True,  # no pixel loaded: the reply proves it was read
        "replied",
    )
    assert ada_row["replies"][0]["subject"] == "Re: Hello Ada"
    assert ada_row["replies"][0]["text"].startswith("Yes <b>please</b>")
    bea_row = by_email["bea@example.org"]
    assert (bea_row["sequence_status"], bea_row["suppressed"]) == ("bounced", "bounced")
    cal_row = by_email["cal@example.org"]  # away: no reply, the sequence goes on
    assert (cal_row["reply_count"], cal_row["sequence_status"]) == (0, "active")
    assert [(s["step"], s["sent"], s["replied"], s["bounced"]) for s in steps] == [
        (1, 3, 1, 1),
        (2, 1, 0, 0),
    ]
