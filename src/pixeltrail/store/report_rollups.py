"""Per-contact report rows, and the per-campaign sums kept from their changes.

A contact's rows (report_contacts, report_contact_links) are recomputed from the events of
the contact's messages of the campaign, plus what its purged events had counted
(store/purged_totals.py); what the recomputation changed (new rows minus old
ones, counts and "has at least one") is added to the campaign's rows (report_campaigns,
report_links). So the campaign's rows always equal the sums of its contacts' rows.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    Table,
    any_,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from pixeltrail.store.purged_totals import with_purged_contacts, with_purged_links
from pixeltrail.store.schema import (
    CONTACT_COUNTS,
    LINK_COUNTS,
    events,
    messages,
    report_campaigns,
    report_contact_links,
    report_contacts,
    report_links,
)
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, Classification

CHUNK = 500

_e, _m = events.c, messages.c
_OPEN, _CLICK = _e.kind == "open", _e.kind == "click"
_COUNTED = _e.classification.in_(sorted(COUNTED_AS_OPEN))
_HUMAN = _e.classification == Classification.HUMAN
_BOTH = messages.join(events, _e.message_id == _m.id)


def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def key_of(*parts: str | None) -> str:
    """A short, stable key for text too long to index (a URL, a reason)."""
    joined = "\x00".join(part or "" for part in parts)
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def among(
    conn: Connection, column: ColumnElement[str], values: Sequence[str]
) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(array)`: one parameter, not hundreds
    (psycopg then reuses the statement instead of parsing a new one for every list)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
    return column.in_(values)


def chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


def add_to(
    conn: Connection, table: Table, rows: list[dict[str, Any]], fields: Iterable[str]
) -> None:
    """Insert rows, or add their `fields` to the rows already there (same primary key)."""
    if not rows:
        return
    make = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = make(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={field: table.c[field] + statement.excluded[field] for field in fields},
    )
    conn.execute(statement, rows)


def _contact_rows(conn: Connection, campaign_id: str, contact_ids: list[str]) -> Select[Any]:
    return (
        select(
            _m.campaign_id,
            _m.contact_id,
            count_if(_OPEN & _COUNTED).label("opens"),
            count_if(_OPEN & (_e.classification == Classification.PROXY_OPEN)).label("proxy_opens"),
            count_if(_OPEN & ~_COUNTED).label("machine_opens"),
            func.min(case((_OPEN & _COUNTED, _e.at_ms))).label("first_open_ms"),
            func.max(case((_OPEN & _COUNTED, _e.at_ms))).label("last_open_ms"),
            count_if(_CLICK & _HUMAN).label("clicks"),
            count_if(_CLICK & ~_HUMAN).label("machine_clicks"),
        )
        .select_from(_BOTH)
        .where(_m.campaign_id == campaign_id, among(conn, _m.contact_id, contact_ids))
        .group_by(_m.campaign_id, _m.contact_id)
    )


def _link_rows(conn: Connection, campaign_id: str, contact_ids: list[str]) -> Select[Any]:
    return (
        select(
            _m.campaign_id,
            _m.contact_id,
            _m.id.label("message_id"),
            _e.link,
            func.max(_e.destination).label("destination"),
            count_if(_HUMAN).label("clicks"),
            count_if(~_HUMAN).label("machine_clicks"),
        )
        .select_from(_BOTH)
        .where(
            _m.campaign_id == campaign_id,
            among(conn, _m.contact_id, contact_ids),
            _CLICK,
            _e.link.is_not(None),
            _e.honeypot == false(),
        )
        .group_by(_m.campaign_id, _m.contact_id, _m.id, _e.link)
    )


def _campaign_sums(rows: Iterable[Any], sign: int, into: Counter[str]) -> None:
    for row in rows:
        for field in CONTACT_COUNTS:
            value = getattr(row, field)
            into[field] += sign * value
            into[f"unique_{field}"] += sign * (value > 0)


def _link_sums(
    rows: Iterable[Any], sign: int, into: dict[str, tuple[str | None, Counter[str]]]
) -> None:
    per_contact: dict[tuple[str, str | None], Counter[str]] = {}
    for row in rows:
        counts = per_contact.setdefault((row.contact_id, row.destination), Counter())
        for field in LINK_COUNTS:
            counts[field] += getattr(row, field)
    for (_, destination), counts in per_contact.items():
        _, total = into.setdefault(key_of(destination), (destination, Counter()))
        for field in LINK_COUNTS:
            total[field] += sign * counts[field]
            total[f"unique_{field}"] += sign * (counts[field] > 0)


def _replace(
    conn: Connection, table: Table, campaign_id: str, chunk: list[str], new: Sequence[Any]
) -> Sequence[Any]:
    """Put `new` in place of the chunk's rows of `table`; returns the rows replaced."""
    mine = (table.c.campaign_id == campaign_id) & among(conn, table.c.contact_id, chunk)
    old = conn.execute(delete(table).where(mine).returning(*table.columns)).all()
    if new:
        conn.execute(insert(table), [row._asdict() for row in new])
    return old


def refresh_contacts(conn: Connection, contacts_of: Mapping[str, Collection[str]]) -> None:
    """Recompute the rows of these contacts (by campaign) and add what changed to the
    campaigns' rows."""
    campaign_sums: dict[str, Counter[str]] = {}
    link_sums: dict[tuple[str, str], tuple[str | None, Counter[str]]] = {}
    for campaign_id, contact_ids in contacts_of.items():
        sums = campaign_sums.setdefault(campaign_id, Counter())
        links: dict[str, tuple[str | None, Counter[str]]] = {}
        for chunk in chunks(sorted(contact_ids)):
            new = conn.execute(_contact_rows(conn, campaign_id, chunk)).all()
            new = with_purged_contacts(conn, campaign_id, chunk, new)
            _campaign_sums(_replace(conn, report_contacts, campaign_id, chunk, new), -1, sums)
            _campaign_sums(new, 1, sums)
            new_links = conn.execute(_link_rows(conn, campaign_id, chunk)).all()
            new_links = with_purged_links(conn, campaign_id, chunk, new_links)
            old_links = _replace(conn, report_contact_links, campaign_id, chunk, new_links)
            _link_sums(old_links, -1, links)
            _link_sums(new_links, 1, links)
        link_sums.update({(campaign_id, key): value for key, value in links.items()})
    add_to(
        conn,
        report_campaigns,
        [{"campaign_id": c, **{f: sums[f] for f in _sum_fields(CONTACT_COUNTS)}}
         for c, sums in campaign_sums.items() if any(sums.values())],
        _sum_fields(CONTACT_COUNTS),
    )  # fmt: skip
    add_to(
        conn,
        report_links,
        [
            {"campaign_id": c, "destination_key": key, "destination": destination,
             **{f: sums[f] for f in _sum_fields(LINK_COUNTS)}}
            for (c, key), (destination, sums) in link_sums.items() if any(sums.values())
        ],
        _sum_fields(LINK_COUNTS),
    )  # fmt: skip


def _sum_fields(fields: Sequence[str]) -> list[str]:
    return [name for field in fields for name in (field, f"unique_{field}")]
