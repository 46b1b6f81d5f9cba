"""Published networks of machine traffic per source (e.g. Apple's Private Relay egress list)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select

from pixeltrail.store.schema import SOURCE_LENGTH, ip_ranges
from pixeltrail.tracking.hits import now_ms

APPLE_MPP = "apple_mpp"
MAX_ERRORS_SHOWN = 10


def parse_apple_csv(text: str) -> list[str]:
    """The networks in Apple's egress list (`prefix,country,region,city,` per line).

    Networks come back normalised (host bits cleared) and without duplicates, in file order.
    Raises ValueError naming every bad line (the first ten) if any line is bad, or if the
    text holds no network at all: a partial or empty list must never replace a good one.
    """
    networks: dict[str, None] = {}
    errors: list[str] = []
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        prefix = line.split(",", 1)[0].strip()
        try:
            network = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            shown = line if len(line) <= 60 else line[:57] + "..."
            errors.append(f"line {number}: {prefix!r} is not an IP network ({shown!r})")
            continue
        networks[str(network)] = None
    if errors:
        more = len(errors) - MAX_ERRORS_SHOWN
        listed = "\n".join(f"  {e}" for e in errors[:MAX_ERRORS_SHOWN])
        tail = f"\n  ... and {more} more bad lines" if more > 0 else ""
        plural = "s" if len(errors) > 1 else ""
        raise ValueError(f"{len(errors)} bad line{plural} in the IP range list:\n{listed}{tail}")
    if not networks:
        raise ValueError("the IP range list holds no networks")
    return list(networks)


def replace_ranges(conn: Connection, source: str, networks: Sequence[str]) -> int:
    """Make `networks` the whole list of `source`, in the caller's transaction.

    Returns how many networks the source now has (duplicates count once).
    """
    if not source or len(source) > SOURCE_LENGTH:
        raise ValueError(f"source: must be 1 to {SOURCE_LENGTH} characters, got {source!r}")
    unique = list(dict.fromkeys(str(ipaddress.ip_network(n, strict=False)) for n in networks))
    conn.execute(delete(ip_ranges).where(ip_ranges.c.source == source))
    if unique:
        loaded_at_ms = now_ms()
        conn.execute(
            insert(ip_ranges),
            [{"source": source, "network": n, "loaded_at_ms": loaded_at_ms} for n in unique],
        )
    return len(unique)


def ranges(conn: Connection, source: str) -> list[str]:
    """The networks of `source`, in the order they were loaded."""
    query = select(ip_ranges.c.network).where(ip_ranges.c.source == source)
    return list(conn.scalars(query.order_by(ip_ranges.c.id)))
