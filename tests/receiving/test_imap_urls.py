"""IMAP URLs as a mailbox's owner writes them: the API, the command line, and what is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from pixeltrail.cli import main
from pixeltrail.platform.errors import Invalid
from pixeltrail.platform.mail.imap_urls import parse_imap_url
from pixeltrail.web.api.app import mounted_api
from tests.api.conftest import Api, make_settings, serving
from tests.dbs import Database, fresh_database

from ..conftest import SECRET


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "imaps://ana%40acme.example:s%3Acret@imap.example.com",
            "imaps://ana%40acme.example:***@imap.example.com:993",
        ),
        ("IMAP://ana:pw@IMAP.Example.com.", "imap://ana:***@imap.example.com:143"),
        ("imap://ana:pw@[2001:db8::1]:1143", "imap://ana:***@[2001:db8::1]:1143"),
        ("imap://ana:pw@127.0.0.1:1143?starttls=off", "imap://ana:***@127.0.0.1:1143?starttls=off"),
    ],
)
def test_parsed_and_masked(url: str, shown: str) -> None:
    assert parse_imap_url(url, allow_local=True).url(masked=True) == shown


@pytest.mark.parametrize(
    ("url", "allow_local", "reason"),
    [
        ("smtp://ana:pw@imap.example.com", True, "use imap:// (STARTTLS, port 143) or imaps://"),
        ("imaps://imap.example.com", True, "give a user name and a password"),
        ("imaps://ana@imap.example.com", True, "give a user name and a password"),
        ("imaps://ana:pw@imap.example.com/INBOX", True, "no path after the host"),
        ("imaps://ana:pw@imap.example.com:99999", True, "the port is a number"),
        ("imaps://ana:pw@imap.example.com?starttls=off", True, "does not apply to imaps://"),
        ("imap://ana:pw@imap.example.com?starttls=off", True, "would send the password in clear"),
        ("imap://ana:pw@10.0.0.5?starttls=off", True, "would send the password in clear"),
        ("imap://ana:pw@127.0.0.1?starttls=off", False, "PIXELTRAIL_MAIL_ALLOW_LOCAL=1"),
        ("imap://ana:pw@localhost?starttls=maybe", True, "starttls is on or off"),
        ("imap://ana:pw@host .example", True, "cannot contain spaces"),
    ],
)
def test_refused_with_the_reason_never_the_password(
    url: str, allow_local: bool, reason: str
) -> None:
    with pytest.raises(Invalid) as caught:
        parse_imap_url(url, allow_local)
    assert reason in str(caught.value)
    assert str(caught.value).startswith("imap_url: ")
    assert ":pw@" not in str(caught.value)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with fresh_database("sqlite", tmp_path) as database:
        database.migrated()
        yield database


@contextmanager
def api_with(database: Database, tmp_path: Path, **env: str) -> Iterator[Api]:
    settings = make_settings(tmp_path, database.url, **env)
    with (
        serving(mounted_api(database.engine, settings)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield Api(database.engine, settings, client)


SECRET_URL = "imaps://ana%40acme.example:hunter2-secret@127.0.0.1:993"


def test_api_takes_shows_masked_and_removes_an_imap_url(database: Database, tmp_path: Path) -> None:
    with api_with(database, tmp_path, PIXELTRAIL_MAIL_ALLOW_LOCAL="1") as api:
        alice = api.account("alice@acme.example")
        body = {"name": "Sales", "from_email": "ana@acme.example", "imap_url": SECRET_URL}
        created = alice.post("/mailboxes", body)
        assert created.status_code == 201, created.text
        record = created.json()
        assert record["imap_url"] == "imaps://ana%40acme.example:***@127.0.0.1:993"
        assert record["imap_url_error"] is None and record["imap_checked_at"] is None
        listed = alice.get("/mailboxes")
        assert "hunter2" not in created.text + listed.text
        assert listed.json()["items"][0]["imap_url"] == record["imap_url"]
        patched = alice.patch(f"/mailboxes/{record['id']}", {"imap_url": None})
        assert patched.status_code == 200 and patched.json()["imap_url"] is None
        refused = alice.patch(
            f"/mailboxes/{record['id']}", {"imap_url": "imap://ana:hunter2@10.1.1.1?starttls=off"}
        )
        assert refused.status_code == 422
        assert "in clear" in refused.text and "hunter2" not in refused.text


def test_api_refuses_a_local_server_unless_allowed(database: Database, tmp_path: Path) -> None:
    with api_with(database, tmp_path) as api:
        alice = api.account("alice@acme.example")
        body = {"name": "Sales", "from_email": "ana@acme.example", "imap_url": SECRET_URL}
        refused = alice.post("/mailboxes", body)
        assert refused.status_code == 422
        assert "loopback" in refused.text and "PIXELTRAIL_MAIL_ALLOW_LOCAL=1" in refused.text
        assert "hunter2" not in refused.text
        assert alice.get("/mailboxes").json()["items"] == []


def test_cli_adds_changes_and_refuses_imap_urls(database: Database, tmp_path: Path) -> None:
    env = {
        "PIXELTRAIL_SECRET_KEY": SECRET,
        "PIXELTRAIL_DATA_DIR": str(tmp_path / "data"),
        "PIXELTRAIL_DATABASE_URL": database.url,
    }
    runner = CliRunner()
    made = runner.invoke(
        main, ["account", "create", "--name", "Acme", "--owner-email", "a@acme.example"], env=env
    )
    assert made.exit_code == 0, made.output
    add = ["mailboxes", "add", "--name", "Sales", "--from-email", "ana@acme.example"]
    refused = runner.invoke(main, [*add, "--imap-url", "-"], input=SECRET_URL + "\n", env=env)
    assert refused.exit_code != 0
    assert "loopback" in refused.output and "hunter2" not in refused.output
    local = {**env, "PIXELTRAIL_MAIL_ALLOW_LOCAL": "1"}
    added = runner.invoke(
        main, [*add, "--imap-url", "-", "--json"], input=SECRET_URL + "\n", env=local
    )
    assert added.exit_code == 0, added.output
    record = json.loads(added.output)
    assert record["imap_url"] == "imaps://ana%40acme.example:***@127.0.0.1:993"
    listed = runner.invoke(main, ["mailboxes", "list"], env=local)
    assert "reads imaps://ana%40acme.example:***@127.0.0.1:993" in listed.output
    assert "hunter2" not in added.output + listed.output
    stopped = runner.invoke(main, ["mailboxes", "set-imap-url", record["id"], "none"], env=local)
    assert stopped.exit_code == 0, stopped.output
    assert "reads" not in stopped.output
    bad = runner.invoke(main, ["mailboxes", "set-imap-url", record["id"], "ftp://x"], env=local)
    assert bad.exit_code != 0 and "use imap://" in bad.output
