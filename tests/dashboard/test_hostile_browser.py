"""Hostile input in a real browser: scripts in recorded data never run, forged forms are refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import update

from pixeltrail.platform.accounts.users import user_by_email
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import contacts
from pixeltrail.tracking.hits import Hit, new_event_id

from ..reports.conftest import NAMES, SENT, H, make_campaign, tell_story
from .conftest import Site, User

OWNER = "owner@acme.example"
# Each payload, if it ran, would open a dialog or change the title: the test watches both.
NAME = "<script>alert('name')</script>"
SURNAME = '"><img src=x onerror="document.title=\'pwned\'">'
# HeadlessChrome: a machine, so the report lists the event with its user agent.
AGENT = "Mozilla/5.0 HeadlessChrome/120.0 <img src=x onerror=alert('agent')>"


def _signed_in_page(browser: Any, site: Site, user: User) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(base_url=site.url)
    host = urlsplit(site.url).hostname
    context.add_cookies(
        [
            {"name": name, "value": value, "domain": host, "path": "/"}
            for name, value in user.client.cookies.items()
        ]
    )
    page = context.new_page()
    dialogs: list[str] = []

    def seen(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    return context, page, dialogs


def test_scripts_in_names_and_user_agents_show_as_text(sqlite_site: Site, browser: Any) -> None:
    site = sqlite_site
    owner = site.sign_up(OWNER)
    with write_transaction(site.engine) as conn:
        user = user_by_email(conn, OWNER)
        assert user is not None
    campaign = make_campaign(site.engine, user.account_id, NAMES)
    tell_story(campaign)
    campaign.add_message("mallory")
    with write_transaction(site.engine) as conn:
        conn.execute(
            update(contacts)
            .where(contacts.c.id == campaign.contact["mallory"])
            .values(first_name=NAME, last_name=SURNAME)
        )
    campaign.record(
        Hit(
            new_event_id(), "open", campaign.message["mallory"], None, None,
            SENT + H, "198.51.100.77", AGENT, "GET", False,
        ),
    )  # fmt: skip
    context, page, dialogs = _signed_in_page(browser, site, owner)
    try:
        from playwright.sync_api import expect

        page.goto(f"/campaigns/{campaign.id}/report")
        row = page.locator("tr", has_text="mallory")
        expect(row).to_contain_text(NAME)  # the payload, shown as the text it is
        expect(row.locator(".agent")).to_have_text(AGENT)
        page.goto("/contacts")
        expect(page.locator("main")).to_contain_text(NAME)
        expect(page.locator("main")).to_contain_text("onerror=")
        page.goto("/contacts")
        assert page.locator("main img").count() == 0
        assert page.title() != "pwned"
        assert dialogs == []
    finally:
        context.close()


class _ForgedForm(BaseHTTPRequestHandler):
    """Another site's page that posts a form to the dashboard as soon as it loads."""

    target = ""

    def do_GET(self) -> None:
        body = (
            f'<form id="f" method="post" action="{self.target}/signout">'
            '<input name="csrf_token" value="guessed"></form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def _evil_site(target: str) -> Iterator[str]:
    handler = type("Forged", (_ForgedForm,), {"target": target})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_form_posted_from_another_site_is_refused(sqlite_site: Site, browser: Any) -> None:
    site = sqlite_site
    owner = site.sign_up(OWNER)
    context, page, _dialogs = _signed_in_page(browser, site, owner)
    try:
        from playwright.sync_api import expect

        with _evil_site(site.url) as evil:
            # Same host, other port: the browser sends the session cookie along.
            with page.expect_response(f"{site.url}/signout") as answer:
                page.goto(evil)
            assert answer.value.status == 403
            expect(page.locator("main")).to_contain_text("Refused")
        page.goto("/campaigns")
        expect(page.locator("header")).to_contain_text(OWNER)  # still signed in
    finally:
        context.close()
