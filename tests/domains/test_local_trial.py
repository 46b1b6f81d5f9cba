"""Trying click tracking locally: `.localhost` tracking domains on a loopback instance only."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.platform.domains.checks import recheck_domains, verify_domain
from pixeltrail.platform.domains.dns_check import CnameResolver
from pixeltrail.platform.domains.domains import (
    TrackingDomain,
    add_domain,
    served_hostnames,
    tracking_base_url,
)
from pixeltrail.platform.domains.hostnames import is_loopback_host
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.errors import Conflict, Invalid
from pixeltrail.store.db import write_transaction
from pixeltrail.web.hosts import AllowedHosts

from ..api.conftest import make_settings
from ..dbs import Database
from .conftest import CNAME_TARGET, FakeDns

LOCAL = "track.localhost"


def local_settings(tmp_path: Path, database: Database, dns_server: str, **env: str) -> Settings:
    """An instance as `make run` starts it: on 127.0.0.1:8000, links on https by default."""
    return make_settings(
        tmp_path,
        database.url,
        PIXELTRAIL_BASE_URL="http://127.0.0.1:8000",
        PIXELTRAIL_DNS_SERVERS=dns_server,
        **env,
    )


def add(engine: Engine, settings: Settings, hostname: str = LOCAL) -> TrackingDomain:
    with write_transaction(engine) as conn:
        account, _ = create_account(conn, "Acme", "owner@acme.example")
        return add_domain(conn, account.id, hostname, settings)


def test_loopback_hosts() -> None:
    for host in [
        "127.0.0.1",
        "localhost",
        "LOCALHOST.",
        "::1",
        "[::1]",
        "app.localhost",
        "127.8.0.1",
    ]:
        assert is_loopback_host(host), host
    for host in ["app.pixeltrail.test", "10.0.0.1", "localhost.example.com", "", "0.0.0.0"]:
        assert not is_loopback_host(host), host


def test_a_localhost_domain_verifies_without_dns_on_a_loopback_instance(
    database: Database, tmp_path: Path, silent_dns: str
) -> None:
    # The only DNS server configured never answers: a query would fail the check after 1 s.
    settings = local_settings(tmp_path, database, silent_dns)
    domain = add(database.engine, settings, "Track.LocalHost")
    assert (domain.hostname, domain.cname_target, domain.local) == (LOCAL, "localhost", True)
    resolver = CnameResolver.from_settings(settings, lifetime=1.0)
    after = verify_domain(database.engine, domain.account_id, domain.id, resolver)
    assert (after.status, after.last_error) == (DomainStatus.VERIFIED, None)
    with database.engine.connect() as conn:
        assert LOCAL in served_hostnames(conn)
    hosts = AllowedHosts(settings, database.engine)
    hosts.reload()
    assert hosts.allows(b"track.localhost:8000")
    # Served, but never offered to a certificate authority.
    assert not hosts.caddy_may_certify(b"domain=track.localhost")
    # Its links are plain http on the base URL's port, whatever the scheme of real domains.
    assert settings.tracking_scheme == "https"
    assert tracking_base_url(after, settings) == "http://track.localhost:8000"
    # The periodic re-check keeps it verified, still without DNS.
    assert after.checked_at_ms is not None
    assert recheck_domains(database.engine, resolver, now=after.checked_at_ms + 10**9) == []


def test_real_domains_on_a_loopback_instance_keep_their_rules(
    database: Database, tmp_path: Path, dns: FakeDns
) -> None:
    settings = local_settings(tmp_path, database, dns.server)
    # A CNAME cannot point at 127.0.0.1: real domains need PIXELTRAIL_CNAME_TARGET, as before.
    with pytest.raises(Conflict, match="PIXELTRAIL_CNAME_TARGET"):
        add(database.engine, settings, "track.acme.test")
    named = local_settings(tmp_path, database, dns.server, PIXELTRAIL_CNAME_TARGET=CNAME_TARGET)
    domain = add(database.engine, named, "track.acme.test")
    resolver = CnameResolver.from_settings(named)
    after = verify_domain(database.engine, domain.account_id, domain.id, resolver)
    assert after.status == DomainStatus.FAILED
    assert after.last_error is not None and "no such name" in after.last_error
    dns.cname("track.acme.test", CNAME_TARGET)
    again = verify_domain(database.engine, domain.account_id, domain.id, resolver)
    assert again.status == DomainStatus.VERIFIED
    assert tracking_base_url(again, named) == "https://track.acme.test"


def test_localhost_names_are_refused_on_a_real_instance(
    database: Database, settings: Settings, dns: FakeDns
) -> None:
    with pytest.raises(Invalid, match="only on an instance tried out locally") as refused:
        add(database.engine, settings, LOCAL)
    assert refused.value.field == "hostname"


def test_a_localhost_domain_stops_verifying_when_the_instance_goes_public(
    database: Database, tmp_path: Path, settings: Settings, dns: FakeDns
) -> None:
    trial = local_settings(tmp_path, database, dns.server)
    domain = add(database.engine, trial, LOCAL)
    verified = verify_domain(
        database.engine, domain.account_id, domain.id, CnameResolver.from_settings(trial)
    )
    assert verified.status == DomainStatus.VERIFIED
    # The same database behind a public base URL (`settings`): the name cannot reach it.
    after = verify_domain(
        database.engine, domain.account_id, domain.id, CnameResolver.from_settings(settings)
    )
    assert after.status == DomainStatus.FAILED
    assert after.last_error is not None
    assert "works only while this instance's base URL is on this machine" in after.last_error
