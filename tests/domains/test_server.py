"""A real server: tracking links answered on the instance and verified domains, nowhere else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from pixeltrail.config import Settings
from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.platform.domains.domains import get_domain, tracking_base_url
from pixeltrail.store.db import write_transaction
from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.tokens import TokenSigner, new_message_id

from ..conftest import SECRET
from ..dbs import Database
from ..server.conftest import ServerProcess, recorded, wait_recorded
from .conftest import CNAME_TARGET, FakeDns

HOST = "track.acme.test"
DESTINATION = "https://acme.example/pricing?utm_source=email"


@pytest.fixture
def server(tmp_path: Path, database: Database, dns: FakeDns) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path / "data",
        database.url,
        PIXELTRAIL_DNS_SERVERS=dns.server,
        PIXELTRAIL_CNAME_TARGET=CNAME_TARGET,
        PIXELTRAIL_TRACKING_SCHEME="http",
    ).start()
    yield proc
    proc.stop()


def hit(server: ServerProcess, url: str, host: str) -> httpx.Response:
    """GET `url` from the server itself, with `host` as the Host header (as DNS would)."""
    return httpx.get(server.base_url + urlsplit(url).path, headers={"Host": host})


def ask(server: ServerProcess, domain: str) -> int:
    return httpx.get(server.base_url + "/caddy/ask", params={"domain": domain}).status_code


def test_tracking_links_answer_only_on_the_instance_and_verified_domains(
    server: ServerProcess, database: Database, dns: FakeDns
) -> None:
    with write_transaction(database.engine) as conn:
        account, key = create_account(conn, "Acme", "alice@acme.example")
    api = httpx.Client(
        base_url=server.base_url + "/api/v1", headers={"Authorization": f"Bearer {key}"}
    )
    domain_id = api.post("/tracking-domains", json={"hostname": HOST}).json()["id"]
    with database.engine.connect() as conn:
        domain = get_domain(conn, account.id, domain_id)
    settings = Settings.from_env(server.env)
    on_domain = f"{HOST}:{server.port}"

    # Pending: its links are not answered; the instance's own still are.
    signer = TokenSigner(KeyRing.parse(SECRET))
    early = LinkBuilder(f"http://{on_domain}", signer).click_url(new_message_id(), 1, DESTINATION)
    assert hit(server, early, on_domain).status_code == 404
    own = server.links.click_url(new_message_id(), 1, DESTINATION)
    assert hit(server, own, f"127.0.0.1:{server.port}").status_code == 302
    assert ask(server, HOST) == 404

    # Verified: answered at once (no waiting for the background refresh).
    dns.cname(HOST, CNAME_TARGET)
    r = api.post(f"/tracking-domains/{domain_id}/verify")
    assert r.status_code == 200, r.text
    with database.engine.connect() as conn:
        domain = get_domain(conn, account.id, domain_id)
    base = tracking_base_url(domain, settings)
    assert base == f"http://{on_domain}"
    links = LinkBuilder(base, signer)
    message_id = new_message_id()
    click = links.click_url(message_id, 1, DESTINATION)
    assert click.startswith(f"http://{on_domain}/c/")
    r = hit(server, click, on_domain)
    assert (r.status_code, r.headers["location"]) == (302, DESTINATION)
    pixel = hit(server, links.open_url(message_id), HOST)
    assert (pixel.status_code, pixel.headers["content-type"]) == (200, "image/gif")

    # Any other host gets 404, for clicks and pixels alike, and nothing is recorded.
    stranger = new_message_id()
    for host in ["evil.test", f"evil.test:{server.port}", "acme.test", "pending.acme.test"]:
        assert hit(server, links.click_url(stranger, 1, DESTINATION), host).status_code == 404
        assert hit(server, links.open_url(stranger), host).status_code == 404
    assert {e.hit.kind for e in wait_recorded(database.engine, message_id, 2)} == {
        "click",
        "open",
    }
    assert recorded(database.engine, stranger) == []

    # Caddy may get certificates for verified domains and the instance's names only.
    assert ask(server, HOST) == 200
    assert ask(server, CNAME_TARGET) == 200
    for name in ["evil.test", "localhost", "127.0.0.1", ""]:
        assert ask(server, name) == 404, name

    # DNS moved away: failed, but links already sent keep being answered.
    dns.cname(HOST, "elsewhere.example")
    r = api.post(f"/tracking-domains/{domain_id}/verify")
    assert r.status_code == 422
    assert "points at elsewhere.example." in r.json()["last_error"]
    assert hit(server, click, on_domain).status_code == 302
    assert ask(server, HOST) == 200

    # Removed: no longer answered, at once.
    assert api.delete(f"/tracking-domains/{domain_id}").status_code == 204
    assert hit(server, click, on_domain).status_code == 404
    assert ask(server, HOST) == 404
    api.close()


GLOBEX_HOST = "track.globex.test"
PHISHING = "https://login.globex-payments.example/acme"


@pytest.fixture(params=["granian", "uvicorn"])
def each_server(
    request: pytest.FixtureRequest, tmp_path: Path, database: Database, dns: FakeDns
) -> Iterator[ServerProcess]:
    """The server on each HTTP server it runs on (RSGI for granian, ASGI for uvicorn)."""
    proc = ServerProcess(
        tmp_path / "data",
        database.url,
        PIXELTRAIL_DNS_SERVERS=dns.server,
        PIXELTRAIL_CNAME_TARGET=CNAME_TARGET,
        PIXELTRAIL_TRACKING_SCHEME="http",
        PIXELTRAIL_HTTP_SERVER=request.param,
    ).start()
    yield proc
    proc.stop()


def verified_domain(
    server: ServerProcess, database: Database, dns: FakeDns, owner: str, hostname: str
) -> tuple[str, str]:
    """A new account with `hostname` verified as its tracking domain: its id and the domain's
    tracking base URL."""
    with write_transaction(database.engine) as conn:
        account, key = create_account(conn, owner.title(), f"{owner}@{owner}.example")
    with httpx.Client(
        base_url=server.base_url + "/api/v1", headers={"Authorization": f"Bearer {key}"}
    ) as api:
        domain_id = api.post("/tracking-domains", json={"hostname": hostname}).json()["id"]
        dns.cname(hostname, CNAME_TARGET)
        assert api.post(f"/tracking-domains/{domain_id}/verify").status_code == 200
    with database.engine.connect() as conn:
        domain = get_domain(conn, account.id, domain_id)
    return account.id, tracking_base_url(domain, Settings.from_env(server.env))


def test_a_tracking_domain_answers_its_own_accounts_links_and_no_one_elses(
    each_server: ServerProcess, database: Database, dns: FakeDns
) -> None:
    server = each_server
    verified_domain(server, database, dns, "acme", HOST)
    globex_id, globex_base = verified_domain(server, database, dns, "globex", GLOBEX_HOST)
    acme_host, globex_host = f"{HOST}:{server.port}", f"{GLOBEX_HOST}:{server.port}"
    instance = f"127.0.0.1:{server.port}"
    signer = TokenSigner(KeyRing.parse(SECRET))
    globex = LinkBuilder(globex_base, signer, globex_id)  # as the sender makes them

    # A link of Globex's sent through Acme's domain: not a redirect under Acme's name.
    stolen = new_message_id()
    r = hit(server, globex.click_url(stolen, 1, PHISHING), acme_host)
    assert r.status_code == 404
    assert "location" not in r.headers
    assert "not valid" in r.text
    assert hit(server, globex.honeypot_url(stolen), acme_host).status_code == 404
    pixel = hit(server, globex.open_url(stolen), acme_host)  # a pixel stays a pixel
    assert (pixel.status_code, pixel.headers["content-type"]) == (200, "image/gif")

    # On Globex's own domain and on the instance's host, it redirects and is recorded.
    own = new_message_id()
    for host in [globex_host, instance]:
        r = hit(server, globex.click_url(own, 1, PHISHING), host)
        assert (r.status_code, r.headers["location"]) == (302, PHISHING), host
    assert hit(server, globex.open_url(own), globex_host).status_code == 200

    # Links sent before tokens were bound are answered on every served host, as they were.
    sent = new_message_id()
    unbound = LinkBuilder(globex_base, signer)
    for host in [acme_host, globex_host, instance]:
        r = hit(server, unbound.click_url(sent, 2, DESTINATION), host)
        assert (r.status_code, r.headers["location"]) == (302, DESTINATION), host

    assert [e.hit.kind for e in wait_recorded(database.engine, own, 3)].count("click") == 2
    assert len(wait_recorded(database.engine, sent, 3)) == 3
    assert recorded(database.engine, stolen) == []
