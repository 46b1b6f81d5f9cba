"""One-click unsubscribe: a page on GET, suppression on POST, forever-valid signed links."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, select
from starlette.applications import Starlette

from pixeltrail.config import Settings
from pixeltrail.platform.campaigns.scheduler import schedule_due
from pixeltrail.platform.ids import now_ms
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import enrollments, messages, suppressions
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.web.unsubscribe import unsubscribe_routes

from ..api.conftest import serving
from ..chain import make_chain


def _scheduled_message(engine: Engine, settings: Settings) -> str:
    with write_transaction(engine) as conn:
        make_chain(conn, settings, emails=["ada@example.org"])
        schedule_due(conn, settings, now_ms())
        return str(conn.execute(select(messages.c.id)).scalar_one())


def test_get_asks_post_unsubscribes(engine: Engine, settings: Settings) -> None:
    message_id = _scheduled_message(engine, settings)
    app = Starlette(routes=unsubscribe_routes(engine, settings.signer()))
    with serving(app) as base:
        link = LinkBuilder(base, settings.signer()).unsubscribe_url(message_id)
        page = httpx.get(link)
        assert page.status_code == 200
        assert "a***@example.org" in page.text and "ada@example.org" not in page.text
        assert '<form method="post">' in page.text
        with engine.connect() as conn:
            assert conn.execute(select(suppressions)).all() == []  # a GET changes nothing
        done = httpx.post(
            link,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200  # RFC 8058: no redirect
        assert "You are unsubscribed" in done.text
        again = httpx.post(link)
        assert again.status_code == 200
        assert "You are unsubscribed" in httpx.get(link).text
        for bad in [link[:-3], link.replace("/u/", "/u/x"), base + "/u/"]:
            assert httpx.post(bad).status_code == 404
        # An open-pixel token of the same message is not an unsubscribe link.
        pixel_token = LinkBuilder(base, settings.signer()).open_url(message_id).rsplit("/", 1)[1]
        assert httpx.post(f"{base}/u/{pixel_token}").status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(suppressions.c.email, suppressions.c.reason)).all() == [
            ("ada@example.org", "unsubscribed")
        ]
        assert conn.execute(select(enrollments.c.status)).scalar_one() == "unsubscribed"
        assert conn.execute(select(messages.c.status)).scalar_one() == "cancelled"
