"""Checking tracking domains' DNS: on request (verify) and periodically (re-check).

What DNS answered is turned into a status and, when it is not right, into words saying what
DNS said and what to fix. No transaction is held while DNS answers.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, func, or_, select, update

from pixeltrail.platform.domains.dns_check import CnameResolver, DnsAnswer
from pixeltrail.platform.domains.domains import TrackingDomain, domain_of, get_domain
from pixeltrail.platform.domains.hostnames import is_local_name
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.errors import NotFound
from pixeltrail.platform.ids import now_ms
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import tracking_domains

VERIFIED_EVERY_MS = 6 * 3600 * 1000
UNVERIFIED_EVERY_MS = 10 * 60 * 1000


def judge(domain: TrackingDomain, answer: DnsAnswer, explicit: bool) -> tuple[str, str | None]:
    """The status and last error after a DNS check, in words saying what to fix.

    Periodic checks (`explicit` false) only promote a domain to verified or demote a verified
    one on a definite answer: a pending domain waiting for its record stays pending, and a
    resolver's hiccup never fails a domain that works.
    """
    host, target = domain.hostname, domain.cname_target
    if target in answer.chain:
        return DomainStatus.VERIFIED, None
    if answer.failure is not None:
        error = f"{answer.failure}; check that DNS can be reached, then verify again"
        if domain.status == DomainStatus.VERIFIED:
            return DomainStatus.VERIFIED, f"the last re-check got no answer ({error})"
        return (DomainStatus.FAILED if explicit else domain.status), error
    fix = f"a CNAME record {host} → {target}"
    if is_local_name(host):
        error = (
            f"{host} is under .localhost, which always means the reader's own computer: it "
            "works only while this instance's base URL is on this machine (127.0.0.1 or "
            "localhost); add a hostname of yours with a CNAME record instead"
        )
    elif answer.chain:
        via = f"{answer.chain[0]}." + (
            f" (and on to {answer.chain[-1]}.)" if len(answer.chain) > 1 else ""
        )
        if answer.missing:
            error = f"{host} points at {via}, which does not exist, not at {target}.; use {fix}"
        else:
            error = f"{host} points at {via}, not at {target}.; change it to {fix}"
    elif answer.missing:
        error = f"no such name: create {fix} at your DNS provider, then verify again"
    elif answer.addresses:
        kinds = {"AAAA" if ":" in a else "A" for a in answer.addresses}
        kind = kinds.pop() if len(kinds) == 1 else "address"
        listed = ", ".join(answer.addresses[:4]) + (", ..." if len(answer.addresses) > 4 else "")
        error = f"{host} has {kind} records ({listed}) but no CNAME; replace them with {fix}"
    else:
        error = f"{host} exists but has no CNAME record; create {fix}"
    if domain.served:
        error += (
            ". It was verified before: this server still answers for it, but readers reach "
            "it only while the CNAME points here"
        )
    failed = explicit or domain.status == DomainStatus.VERIFIED
    return (DomainStatus.FAILED if failed else domain.status), error


def _record(
    engine: Engine, domain: TrackingDomain, answer: DnsAnswer, explicit: bool
) -> TrackingDomain:
    status, error = judge(domain, answer, explicit)
    checked = now_ms()
    verified_at = checked if target_reached(domain, answer) else domain.verified_at_ms
    with write_transaction(engine) as conn:
        done = conn.execute(
            update(tracking_domains)
            .where(tracking_domains.c.id == domain.id)
            .values(
                status=status, last_error=error, checked_at_ms=checked, verified_at_ms=verified_at
            )
        )
        if done.rowcount == 0:  # removed while DNS was being asked
            raise NotFound("no such tracking domain", "id")
        return get_domain(conn, domain.account_id, domain.id)


def target_reached(domain: TrackingDomain, answer: DnsAnswer) -> bool:
    return domain.cname_target in answer.chain


def verify_domain(
    engine: Engine, account_id: str, domain_id: str, resolver: CnameResolver
) -> TrackingDomain:
    """Check the domain's CNAME now and store the outcome (failed when it is not right).

    Takes the engine, not a connection: DNS may take seconds, and no transaction (on SQLite,
    no write lock) is held while it answers.
    """
    with engine.begin() as conn:
        domain = get_domain(conn, account_id, domain_id)
    answer = resolver.lookup(domain.hostname, domain.cname_target)
    return _record(engine, domain, answer, explicit=True)


def due_domains(conn: Connection, now: int, limit: int = 100) -> list[TrackingDomain]:
    """Domains whose periodic check is due, least recently checked first."""
    checked = tracking_domains.c.checked_at_ms
    status = tracking_domains.c.status
    query = (
        select(tracking_domains)
        .where(
            or_(
                checked.is_(None),
                (status == DomainStatus.VERIFIED) & (checked < now - VERIFIED_EVERY_MS),
                (status != DomainStatus.VERIFIED) & (checked < now - UNVERIFIED_EVERY_MS),
            )
        )
        .order_by(func.coalesce(checked, 0), tracking_domains.c.id)
        .limit(limit)
    )
    return [domain_of(row) for row in conn.execute(query)]


def recheck_domains(
    engine: Engine,
    resolver: CnameResolver,
    now: int | None = None,
    limit: int = 100,
    stopping: Callable[[], bool] = lambda: False,
) -> list[TrackingDomain]:
    """Run the due periodic checks (until `stopping()`); returns the domains that changed
    status or started or stopped being served."""
    with engine.begin() as conn:
        due = due_domains(conn, now_ms() if now is None else now, limit)
    changed: list[TrackingDomain] = []
    for domain in due:
        if stopping():
            break
        answer = resolver.lookup(domain.hostname, domain.cname_target)
        try:
            after = _record(engine, domain, answer, explicit=False)
        except NotFound:
            continue
        if after.served != domain.served or after.status != domain.status:
            changed.append(after)
    return changed
