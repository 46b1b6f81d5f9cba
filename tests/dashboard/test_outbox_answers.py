"""The Outbox's "Reply as this contact" and "Bounce this message": each puts a realistic message
in the mailbox's local INBOX (a reply naming the message sent, a DSN for it) that the inbound
classifier reads as a reply or a bounce of that message; only for this account's messages."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import update

from pixeltrail.inbound import InboundKind, classify_message, our_message_id
from pixeltrail.platform.accounts.users import user_by_email
from pixeltrail.platform.mail.local_inbox import inbox_directory, uids
from pixeltrail.store.db import write_transaction
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import messages

from ..reports.conftest import make_campaign
from .conftest import Site
from .tenants import another_account
from .test_outbox import OWNER, send_through_outbox
from .test_roles import _join

_MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.M)


def _inbox(site: Site, message_id: str) -> Path:
    with site.engine.connect() as conn:
        mailbox_id = conn.execute(
            messages.select()
            .with_only_columns(messages.c.mailbox_id)
            .where(messages.c.id == message_id)
        ).scalar_one()
    return inbox_directory(site.settings.data_dir, mailbox_id)


def _as_sent(site: Site, message_id: str) -> bytes:
    return (site.settings.data_dir / "outbox" / f"{message_id}.eml").read_bytes()


def _only_message(folder: Path) -> bytes:
    assert uids(folder) == [1]
    return (folder / "1.eml").read_bytes()


def test_reply_as_this_contact_writes_a_reply_to_the_message_sent(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(site, {"ann@example.com": "Ann"}, "<p>Hi {{ first_name }}</p>")
    message_id = sent.message_ids["ann@example.com"]
    page = owner.get(f"/outbox/{message_id}")
    assert "Reply as this contact" in page.text and "Bounce this message" in page.text
    answer = owner.post(
        f"/outbox/{message_id}/reply",
        {"text": "Sounds good, grüße!\r\nBcc: everyone@example.com"},
        token_from=f"/outbox/{message_id}",
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/outbox/{message_id}"
    shown = owner.get(answer.headers["location"]).text
    assert "put in the mailbox&#39;s inbox" in shown and "read within a minute" in shown
    raw = _only_message(_inbox(site, message_id))
    found = _MESSAGE_ID.search(_as_sent(site, message_id))
    assert found is not None
    reply = classify_message(raw)
    assert reply.kind == InboundKind.REPLY
    assert reply.sender == "ann@example.com"
    assert reply.subject == "Re: Hello Ann"
    assert reply.in_reply_to == (found.group(1).decode()[1:-1],)
    assert our_message_id(reply.in_reply_to[0]) == message_id
    text = reply.text.replace("\r\n", "\n")
    assert text.startswith("Sounds good, grüße!\nBcc: everyone@example.com\n\nOn ")
    assert "owner@acme.example wrote:\n> Hi Ann" in text  # the original, quoted
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["To"] == "owner@acme.example"
    assert parsed["Bcc"] is None  # typed text stays text, never a header


def test_bounce_this_message_writes_a_delivery_status_notification(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(site, {"bob@example.com": "Bob"}, "<p>Hi</p>")
    message_id = sent.message_ids["bob@example.com"]
    answer = owner.post(f"/outbox/{message_id}/bounce", {}, token_from=f"/outbox/{message_id}")
    assert answer.status_code == 303
    assert "A bounce for bob@example.com" in owner.get(answer.headers["location"]).text
    raw = _only_message(_inbox(site, message_id))
    bounce = classify_message(raw)
    assert bounce.kind == InboundKind.BOUNCE, bounce.reason
    (failed,) = bounce.recipients
    assert failed.address == "bob@example.com"
    assert failed.action == "failed" and failed.status == "5.1.1"
    assert failed.diagnostic is not None and "550 5.1.1 user unknown" in failed.diagnostic
    assert bounce.original_message_id is not None
    assert our_message_id(bounce.original_message_id) == message_id
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    assert parsed["From"].addresses[0].username == "MAILER-DAEMON"
    assert [p.get_content_type() for p in parsed.iter_parts()] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    # Pressed twice, twice in the INBOX, each with its own UID.
    owner.post(f"/outbox/{message_id}/bounce", {}, token_from=f"/outbox/{message_id}")
    assert uids(_inbox(site, message_id)) == [1, 2]


def test_a_member_may_answer_too(site: Site) -> None:
    owner = site.sign_up(OWNER)
    member = _join(site, owner, "mia@acme.example")
    sent = send_through_outbox(site, {"cy@example.com": "Cy"}, "<p>Hi</p>")
    message_id = sent.message_ids["cy@example.com"]
    answer = member.post(
        f"/outbox/{message_id}/reply", {"text": ""}, token_from=f"/outbox/{message_id}"
    )
    assert answer.status_code == 303
    reply = classify_message(_only_message(_inbox(site, message_id)))
    assert reply.kind == InboundKind.REPLY
    assert reply.text.startswith("Thanks for your message")  # an empty text: the default


def test_a_reply_too_long_is_refused_on_the_page_and_nothing_written(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(site, {"dee@example.com": "Dee"}, "<p>Hi</p>")
    message_id = sent.message_ids["dee@example.com"]
    answer = owner.post(
        f"/outbox/{message_id}/reply",
        {"text": "<b>x</b>" * 2000},
        token_from=f"/outbox/{message_id}",
    )
    assert answer.status_code == 422
    assert "longer than 10000 characters" in answer.text
    assert "&lt;b&gt;x&lt;/b&gt;" in answer.text and "<b>x</b>" not in answer.text
    assert uids(_inbox(site, message_id)) == []


@pytest.mark.parametrize("action", ["reply", "bounce"])
def test_another_accounts_message_is_not_found_and_nothing_written(site: Site, action: str) -> None:
    site.sign_up(OWNER)
    mallory = another_account(site)
    sent = send_through_outbox(site, {"eve@example.com": "Eve"}, "<p>Hi</p>")
    message_id = sent.message_ids["eve@example.com"]
    token = mallory.csrf("/outbox")
    answer = mallory.client.post(
        f"/outbox/{message_id}/{action}",
        data={"csrf_token": token, "text": "hi"},
        headers={"Origin": mallory.url},
    )
    assert answer.status_code == 404
    assert "eve@example.com" not in answer.text
    # Ids that name no message, or try to name a file, are not found either.
    for bad in ("AAAAAAAAAAAAAAAA", "..%2F..%2Fkeyfile"):
        answer = mallory.client.post(
            f"/outbox/{bad}/{action}", data={"csrf_token": token}, headers={"Origin": mallory.url}
        )
        assert answer.status_code == 404
    assert not (site.settings.data_dir / "inbox").exists()


def test_each_account_answers_only_its_own_outbox_messages(site: Site) -> None:
    owner = site.sign_up(OWNER)
    mallory = another_account(site)
    theirs = make_campaign(site.engine, _account_of(site, "mallory@other.example"), ["zed"])
    zed = theirs.message["zed"]
    (site.settings.data_dir / "outbox").mkdir(parents=True, exist_ok=True)
    (site.settings.data_dir / "outbox" / f"{zed}.eml").write_bytes(
        f"Message-ID: <{zed}@other.example>\r\nFrom: boss@other.example\r\n"
        "To: zed@example.com\r\nSubject: Their secret\r\n\r\nsecret\r\n".encode()
    )
    answer = owner.post(f"/outbox/{zed}/bounce", {}, token_from="/outbox")
    assert answer.status_code == 404 and "Their secret" not in answer.text
    assert not (site.settings.data_dir / "inbox").exists()
    assert mallory.post(f"/outbox/{zed}/bounce", {}, token_from="/outbox").status_code == 303
    bounce = classify_message(_only_message(_inbox(site, zed)))
    assert bounce.kind == InboundKind.BOUNCE
    assert [r.address for r in bounce.recipients] == ["zed@example.com"]


def test_answers_need_the_forms_token_and_a_post(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(site, {"fay@example.com": "Fay"}, "<p>Hi</p>")
    message_id = sent.message_ids["fay@example.com"]
    assert owner.get(f"/outbox/{message_id}/bounce").status_code == 405
    forged = owner.client.post(
        f"/outbox/{message_id}/bounce", data={"csrf_token": "x" * 32}, headers={"Origin": owner.url}
    )
    assert forged.status_code == 403
    elsewhere = owner.client.post(
        f"/outbox/{message_id}/bounce",
        data={"csrf_token": owner.csrf(f"/outbox/{message_id}")},
        headers={"Origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403
    assert uids(_inbox(site, message_id)) == []


def _account_of(site: Site, email: str) -> str:
    with site.engine.connect() as conn:
        user = user_by_email(conn, email)
    assert user is not None
    return user.account_id


def test_a_bounced_message_stays_in_the_outbox(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(site, {"gus@example.com": "Gus"}, "<p>Hi</p>")
    message_id = sent.message_ids["gus@example.com"]
    with write_transaction(site.engine) as conn:
        conn.execute(
            update(messages).where(messages.c.id == message_id).values(status=MessageStatus.BOUNCED)
        )
    assert "gus@example.com" in owner.get("/outbox").text
    page = owner.get(f"/outbox/{message_id}")
    assert page.status_code == 200 and "This message has bounced." in page.text
