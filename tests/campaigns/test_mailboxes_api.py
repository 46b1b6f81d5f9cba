"""Mailboxes over the API: the outbox by default, SMTP passwords never shown or logged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from pixeltrail.platform.errors import Conflict
from pixeltrail.platform.mail.mailboxes import get_mailbox, get_mailbox_smtp_url, mailbox_endpoint
from pixeltrail.store.schema import mailboxes

from ..api.conftest import make_settings
from .conftest import Api, new_campaign, new_mailbox

PASSWORD = "Tr0ub4dor-xyzzy"
SMTP_URL = f"smtp://ada%40acme.example:{PASSWORD}@smtp.acme.example"


def test_a_new_mailbox_is_the_outbox_unless_given_smtp(api: Api) -> None:
    alice = api.account("alice@acme.example")
    outbox = new_mailbox(alice, from_name="Ada at Acme")
    assert outbox["kind"] == "outbox"
    assert outbox["smtp_url"] is None
    assert outbox["daily_limit"] == 200
    assert outbox["from_email"] == "sales@acme.example"
    smtp = new_mailbox(alice, smtp_url=SMTP_URL, daily_limit=50)
    assert smtp["kind"] == "smtp"
    assert smtp["smtp_url"] == "smtp://ada%40acme.example:***@smtp.acme.example:587"
    assert smtp["daily_limit"] == 50
    listed = alice.get("/mailboxes").json()
    assert [m["id"] for m in listed["items"]] == [outbox["id"], smtp["id"]]
    assert listed["next_cursor"] is None
    page = alice.get("/mailboxes", limit=1).json()
    assert [m["id"] for m in page["items"]] == [outbox["id"]]
    rest = alice.get("/mailboxes", limit=1, cursor=page["next_cursor"]).json()
    assert [m["id"] for m in rest["items"]] == [smtp["id"]]


def test_the_password_never_leaves_in_a_response_a_log_or_the_database(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = api.account("alice@acme.example")
    created = alice.post(
        "/mailboxes", {"name": "S", "from_email": "a@acme.example", "smtp_url": SMTP_URL}
    )
    mailbox_id = created.json()["id"]
    responses = [
        created,
        alice.get("/mailboxes"),
        alice.get(f"/mailboxes/{mailbox_id}"),
        alice.patch(f"/mailboxes/{mailbox_id}", {"daily_limit": 10}),
        # Bad requests around the password: neither the error nor the log may repeat it.
        alice.patch(f"/mailboxes/{mailbox_id}", {"smtp_url": SMTP_URL + "/x"}),
        alice.patch(f"/mailboxes/{mailbox_id}", {"smtp_url": SMTP_URL + "?starttls=off"}),
        alice.patch(f"/mailboxes/{mailbox_id}", {"smtp_url": SMTP_URL, "daily_limit": "x"}),
        alice.post("/mailboxes", {"name": "S", "from_email": "nope", "smtp_url": SMTP_URL}),
        api.client.get("/api/v1/openapi.json"),
    ]
    assert [r.status_code for r in responses[:4]] == [201, 200, 200, 200]
    assert all(r.status_code == 422 for r in responses[4:8])
    for r in responses:
        assert PASSWORD not in r.text
    assert caplog.records, "the server logged nothing at DEBUG: this test would prove nothing"
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
        assert PASSWORD not in str(record.args)
    with api.engine.connect() as conn:
        stored = conn.execute(select(mailboxes.c.smtp_url_encrypted)).scalar_one()
    assert PASSWORD not in stored and "smtp.acme.example" not in stored
    with api.engine.connect() as conn:
        url = get_mailbox_smtp_url(conn, alice.account_id, mailbox_id, api.settings)
        endpoint = mailbox_endpoint(conn, alice.account_id, mailbox_id, api.settings)
    assert url == f"smtp://ada%40acme.example:{PASSWORD}@smtp.acme.example:587"
    assert endpoint is not None
    assert (endpoint.username, endpoint.password) == ("ada@acme.example", PASSWORD)
    assert PASSWORD not in repr(endpoint)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"from_email": "a@acme.example"}, "name"),
        ({"name": "S"}, "from_email"),
        ({"name": "S", "from_email": "not an address"}, "from_email"),
        (
            {"name": "S", "from_email": "a@acme.example", "from_name": "Ada\r\nBcc: x@y.z"},
            "from_name",
        ),
        ({"name": "S", "from_email": "a@acme.example", "smtp_url": "ftp://h"}, "smtp_url"),
        ({"name": "S", "from_email": "a@acme.example", "smtp_url": 5}, "smtp_url"),
        ({"name": "S", "from_email": "a@acme.example", "daily_limit": 0}, "daily_limit"),
        ({"name": "S", "from_email": "a@acme.example", "daily_limit": "9"}, "daily_limit"),
        ({"name": "S", "from_email": "a@acme.example", "password": "x"}, "password"),
    ],
)
def test_bad_mailboxes_name_the_field(api: Api, body: dict[str, object], field: str) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post("/mailboxes", body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert alice.get("/mailboxes").json()["items"] == []


def test_change_switch_to_outbox_and_delete(api: Api) -> None:
    alice = api.account("alice@acme.example")
    mailbox = new_mailbox(alice, smtp_url=SMTP_URL)
    r = alice.patch(f"/mailboxes/{mailbox['id']}", {"smtp_url": "smtps://u:p@mail.example"})
    assert r.json()["smtp_url"] == "smtps://u:***@mail.example:465"
    r = alice.patch(f"/mailboxes/{mailbox['id']}", {"smtp_url": None, "from_name": "Ada"})
    assert (r.json()["kind"], r.json()["smtp_url"], r.json()["from_name"]) == (
        "outbox",
        None,
        "Ada",
    )
    campaign = new_campaign(alice, mailbox_id=mailbox["id"])
    r = alice.delete(f"/mailboxes/{mailbox['id']}")
    assert r.status_code == 409
    assert "campaigns send from this mailbox" in r.json()["error"]["message"]
    assert campaign["mailbox_id"] == mailbox["id"]
    spare = new_mailbox(alice)
    assert alice.delete(f"/mailboxes/{spare['id']}").status_code == 204
    assert alice.get(f"/mailboxes/{spare['id']}").status_code == 404


def test_another_accounts_mailbox_answers_exactly_like_a_missing_one(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    mailbox = new_mailbox(alice, smtp_url=SMTP_URL)
    for path in [f"/mailboxes/{mailbox['id']}", "/mailboxes/mbx_doesnotexist0000"]:
        answers = [
            bob.get(path),
            bob.patch(path, {"name": "mine now"}),
            bob.patch(path, {"smtp_url": None}),
            bob.delete(path),
        ]
        assert [r.status_code for r in answers] == [404] * 4
        assert {r.json()["error"]["message"] for r in answers} == {"no such mailbox"}
    assert bob.get("/mailboxes").json()["items"] == []
    assert alice.get(f"/mailboxes/{mailbox['id']}").json()["smtp_url"].startswith("smtp://ada")


def test_a_key_removed_from_the_ring_is_reported_not_crashed(api: Api, tmp_path: Path) -> None:
    alice = api.account("alice@acme.example")
    mailbox = new_mailbox(alice, smtp_url=SMTP_URL)
    other = make_settings(
        tmp_path, "sqlite://", PIXELTRAIL_SECRET_KEY="another-key-0123456789abcdef"
    )
    with api.engine.connect() as conn:
        shown = get_mailbox(conn, alice.account_id, mailbox["id"], other)
        with pytest.raises(Conflict, match="no longer in PIXELTRAIL_SECRET_KEY"):
            get_mailbox_smtp_url(conn, alice.account_id, mailbox["id"], other)
    assert shown.kind == "smtp" and shown.smtp_url_masked is None
    assert shown.smtp_url_error is not None and "set the secret again" in shown.smtp_url_error
    rotated = make_settings(
        tmp_path,
        "sqlite://",
        PIXELTRAIL_SECRET_KEY=f"another-key-0123456789abcdef,{api.settings.secret_keys}",
    )
    with api.engine.connect() as conn:
        assert get_mailbox(conn, alice.account_id, mailbox["id"], rotated).smtp_url_masked
