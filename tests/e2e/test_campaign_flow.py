"""The whole loop, as a user runs it: set up, launch, receive, open, click, read the report.

A real `pixeltrail serve` (scheduler and worker included), a real DNS server for the tracking
domain, a real SMTP server receiving the campaign; the API and the CLI as a user calls them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..dbs import Database
from ..domains.conftest import CNAME_TARGET, FakeDns
from ..sending.conftest import SmtpServer
from ..server.conftest import ServerProcess, eventually

HOST = "track.acme.test"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
CSV = "Email,First Name,Company\nada@example.org,Ada,Analytical\nbob@example.org,Bob,Builders\n"


def _cli(server: ServerProcess, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "pixeltrail", *args, "--json"],
        env=server.env,
        capture_output=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_launch_receive_open_click_report(
    tmp_path: Path, database: Database, dns: FakeDns, smtp_server: SmtpServer
) -> None:
    server = ServerProcess(
        tmp_path / "data",
        database.url,
        PIXELTRAIL_DNS_SERVERS=dns.server,
        PIXELTRAIL_CNAME_TARGET=CNAME_TARGET,
        PIXELTRAIL_TRACKING_SCHEME="http",
        PIXELTRAIL_MAIL_ALLOW_LOCAL="1",  # its SMTP server is on this machine
    ).start()
    try:
        _flow(server, dns, smtp_server)
    finally:
        server.stop()


def _flow(server: ServerProcess, dns: FakeDns, smtp: SmtpServer) -> None:
    created = _cli(
        server, "account", "create", "--name", "Acme", "--owner-email", "al@acme.example"
    )
    with httpx.Client(
        base_url=server.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {created['api_key']}"},
        timeout=30,
    ) as api:
        _campaign(server, dns, smtp, api)


def _campaign(server: ServerProcess, dns: FakeDns, smtp: SmtpServer, api: httpx.Client) -> None:
    assert api.get("/account").json()["default_track_opens"] is True

    mailbox = api.post(
        "/mailboxes",
        json={
            "name": "Sales",
            "from_email": "sales@acme.example",
            "from_name": "Acme",
            "smtp_url": smtp.url,
        },
    )
    assert mailbox.status_code == 201, mailbox.text
    imported = api.post("/contacts/import", content=CSV, headers={"content-type": "text/csv"})
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 2
    contact_ids = [c["id"] for c in api.get("/contacts").json()["items"]]

    campaign = api.post(
        "/campaigns",
        json={
            "name": "Launch",
            "mailbox_id": mailbox.json()["id"],
            "steps": [
                {
                    "subject": "Hi {{ first_name }}",
                    "delay_days": 0,
                    "html": "<p>Hello {{ first_name }} at {{ company }}. "
                    '<a href="https://acme.example/pricing?plan=pro&amp;ref=mail">Pricing</a></p>',
                },
                {"subject": "Following up", "delay_days": 3, "html": "<p>Any thoughts?</p>"},
            ],
        },
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    settings_url = f"/campaigns/{campaign_id}/settings"
    assert api.get(settings_url).json()["track_opens"] is True

    # Click tracking needs a verified tracking domain.
    refused = api.patch(settings_url, json={"track_clicks": True})
    assert refused.status_code == 409
    assert "tracking domain" in refused.json()["error"]["message"]
    domain = api.post("/tracking-domains", json={"hostname": HOST}).json()
    assert domain["cname_target"] == CNAME_TARGET
    assert api.post(f"/tracking-domains/{domain['id']}/verify").status_code == 422
    dns.cname(HOST, CNAME_TARGET)
    verified = api.post(f"/tracking-domains/{domain['id']}/verify")
    assert verified.status_code == 200, verified.text
    accepted = api.patch(settings_url, json={"track_clicks": True})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["track_clicks"] is True

    assert (
        api.post(
            f"/campaigns/{campaign_id}/contacts", json={"contact_ids": contact_ids}
        ).status_code
        == 200
    )
    launched = api.post(f"/campaigns/{campaign_id}/launch", json={})
    assert launched.status_code == 200, launched.text

    eventually(lambda: len(smtp.inbox.received) >= 2, timeout=60)
    time.sleep(1)
    assert len(smtp.inbox.received) == 2  # step 2 waits its three days
    ada = next(m for m in smtp.inbox.received if "ada@example.org" in str(m["To"]))
    assert ada["Subject"] == "Hi Ada"
    html = ada.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Hello Ada at Analytical." in html
    pixel = re.search(rf'<img src="(http://{HOST}:\d+/o/[^"]+)"', html)
    click = re.search(rf'href="(http://{HOST}:\d+/c/[^"]+)"', html)
    assert pixel is not None, html
    assert click is not None, html

    def get(url: str) -> httpx.Response:
        return httpx.get(
            server.base_url + urlsplit(url).path, headers={"Host": HOST, "User-Agent": IPHONE}
        )

    time.sleep(11)  # a click right after sending would count as a scanner's
    assert get(pixel.group(1)).status_code == 200
    assert get(pixel.group(1)).status_code == 200
    followed = get(click.group(1))
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://acme.example/pricing?plan=pro&ref=mail"

    def ada_row() -> dict[str, Any] | None:
        items = api.get(f"/campaigns/{campaign_id}/report/contacts").json()["items"]
        row = next((i for i in items if i["email"] == "ada@example.org"), None)
        return row if row and row["open_count"] == 2 and row["click_count"] == 1 else None

    row = eventually(ada_row, timeout=30)
    assert row["first_opened_at"] and row["last_opened_at"]
    assert row["first_opened_at"] <= row["last_opened_at"]
    summary = api.get(f"/campaigns/{campaign_id}").json()["report"]
    assert summary["sent"] == 2
    links = api.get(f"/campaigns/{campaign_id}/report/links").json()["items"]
    assert [(x["destination"], x["unique_clicks"]) for x in links if x["unique_clicks"]] == [
        ("https://acme.example/pricing?plan=pro&ref=mail", 1)
    ]
    # The CLI says the same.
    report = _cli(server, "report", campaign_id)
    assert report
