"""A running `pixeltrail serve` delivers webhooks; the `pixeltrail webhooks` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from pixeltrail.cli import main
from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.store.db import write_transaction

from ..conftest import SECRET
from ..dbs import Database
from ..server.conftest import ServerProcess, eventually
from .conftest import Receiver
from .test_delivery import verify


def test_the_server_delivers_in_the_background(
    tmp_path: Path, database: Database, receiver: Receiver
) -> None:
    server = ServerProcess(
        tmp_path / "data", database.url, PIXELTRAIL_WEBHOOKS_ALLOW_LOCAL="1"
    ).start()
    try:
        with write_transaction(database.engine) as conn:
            _account, key = create_account(conn, "Acme", "alice@acme.example")
        auth = {"Authorization": f"Bearer {key}"}
        api = f"{server.base_url}/api/v1"
        created = httpx.post(
            f"{api}/webhooks",
            json={"url": receiver.url, "event_types": ["message.sent"]},
            headers=auth,
        ).json()
        queued = httpx.post(f"{api}/webhooks/{created['id']}/test", headers=auth).json()
        [request] = eventually(lambda: receiver.requests, timeout=15)
        assert request.headers["webhook-id"] == queued["id"]
        assert verify(created["secret"], request)

        def logged() -> dict[str, Any] | None:
            r = httpx.get(f"{api}/webhooks/{created['id']}/deliveries", headers=auth)
            item: dict[str, Any] = r.json()["items"][0]
            return item if item["status"] == "delivered" else None

        assert eventually(logged, timeout=10)["last_status_code"] == 200
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_the_commands(tmp_path: Path, database: Database, receiver: Receiver) -> None:
    env = {
        "PIXELTRAIL_DATA_DIR": str(tmp_path / "data"),
        "PIXELTRAIL_SECRET_KEY": SECRET,
        "PIXELTRAIL_DATABASE_URL": database.url,
        "PIXELTRAIL_WEBHOOKS_ALLOW_LOCAL": "1",
    }
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.stdout

    run("account", "create", "--name", "Acme", "--owner-email", "alice@acme.example")
    assert "no webhook endpoints yet" in run("webhooks", "list")
    added = json.loads(run("webhooks", "add", receiver.url, "--event", "message.opened", "--json"))
    assert added["secret"].startswith("whsec_")
    text = run(
        "webhooks", "add", receiver.url, "--event", "message.sent", "--event", "message.clicked"
    )
    assert "signing secret  whsec_" in text

    listed = [json.loads(line) for line in run("webhooks", "list", "--json").splitlines()]
    assert [e["event_types"] for e in listed] == [
        ["message.opened"],
        ["message.sent", "message.clicked"],
    ]
    assert all("secret" not in e for e in listed)

    test = json.loads(run("webhooks", "test", added["id"], "--json"))
    assert test["status"] == "pending"
    log = run("webhooks", "deliveries", added["id"])
    assert test["id"] in log
    assert "webhook.test" in log
    assert "pending" in log

    refused = runner.invoke(
        main, ["webhooks", "add", "https://169.254.169.254/x", "--event", "message.opened"], env=env
    )
    assert refused.exit_code == 1
    assert "link-local" in refused.output
    bad = runner.invoke(main, ["webhooks", "add", receiver.url, "--event", "message.spam"], env=env)
    assert bad.exit_code == 2

    assert run("webhooks", "remove", added["id"]).strip() == f"removed {added['id']}"
    gone = runner.invoke(main, ["webhooks", "deliveries", added["id"]], env=env)
    assert gone.exit_code == 1
    assert "no webhook endpoint" in gone.output
