"""Settings in the dashboard: the account, users and invitations, API keys, mailboxes, webhooks."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy import select, update

from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import (
    accounts,
    api_keys,
    mailboxes,
    users,
    webhook_deliveries,
    webhook_endpoints,
)

from .conftest import PASSWORD, Site
from .tenants import another_account

_KEY = re.compile(r'<code id="new-key">(pt_[^<]+)</code>')
_LINK = re.compile(r'<code id="invite-link">([^<]+)</code>')
_SECRET = re.compile(r'<code id="webhook-secret">(whsec_[^<]+)</code>')


def test_account_settings_are_saved_and_bad_values_change_nothing(site: Site) -> None:
    owner = site.sign_up()
    page = owner.get("/settings")
    assert page.status_code == 200
    assert 'name="default_track_opens" checked' in page.text
    saved = owner.post(
        "/settings",
        {
            "name": "Acme Sales",
            "timezone": "Europe/Paris",
            "anonymize_ips": "on",
            "retention_days": "90",
        },
    )
    assert saved.status_code == 303
    assert "Settings saved" in owner.get("/settings").text
    with site.engine.connect() as conn:
        row = conn.execute(select(accounts)).one()
    assert (row.name, row.timezone, row.default_track_opens, row.anonymize_ips) == (
        "Acme Sales",
        "Europe/Paris",
        False,
        True,
    )
    assert row.retention_days == 90
    for field, value, reason in [
        ("timezone", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("retention_days", "ninety", "retention is a number of days"),
        ("retention_days", "0", "retention_days is a number of days (1 to 36500)"),
        ("name", "  ", "a name is a non-empty string"),
    ]:
        form = {"name": "Changed", "timezone": "UTC", "retention_days": "", field: value}
        answer = owner.post("/settings", form)
        assert answer.status_code == 422, (field, value)
        assert reason in html.unescape(answer.text)
        assert f'value="{value}"' in answer.text  # the form comes back as sent
    with site.engine.connect() as conn:
        assert conn.execute(select(accounts.c.name, accounts.c.timezone)).one() == (
            "Acme Sales",
            "Europe/Paris",
        )
    cleared = owner.post(
        "/settings", {"name": "Acme Sales", "timezone": "UTC", "default_track_opens": "on"}
    )
    assert cleared.status_code == 303
    with site.engine.connect() as conn:
        row = conn.execute(select(accounts)).one()
    assert (row.retention_days, row.default_track_opens, row.anonymize_ips) == (None, True, False)


def test_an_api_key_is_shown_once_works_and_stops_when_revoked(site: Site) -> None:
    owner = site.sign_up()
    created = owner.post("/settings/api-keys", {"name": "CRM <sync>"})
    assert created.status_code == 200
    found = _KEY.search(created.text)
    assert found is not None
    key = found.group(1)
    assert "CRM &lt;sync&gt;" in created.text
    listing = owner.get("/settings/api-keys").text
    assert key not in listing
    prefix = key.split("_")[1]
    assert f"pt_{prefix}_…" in listing

    api = httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {key}"})
    try:
        answer = api.get("/api/v1/account")
        assert answer.status_code == 200
        assert answer.json()["name"] == "Acme"
        with site.engine.connect() as conn:
            used = conn.execute(
                select(api_keys.c.last_used_at_ms).where(api_keys.c.prefix == prefix)
            ).scalar()
        assert used is not None
        row = next(
            line for line in owner.get("/settings/api-keys").text.split("<tr>") if prefix in line
        )
        assert "never" not in row

        key_id = re.search(r'action="/settings/api-keys/([^/"]+)/revoke"', row)
        assert key_id is not None
        mallory = another_account(site)
        stolen = mallory.post(
            f"/settings/api-keys/{key_id.group(1)}/revoke", token_from="/settings/api-keys"
        )
        assert stolen.status_code == 404
        assert api.get("/api/v1/account").status_code == 200
        no_token = owner.client.post(
            f"/settings/api-keys/{key_id.group(1)}/revoke", headers={"Origin": owner.url}
        )
        assert no_token.status_code == 403
        assert api.get("/api/v1/account").status_code == 200

        revoked = owner.post(
            f"/settings/api-keys/{key_id.group(1)}/revoke", token_from="/settings/api-keys"
        )
        assert revoked.status_code == 303
        refused = api.get("/api/v1/account")
        assert refused.status_code == 401
        assert "revoked" in refused.json()["error"]["message"]
        assert ">revoked " in owner.get("/settings/api-keys").text
    finally:
        api.close()
    empty = owner.post("/settings/api-keys", {"name": " "})
    assert empty.status_code == 422
    assert "give the key a name" in empty.text


def test_an_invitation_link_lets_someone_join(site: Site) -> None:
    owner = site.sign_up()
    answer = owner.post("/settings/users", {"email": "Bea@Acme.example"})
    assert answer.status_code == 200
    found = _LINK.search(answer.text)
    assert found is not None
    link = found.group(1)
    assert link.startswith(f"{site.settings.base_url}/invite/")
    path = link.removeprefix(site.settings.base_url)
    later = owner.get("/settings/users").text
    assert path not in later  # shown once
    assert "bea@acme.example" in later  # an open invitation

    bea = site.visitor()
    assert bea.get(path).status_code == 200
    joined = bea.post(path, {"password": PASSWORD})
    assert joined.status_code == 303
    assert "bea@acme.example" in bea.get("/campaigns").text
    with site.engine.connect() as conn:
        member = conn.execute(select(users.c.role).where(users.c.email == "bea@acme.example"))
        assert member.scalar() == "member"
    assert bea.get(path).status_code == 404  # used up
    again = owner.post("/settings/users", {"email": "bea@acme.example"})
    assert again.status_code == 409
    assert "already has a pixeltrail user" in again.text


def test_mailboxes_smtp_url_is_masked_and_limits_change(site: Site) -> None:
    owner = site.sign_up()
    added = owner.post(
        "/settings/mailboxes",
        {
            "name": "Sales",
            "from_email": "sales@acme.example",
            "from_name": "Acme Sales",
            "kind": "smtp",
            "smtp_url": "smtp://mailer:s3cret-pass@smtp.acme.example:587",
            "daily_limit": "150",
        },
    )
    assert added.status_code == 303
    page = owner.get("/settings/mailboxes").text
    assert "Mailbox Sales added" in page
    assert "s3cret-pass" not in page
    assert "smtp://mailer:***@smtp.acme.example:587" in page
    assert "built-in outbox" in page  # the one set-up made
    missing = owner.post(
        "/settings/mailboxes",
        {"name": "X", "from_email": "x@acme.example", "kind": "smtp", "daily_limit": "10"},
    )
    assert missing.status_code == 422
    assert "give the SMTP server's URL" in html.unescape(missing.text)
    outbox = owner.post(
        "/settings/mailboxes",
        {"name": "Trial", "from_email": "t@acme.example", "kind": "outbox", "daily_limit": "10"},
    )
    assert outbox.status_code == 303
    with site.engine.connect() as conn:
        rows = {r.name: r for r in conn.execute(select(mailboxes))}
    assert set(rows) == {"Built-in outbox", "Sales", "Trial"}
    assert rows["Trial"].smtp_url_encrypted is None
    assert rows["Sales"].daily_limit == 150
    assert b"s3cret" not in rows["Sales"].smtp_url_encrypted.encode()

    limit = f"/settings/mailboxes/{rows['Sales'].id}/edit"
    raised = owner.post(limit, {"daily_limit": "300"}, token_from="/settings/mailboxes")
    assert raised.status_code == 303
    bad = owner.post(limit, {"daily_limit": "lots"}, token_from="/settings/mailboxes")
    assert bad.status_code == 422
    mallory = another_account(site)
    theirs = mallory.post(limit, {"daily_limit": "1"}, token_from="/settings/mailboxes")
    assert theirs.status_code == 404
    gone = mallory.post(
        f"/settings/mailboxes/{rows['Sales'].id}/delete", token_from="/settings/mailboxes"
    )
    assert gone.status_code == 404
    assert "sales@acme.example" not in mallory.get("/settings/mailboxes").text
    with site.engine.connect() as conn:
        assert (
            conn.execute(
                select(mailboxes.c.daily_limit).where(mailboxes.c.id == rows["Sales"].id)
            ).scalar()
            == 300
        )


def test_a_mailbox_is_renamed_and_removed_unless_something_was_sent_from_it(site: Site) -> None:
    owner = site.sign_up()
    with site.engine.connect() as conn:
        outbox = conn.execute(select(mailboxes)).one()  # the one set-up made
    edit, delete = (f"/settings/mailboxes/{outbox.id}/{action}" for action in ("edit", "delete"))
    renamed = owner.post(
        edit,
        {"name": "Trials", "from_name": "Ada at Acme", "from_email": "ada@acme.example",
         "daily_limit": "40"},
        token_from="/settings/mailboxes",
    )  # fmt: skip
    assert renamed.status_code == 303
    page = html.unescape(owner.get("/settings/mailboxes").text)
    assert "Trials saved: it sends at most 40 a day" in page
    refused = owner.post(
        edit,
        {"name": "", "from_email": "not an address", "daily_limit": "40"},
        token_from="/settings/mailboxes",
    )
    assert refused.status_code == 422
    with site.engine.connect() as conn:
        row = conn.execute(select(mailboxes).where(mailboxes.c.id == outbox.id)).one()
    assert (row.name, row.from_name, row.from_email, row.daily_limit) == (
        "Trials", "Ada at Acme", "ada@acme.example", 40,
    )  # fmt: skip

    # A campaign sends from it: it stays, and the page says why.
    campaign = owner.post("/campaigns", {"name": "Autumn", "mailbox_id": outbox.id})
    assert campaign.status_code == 303
    kept = owner.post(delete, token_from="/settings/mailboxes")
    assert kept.status_code == 409
    assert "campaigns send from this mailbox" in html.unescape(kept.text)
    with site.engine.connect() as conn:
        assert conn.execute(select(mailboxes.c.id)).scalars().all() == [outbox.id]

    spare = owner.post(
        "/settings/mailboxes",
        {"name": "Spare", "from_email": "spare@acme.example", "kind": "outbox",
         "daily_limit": "10"},
    )  # fmt: skip
    assert spare.status_code == 303
    with site.engine.connect() as conn:
        spare_id = conn.execute(select(mailboxes.c.id).where(mailboxes.c.name == "Spare")).scalar()
    removed = owner.post(f"/settings/mailboxes/{spare_id}/delete", token_from="/settings/mailboxes")
    assert removed.status_code == 303
    assert "Mailbox Spare removed" in owner.get("/settings/mailboxes").text
    with site.engine.connect() as conn:
        assert conn.execute(select(mailboxes.c.id)).scalars().all() == [outbox.id]


def test_a_webhook_endpoint_its_secret_once_and_its_delivery_log(site: Site) -> None:
    owner = site.sign_up()
    refused = owner.post(
        "/settings/webhooks",
        {"url": "http://127.0.0.1:9/hook", "event_types": ["message.opened"]},
    )
    assert refused.status_code == 422
    assert 'value="http://127.0.0.1:9/hook"' in refused.text
    none_chosen = owner.post("/settings/webhooks", {"url": "https://hooks.example.com/pt"})
    assert none_chosen.status_code == 422
    assert "event_types is a non-empty list" in none_chosen.text

    created = owner.post(
        "/settings/webhooks",
        {
            "url": "https://hooks.example.com/pt",
            "event_types": ["message.opened", "message.clicked"],
        },
    )
    assert created.status_code == 200
    secret = _SECRET.search(created.text)
    assert secret is not None
    listing = owner.get("/settings/webhooks").text
    assert secret.group(1) not in listing
    assert "message.opened, message.clicked" in listing
    with site.engine.connect() as conn:
        endpoint = conn.execute(select(webhook_endpoints)).one()
    assert endpoint.url == "https://hooks.example.com/pt"
    assert secret.group(1) not in endpoint.secret_encrypted

    path = f"/settings/webhooks/{endpoint.id}"
    assert "No deliveries yet" in owner.get(path).text
    queued = owner.post(f"{path}/test", token_from=path)
    assert queued.status_code == 303
    log = owner.get(path).text
    assert "webhook.test" in log
    assert ">pending<" in log
    assert "No deliveries delivered yet" in owner.get(f"{path}?status=delivered").text
    # A delivery that failed for good can be sent again from the log.
    with write_transaction(site.engine) as conn:
        conn.execute(
            update(webhook_deliveries).values(status="failed", last_error="connection refused")
        )
    failed = owner.get(f"{path}?status=failed").text
    assert "connection refused" in failed
    retry = re.search(r'action="(/settings/webhooks/[^"]+/retry)"', failed)
    assert retry is not None
    assert owner.post(retry.group(1), token_from=path).status_code == 303
    with site.engine.connect() as conn:
        assert conn.execute(select(webhook_deliveries.c.status)).scalar() == "pending"

    mallory = another_account(site)
    assert mallory.get(path).status_code == 404
    assert mallory.post(f"{path}/delete", token_from="/settings/webhooks").status_code == 404
    removed = owner.post(f"{path}/delete", token_from=path)
    assert removed.status_code == 303
    with site.engine.connect() as conn:
        assert conn.execute(select(webhook_endpoints.c.id)).first() is None
