"""The Outbox in Chromium: opening a kept message loads its real tracking pixel from the server,
and clicking its link opens a new tab that goes through the tracking redirect to the
destination; both are recorded once the flusher takes the spool."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from pixeltrail.platform.webhooks.events import enqueue_engagement
from pixeltrail.recording.flusher import Flusher
from pixeltrail.recording.spool import Spool
from pixeltrail.store.schema import events
from pixeltrail.web.api.app import mounted_api
from pixeltrail.web.client_ip import ClientAddress
from pixeltrail.web.tracking import TrackingApp

from ..api.conftest import make_settings
from ..dbs import fresh_database
from ..server.conftest import free_port
from .conftest import Site
from .test_outbox import OWNER, send_through_outbox

TRACKING_HOST = "track.localhost"
# A desktop browser's user agent: Playwright's own says HeadlessChrome, a bot to the classifier.
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


@dataclass
class TrackedSite:
    site: Site
    spool: Spool


@pytest.fixture
def tracked_site(tmp_path: Path) -> Iterator[TrackedSite]:
    """The dashboard and API behind the tracking routes, as `pixeltrail serve` answers them,
    with the instance's base URL its own address (so pixels and links come back here) and hits
    going to a spool in the data directory."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with fresh_database("sqlite", tmp_path) as database:
        database.migrated()
        settings = make_settings(tmp_path, database.url, PIXELTRAIL_BASE_URL=url)
        spool = Spool(settings.data_dir / "spool")
        app = TrackingApp(
            signer=settings.signer(),
            spool=spool,
            client=ClientAddress(settings.trusted_proxies),
            health=lambda: (True, {}),
            inner=mounted_api(database.engine, settings),
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.01)
        site = Site(url, database.engine, settings)
        try:
            yield TrackedSite(site, spool)
        finally:
            for user in site.users:
                user.close()
            server.should_exit = True
            thread.join(10)
            spool.close()


def test_opening_and_clicking_in_the_outbox_is_tracked(
    tracked_site: TrackedSite, browser: Any
) -> None:
    site = tracked_site.site
    owner = site.sign_up(OWNER)
    destination = f"{site.url}/static/app.css"
    sent = send_through_outbox(
        site,
        {"ann@example.com": "Ann"},
        f'<p>Hi {{{{ first_name }}}}, <a href="{destination}">the offer</a></p>',
        click_domain=TRACKING_HOST,
    )
    message_id = sent.message_ids["ann@example.com"]
    context = browser.new_context(base_url=site.url, user_agent=CHROME)
    try:
        context.add_cookies(
            [{"name": c.name, "value": c.value, "url": site.url} for c in owner.client.cookies.jar]
        )
        page = context.new_page()
        with page.expect_response(lambda r: "/o/" in r.url) as pixel_info:
            page.goto(f"/outbox/{message_id}")
        pixel = pixel_info.value
        assert pixel.status == 200
        assert pixel.header_value("content-type") == "image/gif"
        tracking = f"http://{TRACKING_HOST}:{site.url.rsplit(':', 1)[1]}"
        assert pixel.url.startswith(f"{tracking}/o/")
        frame = page.frame_locator("iframe.email")
        assert frame.get_by_text("Hi Ann").is_visible()
        link = frame.get_by_role("link", name="the offer")
        assert (link.get_attribute("href") or "").startswith(f"{tracking}/c/")
        with context.expect_page() as opened:
            link.click()
        tab = opened.value
        tab.wait_for_load_state()
        assert tab.url == destination  # through the tracking redirect, to the destination
        assert page.url.endswith(f"/outbox/{message_id}")  # the outbox stays where it was
    finally:
        context.close()
    assert Flusher(tracked_site.spool, site.engine, enqueue_engagement).flush_once() == 2
    with site.engine.connect() as conn:
        recorded = conn.execute(
            select(events.c.kind, events.c.destination, events.c.user_agent)
            .where(events.c.message_id == message_id)
            .order_by(events.c.at_ms)
        ).all()
    assert [(e.kind, e.destination) for e in recorded] == [
        ("open", None),
        ("click", destination),
    ]
    assert {e.user_agent for e in recorded} == {CHROME}
    # And the campaign's report says so.
    report = owner.get(f"/campaigns/{sent.campaign_id}/report").text
    assert destination in report
