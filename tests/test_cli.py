"""The `pixeltrail instrument` and `pixeltrail inspect` commands, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixeltrail.cli import main

from .conftest import CORPUS, SECRET

LINK = re.compile(rb"https://t\.example\.com/[co]/[A-Za-z0-9_-]+")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PIXELTRAIL_SECRET_KEY": SECRET, "PIXELTRAIL_DATA_DIR": str(tmp_path / "data")}


def _instrument(env: dict[str, str], *args: str) -> tuple[bytes, str]:
    result = CliRunner().invoke(
        main, ["instrument", "--base-url", "https://t.example.com", *args], env=env
    )
    assert result.exit_code == 0, result.output
    return result.stdout_bytes, result.stderr


def test_instrument_and_inspect_every_corpus_email(env: dict[str, str]) -> None:
    urls: list[str] = []
    for path in sorted(CORPUS.glob("*.html")):
        out, summary = _instrument(env, str(path), "--message-id", "AAECAwQFBgcICQoL")
        assert "links tracked" in summary
        found = [u.decode() for u in LINK.findall(out)]
        assert any("/o/" in u for u in found), path.name
        urls += found
    result = CliRunner().invoke(main, ["inspect", "--json", "-"], input="\n".join(urls), env=env)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(urls)
    assert {r["message_id"] for r in records} == {"AAECAwQFBgcICQoL"}
    assert set(records[0]) >= {"kind", "destination", "message_id", "link", "key_id"}
    clicks = [r for r in records if r["kind"] == "click"]
    assert clicks
    assert all(r["destination"].startswith(("http://", "https://")) for r in clicks)


def test_instrument_options(env: dict[str, str], tmp_path: Path) -> None:
    page = tmp_path / "mail.html"
    page.write_bytes(b'<body><a href="https://a.example/">a</a></body>')
    out, _ = _instrument(env, str(page), "--no-opens")
    assert b"/o/" not in out and b"/c/" in out
    out, _ = _instrument(env, str(page), "--no-clicks")
    assert b"/o/" in out and b"/c/" not in out
    out, _ = _instrument(env, str(page), "--honeypot")
    assert b'aria-hidden="true"' in out
    text = tmp_path / "mail.txt"
    text.write_bytes(b"See https://a.example/ now\n")
    out, _ = _instrument(env, str(text), "--no-text-links")
    assert out == b"See https://a.example/ now\n"


def test_inspect_reports_each_bad_url_and_fails(env: dict[str, str], tmp_path: Path) -> None:
    page = tmp_path / "mail.html"
    page.write_bytes(b'<body><a href="https://a.example/x?y=1&amp;z=2">a</a></body>')
    out, _ = _instrument(env, str(page))
    click_url = LINK.findall(out)[0].decode()
    tampered = click_url[:-6] + ("A" if click_url[-6] != "A" else "B") + click_url[-5:]
    result = CliRunner().invoke(
        main, ["inspect", click_url, tampered, "https://example.com/not/tracking"], env=env
    )
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("click") and "https://a.example/x?y=1&z=2" in lines[0]
    assert lines[1].startswith("invalid") and "signature" in lines[1]
    assert lines[2].startswith("invalid") and "not a tracking URL" in lines[2]
    result = CliRunner().invoke(main, ["inspect", "--json", tampered], env=env)
    assert json.loads(result.stdout) == {
        "url": tampered,
        "error": "token signature does not match (tampered or forged)",
    }


def test_links_from_another_instance_are_rejected(env: dict[str, str], tmp_path: Path) -> None:
    page = tmp_path / "mail.html"
    page.write_bytes(b'<a href="https://a.example/">a</a>')
    out, _ = _instrument(env, str(page))
    other = {**env, "PIXELTRAIL_SECRET_KEY": "another-instance-secret-0123456789"}
    result = CliRunner().invoke(main, ["inspect", LINK.findall(out)[0].decode()], env=other)
    assert result.exit_code == 1
    assert "not listed" in result.stdout


def test_bad_arguments_get_clear_errors(env: dict[str, str], tmp_path: Path) -> None:
    page = tmp_path / "mail.html"
    page.write_bytes(b"<p>hi</p>")
    runner = CliRunner()
    result = runner.invoke(main, ["instrument", str(page), "--message-id", "msg-42"], env=env)
    assert result.exit_code == 2
    assert "message id is 16 URL-safe base64" in result.output
    result = runner.invoke(main, ["instrument", str(page), "--base-url", "javascript:x"], env=env)
    assert result.exit_code == 1
    assert "base URL" in result.output
    result = runner.invoke(main, ["instrument", str(tmp_path / "missing.html")], env=env)
    assert result.exit_code == 2
    assert "does not exist" in result.output
    weak = {**env, "PIXELTRAIL_SECRET_KEY": "short"}
    result = runner.invoke(main, ["instrument", str(page)], env=weak)
    assert result.exit_code == 1
    assert "PIXELTRAIL_SECRET_KEY" in result.output


def test_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"PIXELTRAIL_DATA_DIR": str(data_dir)}
    page = tmp_path / "mail.html"
    page.write_bytes(b'<a href="https://a.example/">a</a>')
    cmd = [sys.executable, "-m", "pixeltrail"]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELTRAIL_")}
    first = subprocess.run(
        [*cmd, "instrument", str(page), "--base-url", "https://t.example.com"],
        env={**child_env, **env},
        capture_output=True,
        check=True,
    )
    key_file = data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    url = LINK.findall(first.stdout)[0].decode()
    second = subprocess.run(
        [*cmd, "inspect", url], env={**child_env, **env}, capture_output=True, check=False
    )
    assert second.returncode == 0, second.stderr
    assert b"https://a.example/" in second.stdout
    assert key_file.read_bytes() == key
    assert [p.name for p in data_dir.iterdir()] == ["secret.key"]


def test_every_command_is_listed_and_loads_only_when_it_runs() -> None:
    """`pixeltrail --help` lists every command with its help; a command's own modules (the
    database layer, the web apps, the HTML instrumentation) load only when it runs."""
    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0, listed.output
    commands = re.findall(r"^  ([a-z-]+)  +\S", listed.output.split("Commands:")[1], re.M)
    assert commands == sorted(
        [
            "instrument",
            "inspect",
            "serve",
            "background",
            "worker",
            "db",
            "events",
            "ip-ranges",
            "account",
            "domains",
            "mailboxes",
            "contacts",
            "campaigns",
            "report",
            "webhooks",
        ]
    )
    for name in commands:
        assert CliRunner().invoke(main, [name, "--help"]).exit_code == 0, name
    unknown = CliRunner().invoke(main, ["nosuch"])
    assert unknown.exit_code == 2 and "No such command 'nosuch'" in unknown.output

    probe = (
        "import sys; from pixeltrail.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'starlette', 'lxml', 'pixeltrail.commands.serve')"
        " if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.splitlines()[-1] == "[]"
