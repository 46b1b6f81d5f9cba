"""`pixeltrail db upgrade`, `events` and `ip-ranges load`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url

from pixeltrail.cli import main
from pixeltrail.store.events import insert_events
from pixeltrail.store.ip_ranges import ranges
from pixeltrail.tracking.hits import Classification

from ..dbs import Database, fresh_database
from .conftest import T0, make_event
from .test_db import HEAD

A = "AAECAwQFBgcICQoL"
B = "BBBBBBBBBBBBBBBB"


@pytest.fixture
def env(database: Database, tmp_path: Path) -> dict[str, str]:
    return {**database.env, "PIXELTRAIL_DATA_DIR": str(tmp_path / "data")}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def test_db_upgrade_creates_the_schema_and_says_the_revision(
    env: dict[str, str], database: Database
) -> None:
    result = run(env, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"is at revision {HEAD}" in result.output
    assert {"events", "ip_ranges"} <= set(inspect(database.engine).get_table_names())
    again = run(env, "db", "upgrade")
    assert again.exit_code == 0 and f"is at revision {HEAD}" in again.output


def test_db_upgrade_never_prints_the_password(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as database:
        url = make_url(database.url).set(password="hunter2")
        plain = url.render_as_string(hide_password=False)
        result = run({"PIXELTRAIL_DATABASE_URL": plain}, "db", "upgrade")
    assert "hunter2" not in result.output
    assert result.exit_code == 0 or "cannot open the database" in result.output


def test_a_bad_database_url_is_an_error_naming_the_setting(tmp_path: Path) -> None:
    result = run({"PIXELTRAIL_DATABASE_URL": "mysql://u@h/db"}, "events")
    assert result.exit_code == 1
    assert "PIXELTRAIL_DATABASE_URL" in result.output
    assert "'mysql' is not supported" in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_database_is_a_clean_error() -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    result = run({"PIXELTRAIL_DATABASE_URL": url}, "db", "upgrade")
    assert result.exit_code == 1
    assert "cannot open the database" in result.output
    assert "Traceback" not in result.output


def _story(store: Engine) -> None:
    """Message A: opens of every kind and clicks on two links and the honeypot; B: one open."""
    with store.begin() as conn:
        insert_events(
            conn,
            [
                make_event(
                    A,
                    T0 + 1_000,
                    "open",
                    classification=Classification.APPLE_MPP,
                    reason="Apple MPP",
                ),
                make_event(A, T0 + 2_000, "open"),
                make_event(
                    A, T0 + 3_000, "open", classification=Classification.PROXY_OPEN, reason="Gmail"
                ),
                make_event(
                    A,
                    T0 + 4_000,
                    "open",
                    classification=Classification.APPLE_MPP,
                    reason="Apple MPP",
                ),
                make_event(A, T0 + 5_000, "open", classification=Classification.BOT, reason="curl"),
                make_event(A, T0 + 6_000, "open"),
                make_event(A, T0 + 7_000, "click", 1, "https://a.example/x?u=1"),
                make_event(
                    A,
                    T0 + 7_500,
                    "click",
                    1,
                    "https://a.example/x?u=1",
                    Classification.SCANNER,
                    "too fast",
                ),
                make_event(A, T0 + 8_000, "click", 2, "https://b.example/"),
                make_event(
                    A,
                    T0 + 9_000,
                    "click",
                    0,
                    None,
                    Classification.SCANNER,
                    "honeypot",
                    honeypot=True,
                ),
                make_event(B, T0 + 500, "open", classification=Classification.HUMAN),
            ],
        )


def test_events_json_prints_every_event_as_one_object_per_line(
    env: dict[str, str], store: Engine
) -> None:
    _story(store)
    result = run(env, "events", "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert len(records) == 11
    assert [r["at"] for r in records] == sorted(r["at"] for r in records)
    assert all(
        set(r)
        == {
            "id",
            "kind",
            "message_id",
            "link",
            "destination",
            "at",
            "ip",
            "user_agent",
            "method",
            "classification",
            "reason",
        }
        for r in records
    )
    assert records[0]["message_id"] == B
    assert records[0]["at"] == "2026-01-01T00:00:00.500+00:00"
    click = records[8]
    assert {k: click[k] for k in ("kind", "link", "destination", "classification", "reason")} == {
        "kind": "click",
        "link": 1,
        "destination": "https://a.example/x?u=1",
        "classification": Classification.SCANNER,
        "reason": "too fast",
    }
    assert len(click["id"]) == 32 and click["method"] == "GET"

    only_b = run(env, "events", "--json", "--message-id", B)
    assert [json.loads(line)["message_id"] for line in only_b.output.splitlines()] == [B]


def test_events_summary_per_message(env: dict[str, str], store: Engine) -> None:
    _story(store)
    result = run(env, "events")
    assert result.exit_code == 0, result.output
    out = result.output
    # Messages in the order of their first event, each with its own block.
    assert out.index(f"message {B}") < out.index(f"message {A}")
    block = out[out.index(f"message {A}") :]
    assert "first  2026-01-01T00:00:01.000+00:00" in block
    assert "last   2026-01-01T00:00:09.000+00:00" in block
    assert "opens  2 human, 1 proxy_open, 3 machine" in block
    assert "machine 2: Apple MPP" in block
    assert "machine 1: curl" in block
    assert "link 0 (honeypot): 1 total, 0 human" in block
    assert "link 1 https://a.example/x?u=1: 2 total, 1 human" in block
    assert "link 2 https://b.example/: 1 total, 1 human" in block
    b_block = out[: out.index(f"message {A}")]
    assert "opens  1 human, 0 proxy_open, 0 machine" in b_block
    assert "clicks none" in b_block

    only_a = run(env, "events", "--message-id", A).output
    assert f"message {A}" in only_a and B not in only_a


def test_events_without_any(env: dict[str, str]) -> None:
    result = run(env, "events")
    assert result.exit_code == 0
    assert result.output == "no events\n"
    assert run(env, "events", "--message-id", A).output == f"no events for message {A}\n"
    assert run(env, "events", "--json").output == ""


def test_events_refuses_a_malformed_message_id(env: dict[str, str]) -> None:
    result = run(env, "events", "--message-id", "nope")
    assert result.exit_code == 2
    assert "16 URL-safe base64 characters" in result.output


APPLE = (
    "172.224.224.0/27,GB,GB-EN,London,\n"
    "2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n"
    "\n"
    "104.28.0.0/24,US,US-CA,Los Angeles,\n"
)


def test_ip_ranges_load(env: dict[str, str], database: Database, tmp_path: Path) -> None:
    path = tmp_path / "egress-ip-ranges.csv"
    path.write_text(APPLE)
    result = run(env, "ip-ranges", "load", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("apple_mpp: 3 networks loaded")
    other = run(env, "ip-ranges", "load", str(path), "--source", "test_list")
    assert other.exit_code == 0 and other.output.startswith("test_list: 3 networks loaded")
    with database.engine.connect() as conn:
        assert ranges(conn, "apple_mpp") == [
            "172.224.224.0/27",
            "2a02:26f7:b3c0:4000::/64",
            "104.28.0.0/24",
        ]


def test_ip_ranges_load_of_a_bad_file_changes_nothing(
    env: dict[str, str], database: Database, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(APPLE)
    assert run(env, "ip-ranges", "load", str(good)).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("10.0.0.0/8,US,,,\n10.0.0.0/40,US,,,\n\n<html>,,,\n")
    result = run(env, "ip-ranges", "load", str(bad))
    assert result.exit_code == 1
    assert "line 2: '10.0.0.0/40'" in result.output
    assert "line 4: '<html>'" in result.output
    assert "nothing was loaded" in result.output
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not UTF-8" in run(env, "ip-ranges", "load", str(binary)).output
    too_long = run(env, "ip-ranges", "load", str(good), "--source", "s" * 40)
    assert too_long.exit_code == 1 and "--source" in too_long.output
    with database.engine.connect() as conn:
        assert len(ranges(conn, "apple_mpp")) == 3
        assert ranges(conn, "s" * 40) == []
