"""`pixeltrail report CAMPAIGN [--json|--csv] [--account ID]`, as a user runs it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result

from pixeltrail.cli import main

from ..api.conftest import Api, Tenant
from ..dbs import Database
from .conftest import LINKS, SENT, Campaign, H
from .replies_story import ANN_TEXT, add_inbound, tell_replies

Story = tuple[Api, Tenant, Campaign]


def run(database: Database, tmp_path: Path, *args: str) -> Result:
    env = {**database.env, "PIXELTRAIL_DATA_DIR": str(tmp_path / "cli-data")}
    return CliRunner().invoke(main, ["report", *args], env=env)


def test_the_report_for_people(story: Story, database: Database, tmp_path: Path) -> None:
    _, _, campaign = story
    result = run(database, tmp_path, campaign.id)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"Spring launch ({campaign.id}); times in Europe/Paris" in out
    assert "Sent 7 messages to 7 recipients; 1 failed, 1 bounced (14.3%), 1 unsubscribed" in out
    assert "Opens     people   4 unique (57.1%), 6 total (through image proxies: 1 unique" in out
    assert "machines 2 unique, 2 total" in out
    assert "apple_mpp  Apple Mail Privacy Protection: user agent is exactly 'Mozilla/5.0'" in out
    assert "Clicks    people   2 unique (28.6%), 2 total (click to open: 50.0%)" in out
    assert "scanner    honeypot link clicked (invisible to people)" in out
    assert f"1             1         1  {LINKS[2]}" in out
    lines = out.splitlines()
    ann = next(line for line in lines if "ann@example.com" in line)
    # First open 23:00 UTC on the 28th is midnight in Paris; the last, 03:00 UTC, is 05:00 CEST.
    assert ann.split() == [
        "ann@example.com", "2", "1", "2026-03-29", "00:00", "2026-03-29", "05:00", "0/0",
        "0", "-", "-",
    ]  # fmt: skip
    bob = next(line for line in lines if "bob@example.com" in line)
    assert bob.split()[1:] == ["0", "0", "-", "-", "1/0", "0", "-", "-"]
    assert "Replies   people   0 replied (0.0%); 4 read (57.1%)" in out
    assert "(no replies)" in out


def test_the_report_shows_replies_steps_and_sequences(
    story: Story, database: Database, tmp_path: Path
) -> None:
    _, _, campaign = story
    tell_replies(campaign)
    hostile = "Call me\r\n\x1b[2J\x1b]0;owned\x07 tomorrow"
    add_inbound(campaign, "gus", "reply", SENT + 8 * H, subject="Re:\x1b[31m red", text=hostile)
    result = run(database, tmp_path, campaign.id)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Replies   people   5 replied (71.4%); 6 read (85.7%)" in out
    lines = out.splitlines()
    steps = lines.index("Steps     step     sent   opened  clicked  replied  bounced  unsubscribed")
    assert [line.split() for line in lines[steps + 1 : steps + 3]] == [
        ["1", "7", "4", "2", "4", "1", "1"],
        ["2", "2", "0", "0", "1", "1", "0"],
    ]
    bob = next(line for line in lines if line.lstrip().startswith("bob@example.com"))
    # two replies, the first at 23:00 UTC: midnight in Paris; his sequence ended replied
    assert bob.split()[-4:] == ["2", "2026-03-29", "00:00", "replied"]
    hal = next(line for line in lines if line.lstrip().startswith("hal@example.com"))
    assert hal.split()[-1] == "bounced"
    # each reply with its time, sender and subject, its text on one line below
    at = lines.index("          2026-03-29 06:00  ann@example.com  Re: Spring")
    assert lines[at + 1] == f"            {ANN_TEXT}"
    # control characters of a reply never reach the terminal
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "            Call me [2J ]0;owned tomorrow" in lines


def test_json_holds_the_steps(story: Story, database: Database, tmp_path: Path) -> None:
    _, _, campaign = story
    tell_replies(campaign)
    document = json.loads(run(database, tmp_path, campaign.id, "--json").output)
    assert [step["replied"] for step in document["steps"]] == [3, 1]
    assert document["summary"]["replied"] == 4
    bob = next(row for row in document["contacts"] if row["email"] == "bob@example.com")
    assert [reply["text"] for reply in bob["replies"]] == ["Interested.", "Also: pricing?"]


def test_json_holds_the_summary_links_and_every_contact(
    story: Story, database: Database, tmp_path: Path
) -> None:
    _, _, campaign = story
    result = run(database, tmp_path, campaign.id, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document) == {"summary", "steps", "links", "contacts"}
    assert document["summary"]["opens"]["human"]["unique"] == 4
    assert [link["destination"] for link in document["links"]] == [LINKS[2], LINKS[1], LINKS[3]]
    rows = {row["email"]: row for row in document["contacts"]}
    assert len(rows) == 7
    assert rows["ann@example.com"]["clicks"][0]["at"] == "2026-03-28T23:00:30.000Z"


def test_csv_is_the_per_contact_export(story: Story, database: Database, tmp_path: Path) -> None:
    _, _, campaign = story
    result = run(database, tmp_path, campaign.id, "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 7
    assert {row["email"]: row["open_count"] for row in rows}["dee@example.com"] == "2"
    assert "reply_count" in rows[0] and "sequence_status" in rows[0]


def test_mistakes_are_said_plainly(story: Story, database: Database, tmp_path: Path) -> None:
    api, _, campaign = story
    both = run(database, tmp_path, campaign.id, "--json", "--csv")
    assert both.exit_code != 0 and "--json and --csv cannot go together" in both.output
    missing = run(database, tmp_path, "cmp_nosuchcampaign00")
    assert missing.exit_code == 1 and "no such campaign" in missing.output
    other = api.account("mallory@other.example")
    several = run(database, tmp_path, campaign.id)
    assert several.exit_code == 1 and "--account" in several.output
    theirs = run(database, tmp_path, campaign.id, "--account", other.account_id)
    assert theirs.exit_code == 1 and "no such campaign" in theirs.output
    assert "Traceback" not in theirs.output
