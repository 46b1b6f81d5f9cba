"""Campaign pages in a real Chromium: the live preview follows typing under the page's CSP,
the email inside it runs nothing, and the click switch explains why it is off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pixeltrail.web.dashboard.sessions import COOKIE

from ..campaigns.conftest import add_domain, set_domain_status
from .conftest import Site, User
from .test_campaigns import account_of, add_step, campaign_record, new_campaign


@pytest.fixture
def signed_in(sqlite_site: Site, browser: Any) -> Iterator[tuple[User, Any, list[str]]]:
    """The owner over HTTP, a browser page with the same session, and its console messages."""
    owner = sqlite_site.sign_up()
    context = browser.new_context(base_url=sqlite_site.url)
    host = sqlite_site.url.split("://", 1)[1].split(":")[0]
    context.add_cookies(
        [{"name": COOKIE, "value": owner.client.cookies[COOKIE], "domain": host, "path": "/"}]
    )
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        yield owner, page, console
    finally:
        context.close()


def test_the_live_preview_follows_typing_and_runs_no_script(
    signed_in: tuple[User, Any, list[str]],
) -> None:
    owner, page, console = signed_in
    campaign_id = new_campaign(owner)
    add_step(owner, campaign_id, html="<p>Saved body for {{ first_name }}</p>")
    page.goto(f"/campaigns/{campaign_id}")
    saved = page.frame(name="preview-1")
    assert saved is not None
    saved.wait_for_selector("text=Saved body for Ada")

    history = page.evaluate("history.length")
    step = page.locator("#step-1 form[data-live-preview]")
    step.locator("textarea[name=html]").fill(
        "<h1>Typed for {{ company }}</h1>"
        '<img src="x" onerror="parent.document.body.dataset.pwned=1">'
    )
    frame = page.frame(name="preview-1")
    assert frame is not None
    frame.wait_for_selector("text=Typed for Analytical Engines", timeout=10_000)
    # Still on the page, nothing saved, and the email's handler never ran.
    assert page.url.endswith(f"/campaigns/{campaign_id}")
    assert page.evaluate("document.body.dataset.pwned") is None
    assert page.evaluate("history.length") == history  # Back still leaves the page
    assert "Saved body for" in owner.get(f"/campaigns/{campaign_id}/steps/1/preview").text

    # The form of a new step previews as it is typed too.
    waiting = page.frame(name="preview-new")
    assert waiting is not None
    waiting.wait_for_selector("text=the preview follows as you type")
    new = page.locator("#step-new form[data-live-preview]")
    new.locator("input[name=subject]").fill("Quick question, {{ first_name }}")
    new.locator("textarea[name=html]").fill("<p>Brand new step</p>")
    fresh = page.frame(name="preview-new")
    assert fresh is not None
    fresh.wait_for_selector("text=Brand new step", timeout=10_000)
    assert "Quick question, Ada" in fresh.content()
    assert not [m for m in console if "Content Security Policy" in m], console


def test_the_click_switch_is_disabled_with_the_reason(
    signed_in: tuple[User, Any, list[str]],
) -> None:
    owner, page, _ = signed_in
    campaign_id = new_campaign(owner)
    page.goto(f"/campaigns/{campaign_id}/settings")
    switch = page.locator("input[name=track_clicks]")
    assert switch.is_disabled()
    reason = page.locator("#clicks-why")
    assert reason.is_visible()
    assert "until you have a verified tracking domain" in reason.inner_text()
    reason.locator("a").click()
    page.wait_for_url("**/domains")


def test_click_tracking_through_this_servers_own_address_is_refused_in_the_form(
    sqlite_site: Site, signed_in: tuple[User, Any, list[str]]
) -> None:
    owner, page, _ = signed_in
    campaign_id = new_campaign(owner)
    domain = add_domain(sqlite_site.engine, account_of(sqlite_site, campaign_id), "t.acme.example")
    set_domain_status(sqlite_site.engine, domain, "verified")
    page.goto(f"/campaigns/{campaign_id}/settings")
    page.check("input[name=track_clicks]")
    page.select_option("select[name=tracking_domain_id]", "")
    page.click("text=Save settings")
    page.wait_for_selector("text=not this server's own address")
    assert "Settings saved" not in page.content()
    # The form shows what was chosen, to change one of them.
    assert page.is_checked("input[name=track_clicks]")
    assert page.input_value("select[name=tracking_domain_id]") == ""
    page.select_option("select[name=tracking_domain_id]", domain)
    page.click("text=Save settings")
    page.wait_for_selector("text=Settings saved")
    record = campaign_record(sqlite_site, campaign_id)
    assert (record["track_clicks"], record["tracking_domain_id"]) == (True, domain)
