"""Per-contact campaign reports: pages of contacts (by contact id) and the CSV export.

A campaign's contacts here are those with at least one sent message of the campaign. Counts
and first/last opens come from the report aggregates; the lists of clicks and of machine
events from the events themselves, oldest first, at most LIST_LIMIT of each per contact (the
counts are always complete). Definitions: see platform/reports.py.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from sqlalchemy import Connection, Select, and_, func, not_, select

from pixeltrail.platform.paging import check_limit, decode_cursor, encode_cursor
from pixeltrail.platform.reports import campaign_of, iso_utc
from pixeltrail.store.schema import contacts, events, messages, report_links, report_messages
from pixeltrail.store.schema import suppressions as sup
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, HUMAN

LIST_LIMIT = 100
CHUNK = 1000
# OWASP's CSV injection advice: a cell starting with one of these (or a full-width form) could
# run as a formula in a spreadsheet, so it gets a leading '.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
CSV_COLUMNS = (
    "contact_id",
    "email",
    "suppressed",
    "first_opened_at",
    "last_opened_at",
    "open_count",
    "proxy_open_count",
    "click_count",
    "clicked_links",
    "machine_open_count",
    "machine_click_count",
)

_rm, _rl, _e = report_messages.c, report_links.c, events.c
Person = tuple[str, str, str | None]  # contact id, email, suppression reason


def escape_cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


def _people(campaign_id: str, after: str | None = None) -> Select[Any]:
    """Contacts with a sent message of the campaign, by id, with their suppression if any."""
    sent = (
        select(messages.c.contact_id)
        .where(messages.c.campaign_id == campaign_id, messages.c.status == "sent")
        .distinct()
    )
    if after is not None:
        sent = sent.where(messages.c.contact_id > after)
    joined = contacts.outerjoin(
        sup, and_(sup.c.account_id == contacts.c.account_id, sup.c.email == contacts.c.email)
    )
    return (
        select(contacts.c.id, contacts.c.email, sup.c.reason)
        .select_from(joined)
        .where(contacts.c.id.in_(sent))
        .order_by(contacts.c.id)
    )


def _counts(conn: Connection, campaign_id: str, first: str, last: str) -> dict[str, Any]:
    query = (
        select(
            _rm.contact_id,
            func.sum(_rm.opens).label("opens"),
            func.sum(_rm.proxy_opens).label("proxy_opens"),
            func.sum(_rm.machine_opens).label("machine_opens"),
            func.min(_rm.first_open_ms).label("first_open_ms"),
            func.max(_rm.last_open_ms).label("last_open_ms"),
            func.sum(_rm.clicks).label("clicks"),
            func.sum(_rm.machine_clicks).label("machine_clicks"),
        )
        .where(_rm.campaign_id == campaign_id, _rm.contact_id.between(first, last))
        .group_by(_rm.contact_id)
    )
    return {row.contact_id: row for row in conn.execute(query)}


def _clicked_links(
    conn: Connection, campaign_id: str, first: str, last: str
) -> dict[str, set[str]]:
    query = select(_rl.contact_id, _rl.destination).where(
        _rl.campaign_id == campaign_id, _rl.contact_id.between(first, last), _rl.clicks > 0
    )
    found: dict[str, set[str]] = defaultdict(set)
    for contact_id, destination in conn.execute(query):
        found[contact_id].add(destination or "")
    return found


def _events(
    conn: Connection, campaign_id: str, first: str, last: str
) -> dict[str, list[dict[str, Any]]]:
    """Clicks and machine events of these contacts' messages (counted opens are left out)."""
    owners: dict[str, str] = dict(
        conn.execute(
            select(_rm.message_id, _rm.contact_id).where(
                _rm.campaign_id == campaign_id, _rm.contact_id.between(first, last)
            )
        ).all()
    )
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    message_ids = sorted(owners)
    counted = and_(_e.kind == "open", _e.classification.in_(sorted(COUNTED_AS_OPEN)))
    for start in range(0, len(message_ids), CHUNK):
        query = (
            select(events)
            .where(_e.message_id.in_(message_ids[start : start + CHUNK]), not_(counted))
            .order_by(_e.at_ms, _e.id)
        )
        for row in conn.execute(query):
            found[owners[row.message_id]].append(
                {
                    "message_id": row.message_id,
                    "kind": row.kind,
                    "at": iso_utc(row.at_ms),
                    "link": row.link,
                    "destination": row.destination,
                    "classification": row.classification,
                    "reason": row.reason,
                }
            )
    return found


def _row(person: Person, counts: Any) -> dict[str, Any]:
    contact_id, email, suppressed = person
    return {
        "contact_id": contact_id,
        "email": email,
        "suppressed": suppressed,
        "first_opened_at": iso_utc(counts.first_open_ms) if counts else None,
        "last_opened_at": iso_utc(counts.last_open_ms) if counts else None,
        "open_count": int(counts.opens) if counts else 0,
        "proxy_open_count": int(counts.proxy_opens) if counts else 0,
        "click_count": int(counts.clicks) if counts else 0,
        "machine_open_count": int(counts.machine_opens) if counts else 0,
        "machine_click_count": int(counts.machine_clicks) if counts else 0,
    }


def _rows(conn: Connection, campaign_id: str, people: Sequence[Person]) -> list[dict[str, Any]]:
    if not people:
        return []
    first, last = people[0][0], people[-1][0]
    counts = _counts(conn, campaign_id, first, last)
    found = _events(conn, campaign_id, first, last)
    rows = []
    for person in people:
        row = _row(person, counts.get(person[0]))
        mine = found.get(person[0], [])
        clicks = [e for e in mine if e["kind"] == "click" and e["classification"] == HUMAN]
        keys = ("message_id", "link", "destination", "at")
        row["clicks"] = [{k: e[k] for k in keys} for e in clicks[:LIST_LIMIT]]
        row["machine_events"] = [e for e in mine if e["classification"] != HUMAN][:LIST_LIMIT]
        rows.append(row)
    return rows


def contacts_page(
    conn: Connection,
    account_id: str,
    campaign_id: str,
    cursor: str | None = None,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of per-contact rows (by contact id) and the cursor of the next, if any."""
    campaign_of(conn, account_id, campaign_id)
    size = check_limit(limit)
    after = decode_cursor(cursor)[1] if cursor else None
    query = _people(campaign_id, after).limit(size + 1)
    people = [(row.id, row.email, row.reason) for row in conn.execute(query)]
    following = encode_cursor(0, people[size - 1][0]) if len(people) > size else None
    return _rows(conn, campaign_id, people[:size]), following


def _people_chunks(conn: Connection, campaign_id: str) -> list[list[Person]]:
    people = [(row.id, row.email, row.reason) for row in conn.execute(_people(campaign_id))]
    return [people[start : start + CHUNK] for start in range(0, len(people), CHUNK)]


def all_contact_rows(
    conn: Connection, account_id: str, campaign_id: str
) -> Iterator[dict[str, Any]]:
    """Every per-contact row of the campaign, by contact id (for the CLI's --json)."""
    campaign_of(conn, account_id, campaign_id)
    for people in _people_chunks(conn, campaign_id):
        yield from _rows(conn, campaign_id, people)


def write_contacts_csv(conn: Connection, account_id: str, campaign_id: str, out: TextIO) -> int:
    """The per-contact CSV (counts, no event lists) to `out`; returns how many contacts."""
    campaign_of(conn, account_id, campaign_id)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    written = 0
    for people in _people_chunks(conn, campaign_id):
        first, last = people[0][0], people[-1][0]
        counts = _counts(conn, campaign_id, first, last)
        links = _clicked_links(conn, campaign_id, first, last)
        for person in people:
            row = _row(person, counts.get(person[0]))
            row["clicked_links"] = " ".join(sorted(links.get(person[0], ())))
            writer.writerow(
                escape_cell(value) if isinstance(value, str) else ("" if value is None else value)
                for value in (row[column] for column in CSV_COLUMNS)
            )
            written += 1
    return written
