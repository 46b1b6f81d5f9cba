"""Settings → Mailboxes: the INBOX a mailbox's replies and bounces are read from."""

from __future__ import annotations

import html

from sqlalchemy import insert, select

from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import mailbox_inboxes, mailboxes

from .conftest import Site

ADD = {"from_email": "sales@acme.example", "kind": "outbox", "daily_limit": "50"}
REMOTE = "imaps://ana:hunter2-secret@imap.acme.example"


def test_an_imap_url_is_added_masked_changed_and_stopped(site: Site) -> None:
    owner = site.sign_up()
    added = owner.post("/settings/mailboxes", {**ADD, "name": "Sales", "imap_url": REMOTE})
    assert added.status_code == 303
    page = html.unescape(owner.get("/settings/mailboxes").text)
    assert "imaps://ana:***@imap.acme.example:993" in page
    assert "not read yet" in page
    assert "hunter2" not in page
    with site.engine.connect() as conn:
        sales = conn.execute(select(mailboxes).where(mailboxes.c.name == "Sales")).one()
    assert "hunter2" not in sales.imap_url_encrypted

    with write_transaction(site.engine) as conn:
        conn.execute(
            insert(mailbox_inboxes).values(
                mailbox_id=sales.id, last_uid=0, error="cannot log in: Authentication failed."
            )
        )
    page = html.unescape(owner.get("/settings/mailboxes").text)
    assert "not read" in page and "cannot log in: Authentication failed." in page

    imap = f"/settings/mailboxes/{sales.id}/imap"
    clear = "imap://ana:hunter2-secret@imap.acme.example?starttls=off"
    refused = owner.post(imap, {"imap_url": clear}, token_from="/settings/mailboxes")
    assert refused.status_code == 422
    assert "would send the password in clear" in html.unescape(refused.text)
    assert "hunter2" not in refused.text
    stopped = owner.post(imap, {"stop": "1"}, token_from="/settings/mailboxes")
    assert stopped.status_code == 303
    page = html.unescape(owner.get("/settings/mailboxes").text)
    assert "Sales: its INBOX is not read" in page
    assert "imap.acme.example" not in page
    with site.engine.connect() as conn:
        kept = conn.execute(
            select(mailboxes.c.imap_url_encrypted).where(mailboxes.c.id == sales.id)
        )
        assert kept.scalar() is None


def test_a_local_imap_server_is_refused_beside_its_field(site: Site) -> None:
    owner = site.sign_up()
    local = "imaps://ana:hunter2-secret@127.0.0.1:993"
    refused = owner.post("/settings/mailboxes", {**ADD, "name": "Local", "imap_url": local})
    assert refused.status_code == 422
    page = html.unescape(refused.text)
    assert 'id="imap-url-error"' in page
    assert "127.0.0.1 is a loopback address" in page
    assert "PIXELTRAIL_MAIL_ALLOW_LOCAL=1" in page
    assert 'value="Local"' in page  # what was typed stays
    assert "hunter2" not in page.split('name="imap_url"')[0]
    with site.engine.connect() as conn:
        names = conn.execute(select(mailboxes.c.name)).scalars().all()
    assert "Local" not in names
