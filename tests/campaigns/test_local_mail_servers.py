"""Mailboxes whose mail server is this host or an internal network: refused when saved (API,
CLI) unless the instance sets PIXELTRAIL_MAIL_ALLOW_LOCAL=1; the rule itself, name by name."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from pixeltrail.cli import main
from pixeltrail.platform.errors import Invalid
from pixeltrail.platform.mail.servers import check_mail_server
from pixeltrail.web.api.app import mounted_api

from ..api.conftest import make_settings, serving
from ..conftest import SECRET
from ..dbs import Database
from ..sending.conftest import machine_name
from .conftest import Api, new_mailbox

HINT = "only PIXELTRAIL_MAIL_ALLOW_LOCAL=1 allows mail servers on this host or its network"
REFUSED = [
    ("smtp://127.0.0.1:25?starttls=off", "127.0.0.1 is a loopback address (this server itself)"),
    ("smtp://localhost:1025?starttls=off", "localhost is this server itself"),
    ("smtp://mail.localhost?starttls=off", "mail.localhost is this server itself"),
    ("smtp://u:p@10.0.0.5:587", "10.0.0.5 is a private address (an internal network)"),
    ("smtps://u:p@192.168.1.20", "192.168.1.20 is a private address (an internal network)"),
    ("smtp://[::1]:25?starttls=off", "::1 is a loopback address (this server itself)"),
    ("smtp://[fd12:3456::1]:25?starttls=off", "fd12:3456::1 is a private address"),
    ("smtp://[::ffff:127.0.0.1]?starttls=off", "::ffff:127.0.0.1 is a loopback address"),
    ("smtp://[2002:7f00:1::]?starttls=off", "2002:7f00:1:: carries 127.0.0.1, which is a loopback"),
]
LINK_LOCAL = "smtp://169.254.169.254:25?starttls=off"


@pytest.fixture
def allowing_api(database: Database, tmp_path: Path) -> Iterator[Api]:
    """The API of an instance that relays through its own host (PIXELTRAIL_MAIL_ALLOW_LOCAL=1)."""
    settings = make_settings(tmp_path, database.url, PIXELTRAIL_MAIL_ALLOW_LOCAL="1")
    with (
        serving(mounted_api(database.engine, settings)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield Api(database.engine, settings, client)


@pytest.mark.parametrize(("smtp_url", "reason"), REFUSED)
def test_a_mail_server_on_this_host_or_an_internal_network_is_refused(
    api: Api, smtp_url: str, reason: str
) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post(
        "/mailboxes", {"name": "Relay", "from_email": "s@acme.example", "smtp_url": smtp_url}
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "smtp_url"
    assert error["message"].startswith(f"smtp_url: the mail server {reason}")
    assert error["message"].endswith(HINT)
    assert alice.get("/mailboxes").json()["items"] == []


def test_a_name_resolving_to_this_host_is_refused(api: Api) -> None:
    name = machine_name()
    alice = api.account("alice@acme.example")
    url = f"smtp://{name}:25?starttls=off"
    r = alice.post("/mailboxes", {"name": "Relay", "from_email": "s@acme.example", "smtp_url": url})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"].startswith(f"smtp_url: the mail server {name} resolves to")
    assert alice.get("/mailboxes").json()["items"] == []


def test_link_local_addresses_are_refused_even_when_local_servers_are_allowed(
    api: Api, allowing_api: Api
) -> None:
    for instance in (api, allowing_api):
        alice = instance.account(f"alice-{id(instance)}@acme.example")
        r = alice.post(
            "/mailboxes", {"name": "M", "from_email": "s@acme.example", "smtp_url": LINK_LOCAL}
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["message"] == (
            "smtp_url: the mail server 169.254.169.254 is a link-local address "
            "(cloud metadata services live there)"
        )


def test_a_mailbox_cannot_be_changed_to_an_internal_mail_server(api: Api) -> None:
    alice = api.account("alice@acme.example")
    mailbox = new_mailbox(alice, smtp_url="smtps://u:p@mail.acme.example")
    r = alice.patch(f"/mailboxes/{mailbox['id']}", {"smtp_url": "smtps://u:p@10.1.1.1"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "smtp_url"
    kept = alice.get(f"/mailboxes/{mailbox['id']}").json()
    assert kept["smtp_url"] == "smtps://u:***@mail.acme.example:465"


def test_an_instance_that_allows_local_mail_servers_saves_them(allowing_api: Api) -> None:
    alice = allowing_api.account("alice@acme.example")
    for smtp_url, _ in REFUSED:
        mailbox = new_mailbox(alice, smtp_url=smtp_url)
        assert mailbox["kind"] == "smtp"
    url = f"smtp://{machine_name()}:25?starttls=off"
    assert new_mailbox(alice, smtp_url=url)["kind"] == "smtp"


def test_the_cli_applies_the_same_rule(database: Database, tmp_path: Path) -> None:
    env = {
        **database.env,
        "PIXELTRAIL_DATA_DIR": str(tmp_path / "data"),
        "PIXELTRAIL_SECRET_KEY": SECRET,
    }
    runner = CliRunner()
    created = runner.invoke(main, ["account", "create", "--name", "Acme", "--owner-email",
                                   "o@acme.example", "--json"], env=env)  # fmt: skip
    assert created.exit_code == 0, created.output
    add = ["mailboxes", "add", "--name", "Relay", "--from-email", "s@acme.example",
           "--smtp-url", "smtp://127.0.0.1:25?starttls=off"]  # fmt: skip
    refused = runner.invoke(main, add, env=env)
    assert refused.exit_code == 1
    assert "127.0.0.1 is a loopback address (this server itself)" in refused.output
    allowed = runner.invoke(main, [*add, "--json"], env={**env, "PIXELTRAIL_MAIL_ALLOW_LOCAL": "1"})
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.output)["smtp_url"] == "smtp://127.0.0.1:25?starttls=off"


def test_every_address_a_name_resolves_to_must_be_public() -> None:
    def resolver(host: str, _port: int) -> list[str]:
        return {"mail.example": ["9.9.9.9", "fc00::7"], "ok.example": ["9.9.9.9"]}[host]

    with pytest.raises(Invalid, match=r"mail\.example resolves to fc00::7, which is a private"):
        check_mail_server("mail.example", 587, False, "smtp_url", resolver)
    check_mail_server("mail.example", 587, True, "smtp_url", resolver)
    check_mail_server("ok.example", 587, False, "smtp_url", resolver)


def test_a_name_that_does_not_resolve_in_time_is_saved_and_checked_when_connecting() -> None:
    def unresolvable(_host: str, _port: int) -> list[str]:
        raise OSError("Name or service not known")

    def slow(_host: str, _port: int) -> list[str]:
        time.sleep(2)
        return ["127.0.0.1"]

    check_mail_server("later.example", 587, False, "smtp_url", unresolvable)
    started = time.monotonic()
    check_mail_server("slow.example", 587, False, "smtp_url", slow, lookup_seconds=0.1)
    assert time.monotonic() - started < 1
