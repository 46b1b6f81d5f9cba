"""The two-minute demo of what comes back, end to end: a campaign sent through the built-in
outbox, "Reply as this contact" and "Bounce this message" pressed on the Outbox page (over
HTTP), the background process's INBOX reader run: the contact's sequence ends replied, or the
message is bounced and the address suppressed. No mail server anywhere."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select

from pixeltrail.platform.campaigns.status import EnrollmentStatus
from pixeltrail.receiving.reader import InboxReader, inbox_source
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import contacts, enrollments, inbound_messages, messages, suppressions

from .conftest import Site
from .test_outbox import OWNER, send_through_outbox


def _read_until(site: Site, done: Callable[[], bool]) -> None:
    """The reader as the background process runs it, until `done` (at most 30 seconds)."""
    reader = InboxReader(site.engine, inbox_source(site.settings), look_seconds=0.1)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not done():
            assert time.monotonic() < deadline, "the reader did not record the message"
            time.sleep(0.1)
    finally:
        reader.stop()


def _enrollment(site: Site, email: str) -> str:
    with site.engine.connect() as conn:
        return str(
            conn.execute(
                select(enrollments.c.status)
                .join(contacts, contacts.c.id == enrollments.c.contact_id)
                .where(contacts.c.email == email)
            ).scalar_one()
        )


def test_reply_as_this_contact_ends_the_sequence_replied(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(
        site, {"ann@example.com": "Ann", "bob@example.com": "Bob"}, "<p>Hi {{ first_name }}</p>"
    )
    message_id = sent.message_ids["ann@example.com"]
    pressed = owner.post(
        f"/outbox/{message_id}/reply",
        {"text": "Yes, let's talk on Tuesday."},
        token_from=f"/outbox/{message_id}",
    )
    assert pressed.status_code == 303
    _read_until(site, lambda: _enrollment(site, "ann@example.com") == EnrollmentStatus.REPLIED)
    assert _enrollment(site, "bob@example.com") == EnrollmentStatus.ACTIVE
    with site.engine.connect() as conn:
        (row,) = conn.execute(select(inbound_messages)).all()
    assert row.kind == "reply" and row.from_email == "ann@example.com"
    assert row.campaign_id == sent.campaign_id
    assert "Tuesday" in row.text


def test_bounce_this_message_bounces_it_and_suppresses_the_address(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(site, {"cy@example.com": "Cy"}, "<p>Hi</p>")
    message_id = sent.message_ids["cy@example.com"]
    pressed = owner.post(f"/outbox/{message_id}/bounce", {}, token_from=f"/outbox/{message_id}")
    assert pressed.status_code == 303

    def bounced() -> bool:
        with site.engine.connect() as conn:
            status = conn.execute(
                select(messages.c.status).where(messages.c.id == message_id)
            ).scalar_one()
        return bool(status == MessageStatus.BOUNCED)

    _read_until(site, bounced)
    assert _enrollment(site, "cy@example.com") == EnrollmentStatus.BOUNCED
    with site.engine.connect() as conn:
        reasons = conn.execute(
            select(suppressions.c.reason).where(suppressions.c.email == "cy@example.com")
        ).all()
    assert [r.reason for r in reasons] == ["bounced"]
    # The bounced message stays in the Outbox, saying so.
    page = owner.get(f"/outbox/{message_id}")
    assert page.status_code == 200 and "This message has bounced." in page.text
