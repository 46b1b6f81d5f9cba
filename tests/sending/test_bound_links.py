"""The links of a sent message are bound to its account: tracking domains of other accounts
do not answer them (tests/domains/test_server.py), the message's own account's and the
instance's do."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.campaigns.scheduler import schedule_due
from pixeltrail.platform.ids import now_ms
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import write_transaction
from pixeltrail.tracking.links import parse_tracking_url
from pixeltrail.tracking.tokens import ANY_ACCOUNT, account_tag

from ..chain import make_chain
from .conftest import SmtpServer

TRACKING_URL = r"http://127\.0\.0\.1:8000/[ocu]/[A-Za-z0-9_-]+"


def test_every_tracked_link_of_a_message_is_bound_to_its_account(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    with write_transaction(engine) as conn:
        acme = make_chain(conn, settings, smtp_url=smtp_server.url, prefix="acme")
        globex = make_chain(
            conn, settings, smtp_url=smtp_server.url, prefix="globex", emails=["bo@example.org"]
        )
        schedule_due(conn, settings, now_ms())
    worker = SendWorker(engine, settings, settings.signer())

    async def send() -> int:
        try:
            return await worker.run_once(None)
        finally:
            await worker.close()

    assert asyncio.run(send()) == 2
    signer = settings.signer()
    bound_to = {}
    for received in smtp_server.inbox.received:
        html = received.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = received.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        urls = re.findall(TRACKING_URL, html + text)
        claims = [parse_tracking_url(url, signer) for url in urls if "/u/" not in url]
        assert {c.kind for c in claims} == {"open", "click"}
        (account,) = {c.account for c in claims}
        bound_to[received["To"]] = account
        assert account is not None
        # Answered on the instance's own host and on the account's domains, nowhere else.
        other = account_tag(globex.account_id if "Ada" in received["To"] else acme.account_id)
        assert all(c.answered_on(ANY_ACCOUNT) and not c.answered_on(other) for c in claims)
        # The unsubscribe link is not bound: it redirects nowhere and acts on its message.
        (unsubscribe,) = re.findall(r"<(http://[^>]+/u/[^>]+)>", received["List-Unsubscribe"])
        assert signer.verify(unsubscribe.rsplit("/", 1)[1]).account is None
    assert bound_to == {
        "Ada <ada@example.org>": account_tag(acme.account_id),
        "Bo <bo@example.org>": account_tag(globex.account_id),
    }
