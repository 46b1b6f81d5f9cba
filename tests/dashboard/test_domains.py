"""Tracking domains in the dashboard: add, the record to create, verify against real DNS, remove."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from pixeltrail.store.schema import tracking_domains
from pixeltrail.web.api.app import mounted_api

from ..api.conftest import serving
from ..dbs import DATABASES, fresh_database
from ..dns_server import FakeDns, fake_dns
from ..domains.conftest import CNAME_TARGET, domain_settings
from .conftest import Site, User
from .tenants import another_account

HOST = "track.acme.test"


@dataclass
class DnsSite:
    site: Site
    dns: FakeDns


@pytest.fixture(params=DATABASES)
def dns_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DnsSite]:
    """The dashboard of a public instance (https://app.pixeltrail.test) asking a real DNS server."""
    with (
        fake_dns((CNAME_TARGET, "A", "192.0.2.10")) as dns,
        fresh_database(request.param, tmp_path) as database,
    ):
        database.migrated()
        settings = domain_settings(tmp_path, database.url, dns.server)
        with serving(mounted_api(database.engine, settings)) as url:
            site = Site(url, database.engine, settings)
            try:
                yield DnsSite(site, dns)
            finally:
                for user in site.users:
                    user.close()


def follow(user: User, answer_status: int, location: str) -> str:
    assert answer_status == 303, answer_status
    page = user.get(location)
    assert page.status_code == 200, page.text
    return html.unescape(page.text)


def added(user: User, hostname: str) -> str:
    """Add a domain through the form; its page's path."""
    answer = user.post("/domains", {"hostname": hostname})
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/domains/dom_")
    return location


def test_add_shows_the_record_then_verify_says_what_dns_answered(dns_site: DnsSite) -> None:
    site, dns = dns_site.site, dns_site.dns
    owner = site.sign_up()
    first = owner.get("/domains")
    assert first.status_code == 200
    assert "No tracking domains yet" in first.text
    assert "Trying click tracking locally" not in first.text  # a public instance
    path = added(owner, "Track.Acme.Test")
    page = owner.get(path).text
    # The exact record to create, each part with a copy button.
    assert '<code id="dns-type">CNAME</code>' in page
    assert f'<code id="dns-name">{HOST}</code>' in page
    assert f'<code id="dns-value">{CNAME_TARGET}</code>' in page
    assert 'data-copy="#dns-value"' in page
    assert ">pending<" in page

    # Nothing at the name yet: DNS says so, and the page says what to create.
    text = follow(owner, *_verify(owner, path))
    assert f"{HOST} is not verified yet" in text
    assert ">failed<" in text
    assert f"no such name: create a CNAME record {HOST} → {CNAME_TARGET}" in text

    # An A record where the CNAME should be.
    dns.a(HOST, "203.0.113.7")
    text = follow(owner, *_verify(owner, path))
    assert f"{HOST} has A records (203.0.113.7) but no CNAME; replace them with" in text

    # Fixed: verified, and the list shows it with the time of the check.
    dns.cname(HOST, CNAME_TARGET)
    text = follow(owner, *_verify(owner, path))
    assert f"{HOST} is verified: tracking links on it work" in text
    assert "What DNS answered" not in text
    listing = owner.get("/domains").text
    assert ">verified<" in listing
    with site.engine.connect() as conn:
        row = conn.execute(select(tracking_domains)).one()
    assert (row.hostname, row.status, row.last_error) == (HOST, "verified", None)
    assert row.checked_at_ms is not None

    removed = owner.post(f"{path}/remove", token_from=path)
    text = follow(owner, removed.status_code, removed.headers["location"])
    assert f"{HOST} removed" in text
    with site.engine.connect() as conn:
        assert conn.execute(select(tracking_domains.c.id)).first() is None


def _verify(user: User, path: str) -> tuple[int, str]:
    answer = user.post(f"{path}/verify", token_from=path)
    return answer.status_code, answer.headers.get("location", "")


def test_bad_hostnames_come_back_with_the_reason(dns_site: DnsSite) -> None:
    site = dns_site.site
    owner = site.sign_up()
    answer = owner.post("/domains", {"hostname": "https://track.acme.test/x"})
    assert answer.status_code == 422
    assert "has a scheme: give the hostname alone" in answer.text
    assert 'value="https://track.acme.test/x"' in answer.text
    hostile = owner.post("/domains", {"hostname": "<script>alert(1)</script>"})
    assert hostile.status_code == 422
    assert "<script>alert(1)</script>" not in hostile.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile.text
    added(owner, HOST)
    again = owner.post("/domains", {"hostname": HOST})
    assert again.status_code == 409
    assert f"{HOST} is already one of your tracking domains" in again.text
    with site.engine.connect() as conn:
        assert len(conn.execute(select(tracking_domains.c.id)).all()) == 1


def test_another_accounts_domain_is_not_found_and_forms_need_their_token(
    dns_site: DnsSite,
) -> None:
    site = dns_site.site
    owner = site.sign_up()
    path = added(owner, HOST)
    mallory = another_account(site)
    assert mallory.get(path).status_code == 404
    assert mallory.post(f"{path}/verify", token_from="/domains").status_code == 404
    assert mallory.post(f"{path}/remove", token_from="/domains").status_code == 404
    assert HOST not in mallory.get("/domains").text
    # No CSRF token: refused, nothing removed.
    bare = owner.client.post(f"{path}/remove", headers={"Origin": owner.url})
    assert bare.status_code == 403
    with site.engine.connect() as conn:
        assert conn.execute(select(tracking_domains.c.hostname)).scalar_one() == HOST


def test_trying_click_tracking_locally(site: Site) -> None:
    """`make run`'s instance (http://127.0.0.1:8000): a .localhost name takes the CNAME's place."""
    owner = site.sign_up()
    listing = owner.get("/domains").text
    assert "Trying click tracking locally" in listing
    assert "http://track.localhost:8000/" in listing
    # A real hostname cannot be pointed at 127.0.0.1: the page says why.
    real = owner.post("/domains", {"hostname": HOST})
    assert real.status_code == 409
    assert "PIXELTRAIL_CNAME_TARGET" in real.text
    path = added(owner, "track.localhost")
    page = owner.get(path).text
    assert "No DNS record needed" in page
    assert "dns-value" not in page
    text = follow(owner, *_verify(owner, path))
    assert "track.localhost is verified: tracking links on it work" in text
    assert "http://track.localhost:8000/" in text
