"""The Outbox's "Reply as this contact" and "Bounce this message" in Chromium: the forms post
under the page's policy, the page says where the message went, and the INBOX holds a reply
with the text typed and a bounce."""

from __future__ import annotations

from typing import Any

from pixeltrail.inbound import InboundKind, classify_message
from pixeltrail.platform.mail.local_inbox import inbox_directory, uids

from .conftest import Site, sign_up_in_browser
from .test_outbox import send_through_outbox


def test_the_buttons_put_a_reply_and_a_bounce_in_the_inbox(sqlite_site: Site, browser: Any) -> None:
    site = sqlite_site
    page = browser.new_page(base_url=site.url)
    sign_up_in_browser(page)
    sent = send_through_outbox(site, {"ann@example.com": "Ann"}, "<p>Hi {{ first_name }}</p>")
    message_id = sent.message_ids["ann@example.com"]
    page.goto(f"/outbox/{message_id}")
    page.fill('textarea[name="text"]', "Tuesday works <script>for me</script>")
    page.click('button:has-text("Reply as this contact")')
    page.wait_for_url(f"**/outbox/{message_id}")
    flash = page.locator(".flash").inner_text()
    assert "A reply from ann@example.com was put in the mailbox's inbox" in flash
    assert "read within a minute" in flash
    page.click('button:has-text("Bounce this message")')
    page.wait_for_url(f"**/outbox/{message_id}")
    assert "A bounce for ann@example.com" in page.locator(".flash").inner_text()
    page.close()
    (mailbox_id,) = [p.name for p in (site.settings.data_dir / "inbox").iterdir()]
    folder = inbox_directory(site.settings.data_dir, mailbox_id)
    assert uids(folder) == [1, 2]
    reply = classify_message((folder / "1.eml").read_bytes())
    assert reply.kind == InboundKind.REPLY
    assert reply.text.startswith("Tuesday works <script>for me</script>")
    assert classify_message((folder / "2.eml").read_bytes()).kind == InboundKind.BOUNCE
