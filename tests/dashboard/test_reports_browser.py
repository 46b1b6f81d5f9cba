"""The Report tab in Chromium: drawn without breaking the page's policy, and its numbers and
chart follow new events without a reload while the campaign is active."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from ..reports.conftest import SENT, H
from .conftest import Site
from .test_reports import _owner_with_story


def test_report_refreshes_itself_while_the_campaign_is_active(
    sqlite_site: Site, browser: Any
) -> None:
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
        opened = page.locator("#stat-opened .value")
        before = int(opened.inner_text())
        expect(page.locator("svg.chart rect.bar.open.human").first).to_be_visible()
        # gus opens it for real, a day and a half later: recorded as the flusher records.
        campaign.record(campaign.hit("gus", "open", SENT + 40 * H, "198.51.100.50", "Thunderbird"))
        expect(opened).to_have_text(str(before + 1), timeout=20_000)
        expect(page.locator("svg.chart")).to_be_visible()  # the chart came back with it
        assert "gus@example.com" in page.locator("table.report-contacts").inner_text()
        assert refused == []
        # Signed out elsewhere: the next refresh is answered with the sign-in page, which must
        # not land inside the report; the page keeps what it showed.
        assert owner.post("/signout", token_from="/campaigns").status_code == 303
        page.wait_for_timeout(7_000)  # more than one refresh period
        expect(opened).to_have_text(str(before + 1))
        assert page.locator("section.report-live form").count() == 0
    finally:
        context.close()
