"""`pixeltrail domains add|list|verify|remove` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pixeltrail.cli import main
from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.store.db import write_transaction

from ..dbs import Database
from .conftest import CNAME_TARGET, INSTANCE_URL, FakeDns

HOST = "track.acme.test"


@pytest.fixture
def env(database: Database, dns: FakeDns, tmp_path: Path) -> dict[str, str]:
    return {
        **database.env,
        "PIXELTRAIL_DATA_DIR": str(tmp_path / "data"),
        "PIXELTRAIL_BASE_URL": INSTANCE_URL,
        "PIXELTRAIL_CNAME_TARGET": CNAME_TARGET,
        "PIXELTRAIL_DNS_SERVERS": dns.server,
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["domains", *args], env=env)


def new_account(database: Database, email: str) -> str:
    with write_transaction(database.engine) as conn:
        account, _ = create_account(conn, "Acme", email)
    return account.id


def test_add_verify_list_remove(env: dict[str, str], database: Database, dns: FakeDns) -> None:
    new_account(database, "alice@acme.example")
    added = run(env, "add", "Track.Acme.Test")
    assert added.exit_code == 0, added.output
    assert f"{HOST}.  CNAME  {CNAME_TARGET}." in added.output
    domain_id = added.output.split("(", 1)[1].split(")", 1)[0]
    assert domain_id.startswith("dom_")
    assert f"pixeltrail domains verify {domain_id}" in added.output

    failed = run(env, "verify", domain_id)
    assert failed.exit_code == 1
    assert f"{domain_id}  {HOST}  failed" in failed.output
    assert "no such name: create a CNAME record" in failed.output

    dns.cname(HOST, CNAME_TARGET)
    verified = run(env, "verify", domain_id, "--json")
    assert verified.exit_code == 0, verified.output
    record = json.loads(verified.output)
    assert (record["id"], record["status"], record["last_error"]) == (domain_id, "verified", None)

    run(env, "add", "second.acme.test")
    listed = run(env, "list", "--json")
    assert listed.exit_code == 0
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["hostname"], r["status"]) for r in rows] == [
        (HOST, "verified"),
        ("second.acme.test", "pending"),
    ]
    assert rows[1]["dns_record"] == {
        "type": "CNAME",
        "name": "second.acme.test",
        "value": CNAME_TARGET,
    }

    removed = run(env, "remove", domain_id)
    assert removed.exit_code == 0
    assert f"removed {HOST}" in removed.output
    assert [
        json.loads(line)["hostname"] for line in run(env, "list", "--json").output.splitlines()
    ] == ["second.acme.test"]
    again = run(env, "remove", domain_id)
    assert again.exit_code == 1
    assert "no such tracking domain" in again.output


def test_accounts_are_named_when_there_are_several(env: dict[str, str], database: Database) -> None:
    alice = new_account(database, "alice@acme.example")
    bob = new_account(database, "bob@other.example")
    unnamed = run(env, "add", HOST)
    assert unnamed.exit_code == 1
    assert "several accounts" in unnamed.output
    record = json.loads(run(env, "add", HOST, "--account", alice, "--json").output)
    assert record["status"] == "pending"
    theirs = run(env, "add", HOST, "--account", bob)
    assert theirs.exit_code == 1
    assert "already in use on this instance" in theirs.output
    assert alice not in theirs.output
    for command in ("verify", "remove"):
        other = run(env, command, record["id"], "--account", bob)
        assert other.exit_code == 1
        assert "no such tracking domain" in other.output
    assert run(env, "list", "--account", bob).output.startswith("no tracking domains yet")


@pytest.mark.parametrize(
    ("hostname", "words"),
    [("203.0.113.7", "is an IP address"), ("https://t.acme.test/x", "has a scheme")],
)
def test_bad_hostnames_are_one_line_errors(
    env: dict[str, str], database: Database, hostname: str, words: str
) -> None:
    new_account(database, "alice@acme.example")
    result = run(env, "add", hostname)
    assert result.exit_code == 1
    assert words in result.output
    assert "Traceback" not in result.output


def test_unusable_dns_servers_name_the_setting(env: dict[str, str], database: Database) -> None:
    new_account(database, "alice@acme.example")
    domain_id = json.loads(run(env, "add", HOST, "--json").output)["id"]
    result = run({**env, "PIXELTRAIL_DNS_SERVERS": "dns.example:53"}, "verify", domain_id)
    assert result.exit_code == 1
    assert "PIXELTRAIL_DNS_SERVERS" in result.output
    assert "Traceback" not in result.output
