"""`pixeltrail contacts ...` as a user runs it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pixeltrail.cli import main
from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.store.db import write_transaction

from ..dbs import Database


@pytest.fixture
def env(database: Database, tmp_path: Path) -> dict[str, str]:
    return {**database.env, "PIXELTRAIL_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def account(database: Database) -> str:
    with write_transaction(database.engine) as conn:
        created, _ = create_account(conn, "Acme", "owner@acme.example")
    return created.id


def run(env: dict[str, str], *args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["contacts", *args], env=env, input=stdin)


def test_import_reports_progress_then_each_rejected_row(
    env: dict[str, str], account: str, tmp_path: Path
) -> None:
    rows = "".join(f"user{i}@example.com,User{i}\n" for i in range(2999))
    path = tmp_path / "people.csv"
    path.write_text("email,first_name\n" + rows + "broken@,Broken\n")
    result = run(env, "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "read 3000: created 2999, updated 0, rejected 1, duplicates 0",
        "line 3001: 'broken@' is not a valid email address: There must be something after "
        "the @-sign.",
    ]
    progress = result.stderr.splitlines()
    assert progress[:3] == [
        "Checking: 1,000 of 3,000 rows",
        "Checking: 2,000 of 3,000 rows",
        "Checking: 3,000 of 3,000 rows",
    ]
    assert progress[-1] == "Saving: 2,999 of 2,999 rows"


def test_import_counts_duplicates_apart_with_their_lines(
    env: dict[str, str], account: str, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "email,first_name\n"
        "ada@example.com,Ada\n"
        "grace@example.com,Grace\n"
        "ADA@example.com,Augusta\n"
        "broken@,Broken\n"
    )
    result = run(env, "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "read 4: created 2, updated 0, rejected 1, duplicates 1",
        "line 4: ada@example.com is already on line 2: the first row of an address is "
        "imported, this one is left out",
        "line 5: 'broken@' is not a valid email address: There must be something after the @-sign.",
    ]
    listed = run(env, "list", "--search", "ada").stdout
    assert "Ada" in listed and "Augusta" not in listed


def test_import_json_output_and_mapping(env: dict[str, str], account: str, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("Contact;Org=Name;Plan\nada@example.com;Engines;gold\nbad;x;y\n")
    result = run(
        env, "import", str(path), "--map", "Contact=email", "--map", "Org=Name=company", "--json"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    body = json.loads(result.stdout)
    assert set(body) == {"read", "created", "updated", "rejected", "duplicates"}
    assert (body["created"], body["updated"]) == (1, 0)
    assert body["rejected"] == [{"line": 3, "reason": body["rejected"][0]["reason"]}]
    listed = run(env, "list", "--json")
    contact = json.loads(listed.stdout)
    assert (contact["company"], contact["fields"]) == ("Engines", {"plan": "gold"})
    again = run(env, "import", "-", "--map", "Contact=email", "--json", stdin=path.read_bytes())
    assert json.loads(again.stdout)["updated"] == 1


def test_a_file_that_cannot_be_read_imports_nothing(
    env: dict[str, str], account: str, tmp_path: Path
) -> None:
    missing = run(env, "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1
    assert "cannot read" in missing.output and "No such file" in missing.output
    assert "nothing was imported" in missing.output
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"email,name\na@example.com,Ann\nb@example.com,Ren\xe9e\n")
    result = run(env, "import", str(latin))
    assert result.exit_code == 1
    assert "not UTF-8 text: byte 0xE9 on line 3" in result.output
    assert "Traceback" not in result.output
    assert run(env, "list").stdout == ""
    undefined = run(env, "import", str(latin), "--encoding", "undefined")
    assert undefined.exit_code == 1
    assert "'undefined' is not a character set" in undefined.output
    assert "Traceback" not in undefined.output
    fixed = run(env, "import", str(latin), "--encoding", "windows-1252", "--json")
    assert json.loads(fixed.stdout)["created"] == 2
    bad = run(env, "import", str(latin), "--map", "no-equals-sign")
    assert bad.exit_code == 1 and "--map takes NAME=VALUE" in bad.output


def test_add_list_search_export_and_suppress(
    env: dict[str, str], account: str, tmp_path: Path
) -> None:
    added = run(env, "add", "Ada@Example.com", "--first-name", "Ada", "--field", "plan=gold")
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("created ct_")
    assert run(env, "add", "ada@example.com", "--company", "=1+1").stdout.startswith("updated")
    run(env, "add", "grace@example.com", "--first-name", "Grace")
    assert [
        line.split()[1] for line in run(env, "list", "--search", "ADA").stdout.splitlines()
    ] == ["ada@example.com"]
    suppressed = run(env, "suppress", "grace@example.com", "--reason", "bounced")
    assert suppressed.stdout == "grace@example.com suppressed (bounced)\n"
    assert "[suppressed: bounced]" in run(env, "list").stdout
    records = [json.loads(line) for line in run(env, "suppressions", "--json").stdout.splitlines()]
    assert [(r["email"], r["reason"]) for r in records] == [("grace@example.com", "bounced")]
    out = tmp_path / "out.csv"
    exported = run(env, "export", str(out))
    assert exported.exit_code == 0 and "2 contacts written" in exported.stderr
    text = out.read_bytes().decode("utf-8-sig")
    assert ",'=1+1," in text and "fields.plan" in text.splitlines()[0]
    assert run(env, "unsuppress", "grace@example.com").exit_code == 0
    assert run(env, "suppress", "x@example.com", "--reason", "unsubscribed").exit_code == 0
    refused = run(env, "unsuppress", "x@example.com")
    assert refused.exit_code == 1 and "only the recipient" in refused.output


def test_several_accounts_need_account(
    env: dict[str, str], account: str, database: Database
) -> None:
    with write_transaction(database.engine) as conn:
        other, _ = create_account(conn, "Other", "owner@other.example")
    result = run(env, "add", "a@example.com")
    assert result.exit_code == 1 and "--account" in result.output
    assert run(env, "add", "a@example.com", "--account", other.id).exit_code == 0
    assert run(env, "list", "--account", account).stdout == ""
    assert "a@example.com" in run(env, "list", "--account", other.id).stdout
