"""The Outbox: the account's messages kept by the built-in outbox, each shown as a mail client
would (headers, the HTML part in a sandboxed iframe under its own policy, the text part),
and nothing else: not another account's, not one sent over SMTP, not a file named in a URL."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import select, update

from pixeltrail.platform.accounts.accounts import create_account, create_api_key
from pixeltrail.platform.accounts.users import user_by_email
from pixeltrail.platform.campaigns.scheduler import schedule_due
from pixeltrail.platform.ids import now_ms
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import mailboxes, messages

from ..reports.conftest import make_campaign
from .conftest import Site, User

OWNER = "owner@acme.example"
XSS = '<script>alert("x")</script>'
IFRAME = re.compile(r"<iframe[^>]*>")


@dataclass
class Sent:
    campaign_id: str
    message_ids: dict[str, str]  # recipient address -> message id


def send_through_outbox(
    site: Site,
    recipients: dict[str, str],
    html: str,
    subject: str = "Hello {{ first_name }}",
    text: str | None = None,
    click_domain: str | None = None,
) -> Sent:
    """A campaign of the signed-up owner to `recipients` (address -> first name) through the
    account's built-in outbox, made with the API and sent by the real scheduler and worker."""
    with write_transaction(site.engine) as conn:
        owner = user_by_email(conn, OWNER)
        assert owner is not None
        key = create_api_key(conn, owner.account_id, "outbox test")
    api = httpx.Client(
        base_url=f"{site.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    with api:
        (mailbox,) = [m for m in api.get("/mailboxes").json()["items"] if m["kind"] == "outbox"]
        contact_ids = []
        for address, first_name in recipients.items():
            made = api.post("/contacts", json={"email": address, "first_name": first_name})
            assert made.status_code == 201, made.text
            contact_ids.append(made.json()["id"])
        step = {"subject": subject, "html": html, "text": text, "delay_days": 0}
        created = api.post(
            "/campaigns", json={"name": "Outbox test", "mailbox_id": mailbox["id"], "steps": [step]}
        )
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        if click_domain is not None:
            # Click tracking needs a verified tracking domain: on a loopback instance a
            # .localhost one verifies without DNS, and browsers resolve it to this machine.
            domain = api.post("/tracking-domains", json={"hostname": click_domain}).json()
            verified = api.post(f"/tracking-domains/{domain['id']}/verify")
            assert verified.status_code == 200, verified.text
            tracked = api.patch(f"/campaigns/{campaign_id}/settings", json={"track_clicks": True})
            assert tracked.status_code == 200, tracked.text
        enrolled = api.post(f"/campaigns/{campaign_id}/contacts", json={"contact_ids": contact_ids})
        assert enrolled.status_code == 200, enrolled.text
        assert api.post(f"/campaigns/{campaign_id}/launch", json={}).status_code == 200
    with write_transaction(site.engine) as conn:
        assert schedule_due(conn, site.settings, now_ms()) == len(recipients)
    worker = SendWorker(site.engine, site.settings, site.settings.signer())

    async def once() -> int:
        try:
            return await worker.run_once()
        finally:
            await worker.close()

    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, once()).result() == len(recipients)
    with site.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.id, messages.c.contact_id, messages.c.status).where(
                messages.c.campaign_id == campaign_id
            )
        ).all()
    assert {row.status for row in rows} == {"sent"}
    by_contact = {row.contact_id: row.id for row in rows}
    return Sent(
        campaign_id,
        {address: by_contact[cid] for address, cid in zip(recipients, contact_ids, strict=True)},
    )


def _outbox_dir(site: Site) -> Path:
    return site.settings.data_dir / "outbox"


def test_outbox_lists_only_this_accounts_outbox_messages(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(
        site,
        {"ann@example.com": "Ann", "bob@example.com": XSS},
        '<p>Hi {{ first_name }}, <a href="https://example.com/offer">see</a></p>',
    )
    # Another account's outbox message, with its file there too: never listed, never shown.
    with write_transaction(site.engine) as conn:
        other, _key = create_account(conn, "Other", "boss@other.example")
    theirs = make_campaign(site.engine, other.id, ["zed"])
    (_outbox_dir(site) / f"{theirs.message['zed']}.eml").write_bytes(
        b"From: z@other.example\r\nSubject: Their secret\r\n\r\nsecret\r\n"
    )
    page = owner.get("/outbox")
    assert page.status_code == 200
    text = page.text
    assert "ann@example.com" in text and "bob@example.com" in text
    assert "Hello Ann" in text
    assert "Hello &lt;script&gt;" in text and XSS not in text  # a hostile name as text
    assert "Outbox test" in text
    assert "zed@example.com" not in text and "Their secret" not in text
    assert f'href="/outbox/{sent.message_ids["ann@example.com"]}"' in text
    answer = owner.get(f"/outbox/{theirs.message['zed']}")
    assert answer.status_code == 404
    assert "Their secret" not in answer.text
    assert owner.get(f"/outbox/{theirs.message['zed']}/body").status_code == 404


def test_outbox_pages_newest_first(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(
        site, {f"p{n:02d}@example.com": f"P{n}" for n in range(3)}, "<p>hi</p>"
    )
    # Sent one minute apart, p02 last.
    with write_transaction(site.engine) as conn:
        for n, message_id in enumerate(sent.message_ids.values()):
            conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(sent_at_ms=1_700_000_000_000 + n * 60_000)
            )
    more = send_through_outbox(
        site, {f"q{n:02d}@example.com": f"Q{n}" for n in range(50)}, "<p>hi</p>"
    )
    first = owner.get("/outbox").text
    listed = re.findall(r"<td>([a-z0-9]+@example\.com)</td>", first)
    assert len(listed) == 50
    assert set(listed) == set(more.message_ids)  # the newest
    older = re.search(r'href="(/outbox\?cursor=[^"]+)">Older', first)
    assert older
    second = owner.get(older.group(1).replace("&amp;", "&")).text
    assert re.findall(r"<td>([a-z0-9]+@example\.com)</td>", second) == [
        "p02@example.com",
        "p01@example.com",
        "p00@example.com",
    ]
    assert "Older" not in second


def test_message_shows_headers_and_html_in_a_sandboxed_frame(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(
        site,
        {"zoe@example.com": "Zoë"},
        '<p>Grüße, {{ first_name }}! <a href="https://example.com/offer">The offer</a></p>',
        subject="Grüße, {{ first_name }} ✓",
        text="Grüße, {{ first_name }}: https://example.com/offer",
    )
    message_id = sent.message_ids["zoe@example.com"]
    page = owner.get(f"/outbox/{message_id}")
    assert page.status_code == 200
    text = page.text
    assert "Grüße, Zoë ✓" in text  # the RFC 2047 subject, decoded
    assert "owner@acme.example" in text  # From: the built-in outbox's address
    assert "zoe@example.com" in text
    assert re.search(r"<dt>Date</dt><dd>[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} 20\d\d", text)
    (iframe,) = IFRAME.findall(text)
    assert f'src="/outbox/{message_id}/body"' in iframe
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in iframe
    assert "allow-scripts" not in iframe and "allow-same-origin" not in iframe
    body = owner.get(f"/outbox/{message_id}/body")
    assert body.status_code == 200
    assert body.headers["content-security-policy"].startswith(
        "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; font-src *"
    )
    assert "script-src" not in body.headers["content-security-policy"]
    assert body.headers["content-type"] == "text/html; charset=utf-8"
    assert "Grüße, Zoë!" in body.text  # quoted-printable UTF-8, decoded
    assert '<base target="_blank">' in body.text
    # The pixel points at the instance's own base URL, with a real token.
    assert re.search(rf'<img src="{re.escape(site.settings.base_url)}/o/[A-Za-z0-9_-]+', body.text)
    # The text part, on its tab.
    plain = owner.get(f"/outbox/{message_id}?view=text").text
    assert '<pre class="mail-text">Grüße, Zoë: https://example.com/offer' in plain
    assert "<iframe" not in plain


def test_hostile_html_stays_in_the_frame(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(
        site,
        {"eve@example.com": XSS},
        f"<p>{XSS}</p><p>{{{{ first_name }}}}</p>",
        subject="About {{ first_name }}",
    )
    message_id = sent.message_ids["eve@example.com"]
    page = owner.get(f"/outbox/{message_id}").text
    assert XSS not in page  # the subject with the hostile name: text on the page
    assert "About &lt;script&gt;" in page
    body = owner.get(f"/outbox/{message_id}/body")
    # The author's own HTML is the email: served as is, where the policy stops its scripts.
    assert "<script>" in body.text
    assert "default-src 'none'" in body.headers["content-security-policy"]
    assert "sandbox" in body.headers["content-security-policy"]


def test_tampered_ids_are_not_found(site: Site) -> None:
    owner = site.sign_up(OWNER)
    sent = send_through_outbox(site, {"ann@example.com": "Ann"}, "<p>hi</p>")
    message_id = sent.message_ids["ann@example.com"]
    data = site.settings.data_dir
    (data / "secret.eml").write_text("Subject: secret\r\n\r\nthe secret\r\n")
    # A message of this account sent over SMTP (its file planted): not the outbox's.
    with write_transaction(site.engine) as conn:
        owner_row = user_by_email(conn, OWNER)
        assert owner_row is not None
    smtp = make_campaign(site.engine, owner_row.account_id, ["sam"])
    with write_transaction(site.engine) as conn:
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == smtp.mailbox_id)
            .values(smtp_url_encrypted="encrypted")
        )
    (_outbox_dir(site) / f"{smtp.message['sam']}.eml").write_text("Subject: smtp\r\n\r\nx\r\n")
    tampered = [
        message_id[:-1],
        message_id + "A",
        message_id.swapcase(),
        "..%2Fsecret",
        "..%2F..%2Fsecret",
        "%2E%2E%2Fsecret",
        "....secret......",  # 16 characters, but not a message id
        smtp.message["sam"],
    ]
    for bad in tampered:
        for suffix in ("", "/body", "?view=text"):
            answer = owner.get(f"/outbox/{bad}{suffix}")
            assert answer.status_code == 404, (bad, suffix)
            assert "the secret" not in answer.text and "smtp" not in answer.text.lower()
    assert "sam@example.com" not in owner.get("/outbox").text
    assert owner.get(f"/outbox/{message_id}/body").status_code == 200
    # Once the file is gone, the message is gone too (not an error page).
    (_outbox_dir(site) / f"{message_id}.eml").unlink()
    assert owner.get(f"/outbox/{message_id}").status_code == 404


def test_outbox_needs_a_session(site: Site) -> None:
    site.sign_up(OWNER)
    sent = send_through_outbox(site, {"ann@example.com": "Ann"}, "<p>hi</p>")
    stranger: User = site.visitor()
    for path in ("/outbox", f"/outbox/{sent.message_ids['ann@example.com']}/body"):
        answer = stranger.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/signin")
