"""Custom tracking domains: added per account, verified by their CNAME, re-checked, served.

Checking DNS (explicitly or periodically) lives in `domain_checks`; DNS I/O in `dns_check`.

Status: `pending` (added, its CNAME not seen yet; periodic checks keep looking), `verified`
(the CNAME points at this instance), `failed` (an explicit verification found it wrong, or a
verified domain stopped pointing here). A domain that was verified once (`verified_at_ms` set)
keeps being served whatever its status, so links already sent never break because of us.

Trying it locally: on an instance whose base URL is on this machine (127.0.0.1, localhost),
nobody can create a CNAME to it, so hostnames under `.localhost` (track.localhost) take the
CNAME's place. RFC 6761 makes them this machine's names, browsers resolve them to loopback by
themselves, so they verify without asking DNS (see `dns_check`) and their links are plain http
on the base URL's port. On any other instance they are refused: they could never reach it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError

from pixeltrail.config import Settings
from pixeltrail.platform.domains.hostnames import (
    is_local_name,
    is_loopback_host,
    normalize_hostname,
)
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.errors import Conflict, Invalid, NotFound
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.platform.paging import page
from pixeltrail.store.schema import campaigns, tracking_domains

__all__ = [  # normalize_hostname comes from `hostnames`, offered here with the rest
    "LOCAL_TARGET",
    "TrackingDomain",
    "add_domain",
    "delete_domain",
    "domain_of",
    "get_domain",
    "list_domains",
    "normalize_hostname",
    "served_domains",
    "served_hostnames",
    "tracking_base_url",
]

# What a `.localhost` domain stands for: an alias of this machine, as a CNAME to it would be.
LOCAL_TARGET = "localhost"


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class TrackingDomain:
    id: str
    account_id: str
    hostname: str
    status: str
    cname_target: str
    last_error: str | None
    checked_at_ms: int | None
    verified_at_ms: int | None
    created_at_ms: int

    @property
    def served(self) -> bool:
        """Whether the tracking server answers for it: verified now or at some time before."""
        return self.verified_at_ms is not None

    @property
    def local(self) -> bool:
        """A `.localhost` name of a locally tried instance: no DNS record to create."""
        return is_local_name(self.hostname)

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hostname": self.hostname,
            "status": self.status,
            "cname_target": self.cname_target,
            "last_error": self.last_error,
            "dns_record": {"type": "CNAME", "name": self.hostname, "value": self.cname_target},
            "verified_at": _iso(self.verified_at_ms),
            "checked_at": _iso(self.checked_at_ms),
            "created_at": _iso(self.created_at_ms),
        }


def domain_of(row: Any) -> TrackingDomain:
    return TrackingDomain(
        id=row.id,
        account_id=row.account_id,
        hostname=row.hostname,
        status=row.status,
        cname_target=row.cname_target,
        last_error=row.last_error,
        checked_at_ms=row.checked_at_ms,
        verified_at_ms=row.verified_at_ms,
        created_at_ms=row.created_at_ms,
    )


def _cname_target(settings: Settings) -> str:
    try:
        return normalize_hostname(settings.cname_host)
    except Invalid:
        raise Conflict(
            f"this instance cannot take custom tracking domains: a CNAME cannot point at "
            f"{settings.cname_host!r}; its administrator sets PIXELTRAIL_CNAME_TARGET (or a "
            "PIXELTRAIL_BASE_URL with a hostname)"
        ) from None


def add_domain(
    conn: Connection, account_id: str, hostname: str, settings: Settings
) -> TrackingDomain:
    """A new pending domain; the answer says which CNAME record to create."""
    name = normalize_hostname(hostname)
    if is_local_name(name):
        if not is_loopback_host(settings.instance_host):
            raise Invalid(
                f"{name} is under .localhost, which always means the reader's own computer: "
                "such names work only on an instance tried out locally (base URL on 127.0.0.1 "
                "or localhost); add a hostname of yours, like track.example.com",
                "hostname",
            )
        target = LOCAL_TARGET
    else:
        target = _cname_target(settings)
    if name in {settings.instance_host.rstrip(".").lower(), target}:
        raise Invalid(
            f"{name} is this instance's own tracking host; add a hostname of yours that has "
            f"a CNAME pointing at {target}",
            "hostname",
        )
    owner = conn.execute(
        select(tracking_domains.c.account_id).where(tracking_domains.c.hostname == name)
    ).first()
    if owner is not None:
        raise _taken(name, owner.account_id == account_id)
    domain_id = new_id("dom")
    try:
        with conn.begin_nested():
            conn.execute(
                insert(tracking_domains).values(
                    id=domain_id,
                    account_id=account_id,
                    hostname=name,
                    status=DomainStatus.PENDING,
                    cname_target=target,
                    created_at_ms=now_ms(),
                )
            )
    except IntegrityError:  # added by someone else between the check and the insert
        raise _taken(name, mine=False) from None
    return get_domain(conn, account_id, domain_id)


def _taken(name: str, mine: bool) -> Conflict:
    if mine:
        return Conflict(f"{name} is already one of your tracking domains", "hostname")
    # Whose it is stays unsaid: one account must not learn about another.
    return Conflict(
        f"{name} is already in use on this instance; if it is yours, ask the instance's "
        "administrator",
        "hostname",
    )


def get_domain(conn: Connection, account_id: str, domain_id: str) -> TrackingDomain:
    row = conn.execute(
        select(tracking_domains).where(
            tracking_domains.c.id == domain_id, tracking_domains.c.account_id == account_id
        )
    ).first()
    if row is None:
        raise NotFound("no such tracking domain", "id")
    return domain_of(row)


def list_domains(
    conn: Connection, account_id: str, cursor: str | None = None, limit: int | None = None
) -> tuple[list[TrackingDomain], str | None]:
    query = select(tracking_domains).where(tracking_domains.c.account_id == account_id)
    rows, next_cursor = page(conn, query, tracking_domains, cursor, limit)
    return [domain_of(row) for row in rows], next_cursor


def delete_domain(conn: Connection, account_id: str, domain_id: str) -> TrackingDomain:
    """Remove a domain (links on it stop working); refused while a campaign uses it."""
    domain = get_domain(conn, account_id, domain_id)
    names = conn.execute(
        select(campaigns.c.name)
        .where(campaigns.c.tracking_domain_id == domain_id)
        .order_by(campaigns.c.name)
        .limit(4)
    ).scalars()
    used_by = list(names)
    if used_by:
        shown = ", ".join(repr(n) for n in used_by[:3]) + (" and more" if len(used_by) > 3 else "")
        kind = "campaign" if len(used_by) == 1 else "campaigns"
        raise Conflict(
            f"{domain.hostname} is the tracking domain of {kind} {shown}; give "
            f"{'it' if len(used_by) == 1 else 'them'} another tracking domain first",
            "id",
        )
    conn.execute(delete(tracking_domains).where(tracking_domains.c.id == domain_id))
    return domain


def served_hostnames(conn: Connection) -> set[str]:
    """Every hostname the tracking server answers for besides its own."""
    return set(served_domains(conn))


def served_domains(conn: Connection) -> dict[str, str]:
    """The hostnames the tracking server answers for besides its own, each with its account."""
    query = select(tracking_domains.c.hostname, tracking_domains.c.account_id).where(
        or_(
            tracking_domains.c.status == DomainStatus.VERIFIED,
            tracking_domains.c.verified_at_ms.isnot(None),
        )
    )
    return {row.hostname: row.account_id for row in conn.execute(query)}


def tracking_base_url(domain: TrackingDomain | None, settings: Settings) -> str:
    """The base of tracking links: the instance's own, or `https://<hostname>` on a domain.

    With PIXELTRAIL_TRACKING_SCHEME=http (local testing) the links keep the port of the base
    URL, where the server listens: http://track.acme.test:8000. A `.localhost` domain always
    does (http://track.localhost:8000): it only ever reaches this machine, where no certificate
    for it exists.
    """
    if domain is None:
        return settings.base_url.rstrip("/")
    if not domain.served:
        raise Invalid(
            f"{domain.hostname} is not verified yet: links on it would not work; create its "
            "CNAME record and verify it first",
            "tracking_domain_id",
        )
    scheme = "http" if domain.local else settings.tracking_scheme
    url = f"{scheme}://{domain.hostname}"
    port = urlsplit(settings.base_url).port
    if scheme == "http" and port is not None:
        url += f":{port}"
    return url
