"""Verification against a real DNS server: statuses and the words a user reads."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, update

from pixeltrail.config import ConfigError, Settings
from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.platform.domains.checks import (
    VERIFIED_EVERY_MS,
    due_domains,
    recheck_domains,
    verify_domain,
)
from pixeltrail.platform.domains.dns_check import CnameResolver, parse_servers
from pixeltrail.platform.domains.domains import (
    TrackingDomain,
    add_domain,
    get_domain,
    served_hostnames,
)
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.ids import now_ms
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import tracking_domains

from ..dbs import Database
from .conftest import CNAME_TARGET, FakeDns

HOST = "track.acme.test"


@pytest.fixture
def engine(database: Database) -> Engine:
    return database.engine


@pytest.fixture
def resolver(dns: FakeDns) -> CnameResolver:
    return CnameResolver([dns.server])


def added(engine: Engine, settings: Settings, hostname: str = HOST) -> TrackingDomain:
    with write_transaction(engine) as conn:
        account, _ = create_account(conn, "Acme", "owner@acme.example")
        return add_domain(conn, account.id, hostname, settings)


def verify(engine: Engine, domain: TrackingDomain, resolver: CnameResolver) -> TrackingDomain:
    return verify_domain(engine, domain.account_id, domain.id, resolver)


def test_a_cname_to_the_instance_verifies(
    engine: Engine, settings: Settings, dns: FakeDns, resolver: CnameResolver
) -> None:
    domain = added(engine, settings)
    assert (domain.status, domain.cname_target, domain.verified_at_ms) == (
        DomainStatus.PENDING,
        CNAME_TARGET,
        None,
    )
    dns.cname(HOST, CNAME_TARGET.upper() + ".")  # case and trailing dot do not matter
    before = now_ms()
    after = verify(engine, domain, resolver)
    assert (after.status, after.last_error) == (DomainStatus.VERIFIED, None)
    assert after.checked_at_ms is not None and after.checked_at_ms >= before
    assert after.verified_at_ms == after.checked_at_ms
    assert get_domain_row(engine, after) == after


def get_domain_row(engine: Engine, domain: TrackingDomain) -> TrackingDomain:
    with engine.connect() as conn:
        return get_domain(conn, domain.account_id, domain.id)


def test_a_cname_chain_that_reaches_the_instance_verifies(
    engine: Engine, settings: Settings, dns: FakeDns, resolver: CnameResolver
) -> None:
    dns.cname(HOST, "edge.acme-cdn.test")
    dns.cname("edge.acme-cdn.test", CNAME_TARGET)
    assert verify(engine, added(engine, settings), resolver).status == DomainStatus.VERIFIED


@pytest.mark.parametrize(
    ("records", "words"),
    [
        ({}, f"no such name: create a CNAME record {HOST} → {CNAME_TARGET}"),
        (
            {HOST: [("A", "203.0.113.7"), ("A", "203.0.113.8")]},
            f"{HOST} has A records (203.0.113.7, 203.0.113.8) but no CNAME; replace them "
            f"with a CNAME record {HOST} → {CNAME_TARGET}",
        ),
        (
            {HOST: [("AAAA", "2001:db8::7")]},
            f"{HOST} has AAAA records (2001:db8::7) but no CNAME",
        ),
        (
            {HOST: [("CNAME", "other.example")], "other.example": [("A", "198.51.100.1")]},
            f"{HOST} points at other.example., not at {CNAME_TARGET}.; change it to a CNAME "
            f"record {HOST} → {CNAME_TARGET}",
        ),
        (
            {HOST: [("CNAME", "gone.example")]},
            f"{HOST} points at gone.example., which does not exist, not at {CNAME_TARGET}.",
        ),
        (
            {HOST: [("CNAME", "a.acme.test")], "a.acme.test": [("CNAME", "b.acme.test")]},
            f"{HOST} points at a.acme.test. (and on to b.acme.test.), which does not exist",
        ),
        ({HOST: [("TXT", "hello")]}, f"{HOST} exists but has no CNAME record; create a CNAME"),
        (
            {HOST: [("CNAME", "loop.acme.test")], "loop.acme.test": [("CNAME", HOST)]},
            "the CNAME chain loops at track.acme.test.",
        ),
    ],
)
def test_wrong_dns_fails_saying_what_dns_answered_and_what_to_fix(
    engine: Engine,
    settings: Settings,
    dns: FakeDns,
    resolver: CnameResolver,
    records: dict[str, list[tuple[str, str]]],
    words: str,
) -> None:
    dns.records.update(records)
    after = verify(engine, added(engine, settings), resolver)
    assert after.status == DomainStatus.FAILED
    assert after.last_error is not None
    assert words in after.last_error
    assert after.verified_at_ms is None
    assert after.checked_at_ms is not None


def test_a_server_failure_is_reported_as_such(
    engine: Engine, settings: Settings, dns: FakeDns, resolver: CnameResolver
) -> None:
    dns.servfail.add(HOST)
    after = verify(engine, added(engine, settings), resolver)
    assert after.status == DomainStatus.FAILED
    assert after.last_error is not None
    assert "could not answer" in after.last_error
    assert "SERVFAIL" in after.last_error


def test_no_answer_in_time_is_a_failure_naming_the_servers(
    engine: Engine, settings: Settings, silent_dns: str
) -> None:
    slow = CnameResolver([silent_dns], lifetime=0.3)
    after = verify(engine, added(engine, settings), slow)
    assert after.status == DomainStatus.FAILED
    assert after.last_error is not None
    assert f"no DNS answer within 0.3 s from {silent_dns}" in after.last_error


def test_rechecks_follow_dns_and_never_drop_a_domain_that_was_verified(
    engine: Engine, settings: Settings, dns: FakeDns, resolver: CnameResolver, silent_dns: str
) -> None:
    domain = added(engine, settings)
    # Periodic checks leave a pending domain pending while its record is missing...
    assert recheck_domains(engine, resolver) == []
    waiting = get_domain_row(engine, domain)
    assert waiting.status == DomainStatus.PENDING
    assert waiting.last_error is not None and "no such name" in waiting.last_error
    assert served(engine) == set()
    # ...and verify it as soon as the record appears (when its next check is due).
    dns.cname(HOST, CNAME_TARGET)
    [changed] = recheck_domains(engine, resolver, now=now_ms() + 11 * 60_000)
    assert changed.status == DomainStatus.VERIFIED
    assert served(engine) == {HOST}

    # A verified domain is re-checked every 6 hours, not before.
    with engine.connect() as conn:
        assert due_domains(conn, now_ms() + VERIFIED_EVERY_MS - 60_000) == []
    # A resolver that does not answer does not fail a domain that works.
    later = now_ms() + VERIFIED_EVERY_MS + 60_000
    assert recheck_domains(engine, CnameResolver([silent_dns], lifetime=0.2), now=later) == []
    kept = get_domain_row(engine, domain)
    assert kept.status == DomainStatus.VERIFIED
    assert kept.last_error is not None and "the last re-check got no answer" in kept.last_error

    # The CNAME moved away: failed, and the error says links reach us only while it points
    # here; it is still served, for the links already sent.
    dns.cname(HOST, "elsewhere.example")
    later += VERIFIED_EVERY_MS + 60_000
    [moved] = recheck_domains(engine, resolver, now=later)
    assert moved.status == DomainStatus.FAILED
    assert moved.last_error is not None
    assert "points at elsewhere.example." in moved.last_error
    assert "It was verified before" in moved.last_error
    assert moved.verified_at_ms == changed.verified_at_ms
    assert served(engine) == {HOST}

    # Fixed again: verified again at the next check.
    dns.cname(HOST, CNAME_TARGET)
    [back] = recheck_domains(engine, resolver, now=later + 11 * 60_000)
    assert (back.status, back.last_error) == (DomainStatus.VERIFIED, None)


def served(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return served_hostnames(conn)


def test_a_domain_checked_a_moment_ago_is_not_checked_again(
    engine: Engine, settings: Settings, dns: FakeDns, resolver: CnameResolver
) -> None:
    domain = added(engine, settings)
    with write_transaction(engine) as conn:
        conn.execute(
            update(tracking_domains)
            .where(tracking_domains.c.id == domain.id)
            .values(checked_at_ms=now_ms())
        )
    with engine.connect() as conn:
        assert due_domains(conn, now_ms()) == []
    assert recheck_domains(engine, resolver) == []
    assert get_domain_row(engine, domain).status == DomainStatus.PENDING


@pytest.mark.parametrize(
    "value", ["dns.example:53", "127.0.0.1:0", "127.0.0.1:99999", "[::1]:x", "1.2.3"]
)
def test_unusable_dns_servers_are_a_setting_error(value: str) -> None:
    with pytest.raises(ConfigError, match="PIXELTRAIL_DNS_SERVERS"):
        parse_servers([value])


def test_dns_servers_take_ipv4_ipv6_and_ports() -> None:
    servers = parse_servers(["9.9.9.9", "127.0.0.1:5353", "2620:fe::fe", "[::1]:5300"])
    assert [(s.address, s.port) for s in servers] == [  # type: ignore[attr-defined]
        ("9.9.9.9", 53),
        ("127.0.0.1", 5353),
        ("2620:fe::fe", 53),
        ("::1", 5300),
    ]
