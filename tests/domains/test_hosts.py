"""The hosts the tracking routes answer for: kept in memory, refreshed, kept on disk."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from pixeltrail.config import Settings
from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.platform.domains.dns_check import CnameResolver
from pixeltrail.platform.domains.domains import (
    TrackingDomain,
    add_domain,
    get_domain,
    tracking_base_url,
)
from pixeltrail.platform.domains.rechecks import DomainRechecker
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.errors import Invalid
from pixeltrail.platform.ids import now_ms
from pixeltrail.store.db import make_engine, write_transaction
from pixeltrail.store.schema import tracking_domains
from pixeltrail.tracking.tokens import ANY_ACCOUNT, account_tag
from pixeltrail.web.hosts import UNKNOWN_ACCOUNT, AllowedHosts, host_name

from ..dbs import Database
from .conftest import CNAME_TARGET, FakeDns

HOST = "track.acme.test"


@pytest.fixture
def engine(database: Database) -> Engine:
    return database.engine


def add(
    engine: Engine, settings: Settings, hostname: str, verified_at: int | None
) -> TrackingDomain:
    """A domain of a new account, verified at `verified_at` (None: pending)."""
    with write_transaction(engine) as conn:
        account, _ = create_account(conn, "Acme", f"owner-{hostname}@acme.example")
        domain = add_domain(conn, account.id, hostname, settings)
        if verified_at is not None:
            conn.execute(
                update(tracking_domains)
                .where(tracking_domains.c.id == domain.id)
                .values(
                    status=DomainStatus.VERIFIED,
                    verified_at_ms=verified_at,
                    checked_at_ms=verified_at,
                )
            )
        return get_domain(conn, account.id, domain.id)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Track.Acme.Test:8000", "track.acme.test"),
        ("track.acme.test.", "track.acme.test"),
        ("[::1]:8000", "::1"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_host_names_drop_port_case_and_trailing_dot(header: str, name: str) -> None:
    assert host_name(header) == name


def test_served_are_the_instance_and_domains_verified_now_or_before(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    add(engine, settings, "pending.acme.test", None)
    add(engine, settings, HOST, now_ms())
    was = add(engine, settings, "was.acme.test", now_ms())
    with write_transaction(engine) as conn:  # verified once, failing now: still served
        conn.execute(
            update(tracking_domains).where(tracking_domains.c.id == was.id).values(status="failed")
        )
    hosts = AllowedHosts(settings, engine, tmp_path / "hosts.json")
    assert not hosts.allows(f"{HOST}:443".encode())
    assert hosts.reload() is True
    assert hosts.allows(f"{HOST}:443".encode())  # the answer before the reload is not kept
    for allowed in [HOST, "TRACK.acme.test:8000", "was.acme.test", CNAME_TARGET]:
        assert hosts.allows(allowed.encode()), allowed
    for local in ["app.pixeltrail.test", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"]:
        assert hosts.allows(local.encode()), local
    assert hosts.allows(None)  # HTTP/1.0 without Host
    for refused in ["pending.acme.test", "evil.test", "acme.test", "track.acme.test.evil.test"]:
        assert not hosts.allows(refused.encode()), refused
    # Caddy gets certificates for domains and the instance's own names, never for loopback.
    for name, ok in [
        (HOST, True),
        ("was.acme.test", True),
        (CNAME_TARGET, True),
        ("app.pixeltrail.test", True),
        ("pending.acme.test", False),
        ("evil.test", False),
        ("localhost", False),
        ("127.0.0.1", False),
        ("", False),
    ]:
        assert hosts.caddy_may_certify(f"domain={name}".encode()) is ok, name
    assert not hosts.caddy_may_certify(b"")


def test_the_last_known_domains_survive_a_database_that_is_down(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    domain = add(engine, settings, HOST, now_ms())
    cache = tmp_path / "data" / "tracking-hosts.json"
    AllowedHosts(settings, engine, cache).reload()
    assert json.loads(cache.read_text()) == {
        "hostnames": [HOST],
        "accounts": {HOST: domain.account_id},
    }

    down = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        restarted = AllowedHosts(settings, down, cache, interval=0.05)
        assert restarted.allows(HOST.encode())
        assert restarted.reload() is False
        restarted.start()
        time.sleep(0.3)  # several failed refreshes
        restarted.stop()
        assert restarted.served_for(HOST.encode()) == account_tag(domain.account_id)
    finally:
        down.dispose()


def test_each_domain_serves_its_own_accounts_links_and_the_instance_everyones(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    acme = add(engine, settings, HOST, now_ms())
    globex = add(engine, settings, "track.globex.test", now_ms())
    assert acme.account_id != globex.account_id
    hosts = AllowedHosts(settings, engine, tmp_path / "hosts.json")
    hosts.reload()
    assert hosts.served_for(f"{HOST}:443".encode()) == account_tag(acme.account_id)
    assert hosts.served_for(b"Track.Globex.Test") == account_tag(globex.account_id)
    for own in [b"app.pixeltrail.test", CNAME_TARGET.encode(), b"127.0.0.1:8000", None]:
        assert hosts.served_for(own) == ANY_ACCOUNT, own
    assert hosts.served_for(b"evil.test") is None


def test_a_cache_file_of_an_older_version_serves_its_domains_unbound_links(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Until the database is read, a domain whose account is not known answers the links
    sent before (unbound), and no account's bound ones."""
    domain = add(engine, settings, HOST, now_ms())
    cache = tmp_path / "hosts.json"
    cache.write_text(json.dumps({"hostnames": [HOST]}))
    hosts = AllowedHosts(settings, engine, cache)
    assert hosts.served_for(HOST.encode()) == UNKNOWN_ACCOUNT
    assert hosts.reload() is True
    assert hosts.served_for(HOST.encode()) == account_tag(domain.account_id)
    assert json.loads(cache.read_text())["accounts"] == {HOST: domain.account_id}


def test_an_unreadable_cache_file_is_ignored(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    cache = tmp_path / "hosts.json"
    cache.write_text("{not json")
    assert not AllowedHosts(settings, engine, cache).allows(HOST.encode())


def test_the_refresher_and_the_rechecker_run_in_the_background(
    engine: Engine, settings: Settings, dns: FakeDns, tmp_path: Path
) -> None:
    add(engine, settings, HOST, None)
    hosts = AllowedHosts(settings, engine, tmp_path / "hosts.json", interval=0.05)
    rechecker = DomainRechecker(engine, CnameResolver([dns.server]), hosts.reload, interval=0.05)
    hosts.start()
    rechecker.start()
    try:
        dns.cname(HOST, CNAME_TARGET)  # a pending domain is checked at once, then verified
        deadline = time.monotonic() + 10
        while not hosts.allows(HOST.encode()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hosts.allows(HOST.encode())
    finally:
        rechecker.stop()
        hosts.stop()


def test_links_on_a_domain_use_https_or_http_with_the_instance_port(
    engine: Engine, settings: Settings
) -> None:
    pending = add(engine, settings, "pending.acme.test", None)
    verified = add(engine, settings, HOST, now_ms())
    assert tracking_base_url(None, settings) == "https://app.pixeltrail.test"
    assert tracking_base_url(verified, settings) == f"https://{HOST}"
    local = replace(settings, base_url="http://127.0.0.1:8000", tracking_scheme="http")
    assert tracking_base_url(verified, local) == f"http://{HOST}:8000"
    assert tracking_base_url(verified, replace(local, tracking_scheme="https")) == f"https://{HOST}"
    with pytest.raises(Invalid, match="not verified yet"):
        tracking_base_url(pending, settings)


def test_a_flood_of_made_up_hosts_changes_no_answer(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    add(engine, settings, HOST, now_ms())
    hosts = AllowedHosts(settings, engine, tmp_path / "hosts.json")
    hosts.reload()
    for n in range(5000):
        assert not hosts.allows(f"evil-{n}.test".encode())
    assert hosts.allows(HOST.encode())
    assert hosts.allows(b"127.0.0.1:8000")
    assert not hosts.allows(b"evil-1.test")
