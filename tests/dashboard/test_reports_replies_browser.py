"""The Report tab in Chromium: a reply read from the INBOX shows up without a reload, its text
shown as text (a script in it never runs), the reply rate going up with it."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from playwright.sync_api import expect

from pixeltrail.inbound.classify import classify_message
from pixeltrail.platform.inbox.recording import record_inbound
from pixeltrail.store.db import write_transaction

from ..reports.conftest import SENT, H
from ..reports.replies_story import SCRIPT
from .conftest import Site
from .test_reports import _owner_with_story


def _reply_from_ann(message_id: str) -> bytes:
    reply = EmailMessage()
    reply["From"] = "Ann <ann@example.com>"
    reply["To"] = "Me <me@acme.example>"
    reply["Subject"] = "Re: Spring"
    reply["Message-ID"] = "<reply-1@example.com>"
    reply["In-Reply-To"] = f"<{message_id}@acme.example>"
    reply.set_content(f"Yes, let's talk.\n{SCRIPT}\n\n> hi\n")
    return bytes(reply)


def test_a_reply_appears_in_the_report_as_text(sqlite_site: Site, browser: Any) -> None:
    owner, campaign = _owner_with_story(sqlite_site)
    context = browser.new_context(base_url=sqlite_site.url)
    try:
        context.add_cookies(
            [
                {"name": c.name, "value": c.value, "url": sqlite_site.url}
                for c in owner.client.cookies.jar
            ]
        )
        page = context.new_page()
        refused: list[str] = []
        page.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"/campaigns/{campaign.id}/report")
        title = page.title()
        replied = page.locator("#stat-replied .value")
        expect(replied).to_have_text("0")
        inbound = classify_message(_reply_from_ann(campaign.message["ann"]))
        with write_transaction(sqlite_site.engine) as conn:
            recorded = record_inbound(
                conn, campaign.account_id, campaign.mailbox_id, 1, 1, inbound,
                SENT + 6 * H, SENT + 6 * H,
            )  # fmt: skip
        assert recorded is not None
        expect(replied).to_have_text("1", timeout=20_000)  # the live section refreshed
        ann = page.locator("table.report-contacts tr", has_text="ann@example.com")
        reply = ann.locator("li.reply")
        expect(reply).to_have_count(1)
        expect(reply.locator("strong")).to_have_text("Re: Spring")
        expect(reply.locator(".reply-text")).to_contain_text(SCRIPT)  # shown, as text
        expect(reply).to_contain_text("2026-03-29 06:00")  # 04:00 UTC in Paris
        expect(ann.locator(".badge.sequence")).to_have_count(0)  # inserted rows: not enrolled
        steps = page.locator("table.report-steps tbody tr").first.locator("td")
        expect(steps.nth(4)).to_have_text("1")  # replied at step 1
        assert page.title() == title  # the script in the reply did not run
        assert page.locator("table.report-contacts script").count() == 0
        assert refused == []
    finally:
        context.close()
