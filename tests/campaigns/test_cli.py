"""`pixeltrail mailboxes ...` and `pixeltrail campaigns ...` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pixeltrail.cli import main

from ..conftest import SECRET
from ..dbs import Database
from .conftest import STEP, add_contact, add_domain

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def env(database: Database, tmp_path: Path) -> dict[str, str]:
    return {
        **database.env,
        "PIXELTRAIL_DATA_DIR": str(tmp_path / "data"),
        "PIXELTRAIL_SECRET_KEY": SECRET,
    }


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


def run_json(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    result = run(env, *args, "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_mailboxes_and_a_campaign_from_start_to_pause(
    env: dict[str, str], database: Database, tmp_path: Path
) -> None:
    account = run_json(
        env, "account", "create", "--name", "Acme", "--owner-email", "o@acme.example"
    )
    url = f"smtp://ada:{PASSWORD}@smtp.acme.example"
    mailbox = run_json(
        env, "mailboxes", "add", "--name", "Sales", "--from-email", "s@acme.example",
        "--smtp-url", "-", stdin=url + "\n",
    )  # fmt: skip
    assert mailbox["smtp_url"] == "smtp://ada:***@smtp.acme.example:587"
    outbox = run(env, "mailboxes", "add", "--name", "Test", "--from-email", "t@acme.example")
    assert outbox.exit_code == 0 and "built-in outbox" in outbox.output
    listed = run(env, "mailboxes", "list")
    assert listed.exit_code == 0
    assert "smtp://ada:***@smtp.acme.example:587" in listed.output
    assert PASSWORD not in listed.output + mailbox["smtp_url"]

    body = {"name": "Q1", "mailbox_id": mailbox["id"], "steps": [STEP, {**STEP, "delay_days": 3}]}
    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps(body))
    campaign = run_json(env, "campaigns", "create", str(spec))
    cid = campaign["id"]
    assert (campaign["status"], campaign["settings"]["track_opens"]) == ("draft", True)
    shown = run(env, "campaigns", "show", cid)
    assert "step 2  +3d  Hi {{ first_name }}" in shown.output
    assert cid in run(env, "campaigns", "list").output

    refused = run(env, "campaigns", "settings", cid, "--track-clicks")
    assert refused.exit_code == 1
    assert "click tracking needs a verified custom tracking domain" in refused.output
    add_domain(database.engine, account["account_id"], "t.acme.example", status="verified")
    changed = run_json(env, "campaigns", "settings", cid, "--track-clicks", "--no-track-opens")
    assert (changed["track_clicks"], changed["track_opens"]) == (True, False)
    assert changed["applied_to_unscheduled"] == 0
    assert changed["stop_on_reply"] is True
    kept_on = run_json(env, "campaigns", "settings", cid, "--no-stop-on-reply")
    assert (kept_on["stop_on_reply"], kept_on["track_clicks"]) == (False, True)

    contact = add_contact(database.engine, account["account_id"], "ada@example.com")
    counts = run_json(env, "campaigns", "add-contacts", cid, "-", stdin=f"{contact}\n")
    assert counts == {"enrolled": 1, "already_enrolled": 0, "suppressed": 0}
    assert run_json(env, "campaigns", "settings", cid)["track_clicks"] is True
    assert run_json(env, "campaigns", "launch", cid)["status"] == "active"
    assert run_json(env, "campaigns", "pause", cid)["status"] == "paused"
    assert run_json(env, "campaigns", "resume", cid)["status"] == "active"
    again = run(env, "campaigns", "launch", cid)
    assert again.exit_code == 1
    assert "cannot launch this campaign: it is already active" in again.output


def test_bad_input_is_an_error_naming_the_field(env: dict[str, str], tmp_path: Path) -> None:
    run_json(env, "account", "create", "--name", "Acme", "--owner-email", "o@acme.example")
    bad_url = run(
        env, "mailboxes", "add", "--name", "S", "--from-email", "s@acme.example",
        "--smtp-url", f"smtp://ada:{PASSWORD}@h.example?starttls=off",
    )  # fmt: skip
    assert bad_url.exit_code == 1
    assert "password in clear" in bad_url.output and PASSWORD not in bad_url.output
    mailbox = run_json(env, "mailboxes", "add", "--name", "S", "--from-email", "s@acme.example")
    spec = tmp_path / "campaign.json"
    for content, expected in [
        ("{nope", "is not valid JSON"),
        (json.dumps({"name": "Q1", "mailbox_id": mailbox["id"], "colour": 1}), "'colour'"),
        (
            json.dumps(
                {"name": "Q1", "mailbox_id": mailbox["id"], "steps": [{**STEP, "html": "{{ x }}"}]}
            ),
            "step 1 html, line 1: unknown variable 'x'",
        ),
        (json.dumps({"name": "Q1", "mailbox_id": "mbx_nope"}), "no such mailbox"),
    ]:
        spec.write_text(content)
        result = run(env, "campaigns", "create", str(spec))
        assert result.exit_code == 1, content
        assert expected in result.output
        assert "Traceback" not in result.output
    missing = run(env, "campaigns", "show", "cmp_nope")
    assert (missing.exit_code, "no such campaign" in missing.output) == (1, True)
