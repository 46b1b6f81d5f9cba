"""A new user's first campaign in the browser, from a fresh instance to the report.

A real `pixeltrail serve` (scheduler, worker and flusher included) on SQLite and its built-in
outbox, a real DNS server on loopback for the tracking domain, and Debian's Chromium driven by
Playwright. Chromium reaches the tracking domain through a host-resolver rule (there is no
other DNS here), as it would through the CNAME on the internet.

Set PIXELTRAIL_SCREENSHOTS to a folder to keep the screenshots of the main pages (the README
shows the ones in docs/screenshots).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..dns_server import FakeDns, fake_dns
from ..domains.conftest import CNAME_TARGET
from ..server.conftest import ServerProcess, eventually
from .conftest import PASSWORD, launch_chromium

HOST = "track.acme.test"
DESKTOP = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CSV = (
    "Email,First Name,Last Name,Company\n"
    "ada@example.org,Ada,Lovelace,Analytical Engines\n"
    "grace@example.org,Grace,Hopper,Navy\n"
)
# A click within this many seconds of sending is what security scanners do: the classifier
# calls it a machine. A person reading the outbox takes longer; the test waits as long.
SCANNER_WINDOW_S = 11


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    with fake_dns((CNAME_TARGET, "A", "192.0.2.10")) as zone:
        yield zone


@pytest.fixture
def server(tmp_path: Path, dns: FakeDns) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'pixeltrail.db'}",
        PIXELTRAIL_DNS_SERVERS=dns.server,
        PIXELTRAIL_CNAME_TARGET=CNAME_TARGET,
        PIXELTRAIL_TRACKING_SCHEME="http",
    ).start()
    try:
        yield process
    finally:
        process.stop()


class Shots:
    """Screenshots of the main pages, kept where PIXELTRAIL_SCREENSHOTS says."""

    def __init__(self, page: Any, tmp_path: Path) -> None:
        self.page = page
        self.folder = tmp_path / "screenshots"
        self.folder.mkdir()
        self.keep = os.environ.get("PIXELTRAIL_SCREENSHOTS")

    def take(self, name: str) -> None:
        path = self.folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if self.keep:
            Path(self.keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(self.keep) / path.name)


def test_first_campaign_from_sign_up_to_report(
    server: ServerProcess, dns: FakeDns, playwright: Any, tmp_path: Path
) -> None:
    chromium = launch_chromium(playwright, f"--host-resolver-rules=MAP {HOST} 127.0.0.1")
    context = chromium.new_context(
        base_url=server.base_url, user_agent=DESKTOP, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    shots = Shots(page, tmp_path)
    try:
        _flow(page, context, server, dns, shots, tmp_path)
    finally:
        context.close()
        chromium.close()


def _flow(
    page: Any, context: Any, server: ServerProcess, dns: FakeDns, shots: Shots, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    # The first visit to a fresh instance creates the account and its owner.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup$"))
    page.get_by_label("Company or team name").fill("Acme")
    page.get_by_label("Your email").fill("al@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/campaigns$"))

    # Contacts from a CSV, with the column-mapping step.
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(CSV)
    page.goto("/contacts/import")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("form#mapping")).to_be_visible()
    shots.take("contacts-import-mapping")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-rejected")).to_have_text("0")
    page.goto("/contacts")
    expect(page.get_by_text("ada@example.org")).to_be_visible()
    shots.take("contacts")

    # A two-step campaign.
    page.goto("/campaigns")
    page.get_by_label("Name").fill("Launch week")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("heading", name=re.compile("Launch week"))).to_be_visible()
    campaign_url = page.url
    destination = f"{server.base_url}/robots.txt?from=launch"
    _add_step(
        page,
        "Hello {{ first_name }}",
        0,
        f'<p>Hi {{{{ first_name }}}}, see <a href="{destination}">our launch</a>.</p>',
    )
    _add_step(page, "Following up", 2, "<p>Any thoughts, {{ first_name }}?</p>")
    expect(page.get_by_role("button", name="Save step 2")).to_be_visible()
    shots.take("campaign-sequence")

    page.goto(campaign_url + "/schedule")
    for box in page.locator('input[name="days"]').all():
        box.check()
    page.locator('select[name="start_hour"]').select_option("0")
    page.locator('select[name="end_hour"]').select_option("24")
    page.get_by_role("button", name=re.compile("Save")).click()

    page.goto(campaign_url + "/contacts")
    page.get_by_role("button", name="Add all contacts").click()
    expect(page.get_by_text("grace@example.org").first).to_be_visible()

    # Settings: no verified tracking domain yet, so the click switch is off and says why.
    page.goto(campaign_url + "/settings")
    clicks = page.locator('input[name="track_clicks"]')
    expect(clicks).to_be_disabled()
    expect(page.locator("#clicks-why")).to_contain_text("verified tracking domain")
    shots.take("campaign-settings-before-domain")

    # The tracking domain: the CNAME to create, a failed check that says why, then verified.
    page.goto("/domains")
    page.get_by_label("Hostname").fill(HOST)
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#dns-value")).to_have_text(CNAME_TARGET)
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator(".badge.bad").first).to_have_text("failed")
    expect(page.locator("main")).to_contain_text(HOST)
    dns.cname(HOST, CNAME_TARGET)
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator(".badge.good").first).to_have_text("verified")
    shots.take("tracking-domain")

    # Back in Settings the switch works; open and click tracking on the new domain.
    page.goto(campaign_url + "/settings")
    expect(clicks).to_be_enabled()
    clicks.check()
    page.locator('select[name="tracking_domain_id"]').select_option(label=HOST)
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".flash")).to_be_visible()
    expect(page.locator('input[name="track_clicks"]')).to_be_checked()
    expect(page.locator('input[name="track_opens"]')).to_be_checked()
    shots.take("campaign-settings")

    # Launch: the scheduler and worker send the first step to the built-in outbox.
    page.get_by_role("button", name="Launch").click()
    expect(page.locator("h1 .badge")).to_have_text("active")

    def outbox_rows() -> int | None:
        page.goto("/outbox")
        rows = page.locator("main table tbody tr").count()
        return rows if rows == 2 else None

    eventually(outbox_rows, timeout=60, every=1)
    sent_at = time.monotonic()
    shots.take("outbox")

    # Open Ada's message as a mail client shows it: the pixel loads from the tracking domain.
    page.locator("main table tbody tr", has_text="ada@example.org").get_by_role(
        "link"
    ).first.click()
    email = page.frame_locator("iframe.email")
    expect(email.get_by_text("Hi Ada")).to_be_visible()
    shots.take("outbox-message")
    link = email.get_by_role("link", name="our launch")
    href = link.get_attribute("href")
    assert href is not None
    assert href.startswith(f"http://{HOST}:{server.port}/c/")
    time.sleep(max(0.0, SCANNER_WINDOW_S - (time.monotonic() - sent_at)))
    with context.expect_page() as opened:
        link.click()
    landed = opened.value
    landed.wait_for_load_state()
    assert landed.url == destination
    landed.close()

    # The report shows who opened, when and how many times, and the click.
    page.goto(campaign_url + "/report")

    def reported() -> bool | None:
        page.reload()
        opened = page.locator("#stat-opened .value").inner_text()
        clicked = page.locator("#stat-clicked .value").inner_text()
        return True if (opened, clicked) == ("1", "1") else None

    eventually(reported, timeout=30, every=1)
    row = page.locator("tr", has_text="ada@example.org")
    cells = row.locator("td")
    expect(cells.nth(3)).to_have_text("1")  # opens
    expect(cells.nth(4)).to_have_text("1")  # clicks
    expect(cells.nth(1)).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d"))  # first opened
    expect(row).to_contain_text("/robots.txt?from=launch")
    grace = page.locator("tr", has_text="grace@example.org")
    expect(grace.locator("td").nth(3)).to_have_text("0")
    shots.take("campaign-report")


def _add_step(page: Any, subject: str, delay: int, html: str) -> None:
    form = page.locator("form", has=page.get_by_role("button", name="Add step"))
    form.get_by_label("Subject").fill(subject)
    form.get_by_label("Delay").fill(str(delay))
    form.get_by_label("HTML body").fill(html)
    form.get_by_role("button", name="Add step").click()
