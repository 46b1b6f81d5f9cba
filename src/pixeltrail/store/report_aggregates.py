"""Report aggregates, kept by the flusher as events arrive and as their verdicts change.

`record_report_changes` runs in the flusher's transaction, after the events are stored:

- the rows of each contact concerned (report_contacts, report_contact_links) are recomputed
  from the events of the contact's messages of the campaign, and what changed is added to the
  campaign's rows (report_campaigns, report_links: see report_rollups.py);
- each new event, and each changed verdict (-1 for the old one, +1 for the new one), is added
  to the campaign's timeline (report_timeline) and machine reasons (report_reasons).

So every number follows the current verdicts: a honeypot click that turns earlier clicks into
a scanner's moves them from people to machines. The sums are exact only if one transaction
records hits at a time: `take_recording_turn` makes flushers in several processes on one
PostgreSQL database take turns (SQLite has a single writer anyway). The retention purge
(store/event_retention.py) takes the same turn, and keeps what the events it deletes had
counted (store/purged_totals.py), which every recomputation from the events adds back.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import Connection, delete, func, insert, select, text

from pixeltrail.store.purged_totals import purged_reason_counts, purged_timeline_rows
from pixeltrail.store.report_rollups import (
    add_to,
    among,
    chunks,
    count_if,
    key_of,
    refresh_contacts,
)
from pixeltrail.store.schema import (
    events,
    messages,
    report_campaigns,
    report_contact_links,
    report_contacts,
    report_links,
    report_reasons,
    report_timeline,
)
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, Classification, Event, Verdict

QUARTER_HOUR_MS = 15 * 60 * 1000
TIMELINE_FIELDS = ("opens", "machine_opens", "clicks", "machine_clicks")
TABLES = (
    report_contacts,
    report_contact_links,
    report_campaigns,
    report_links,
    report_reasons,
    report_timeline,
)
# Any fixed 64-bit number, different from the migration lock ("pixrecrd" in ASCII).
RECORDING_LOCK_KEY = 0x70697872_65637264

_e, _m = events.c, messages.c
_IP_CANDIDATE = re.compile(r"[0-9A-Fa-f.:]*[.:][0-9A-Fa-f.:]*")
# Seconds and numbers of links in the timing rules' reasons ("clicked 2.5 s after sending",
# "all 3 links clicked within 1.2 s"), not numbers inside names ("Mozilla/5.0").
_COUNTS = re.compile(r"(?<![\w./])\d+(?:\.\d+)?(?= s\b| links\b| different links\b)")


def reason_label(reason: str) -> str:
    """A reason without its per-event details, so that reports can count by reason:
    addresses become {ip}, seconds and numbers of links become N."""

    def address(match: re.Match[str]) -> str:
        found = match.group()
        core = found.rstrip(".")  # an address ending a sentence
        try:
            ipaddress.ip_address(core)
        except ValueError:
            return found
        return "{ip}" + found[len(core) :]

    return _COUNTS.sub("N", _IP_CANDIDATE.sub(address, reason))


def take_recording_turn(conn: Connection) -> None:
    """On PostgreSQL, wait until no other transaction is recording hits (until this one ends).

    Two processes recording hits of one message at once would each judge and count its
    history without the other's uncommitted events."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RECORDING_LOCK_KEY})


def timeline_field(kind: str, classification: str) -> str:
    if kind == "open":
        return "opens" if classification in COUNTED_AS_OPEN else "machine_opens"
    return "clicks" if classification == Classification.HUMAN else "machine_clicks"


TimelineMoves = Counter[tuple[str, int, str]]  # (message, bucket, field) -> n
ReasonMoves = Counter[tuple[str, str, str, str]]  # (message or campaign, kind, verdict, reason)


def _move(
    timeline: TimelineMoves, reasons: ReasonMoves, event: Event, verdict: Verdict, sign: int
) -> None:
    hit = event.hit
    bucket = hit.at_ms - hit.at_ms % QUARTER_HOUR_MS
    timeline[(hit.message_id, bucket, timeline_field(hit.kind, verdict.classification))] += sign
    if verdict.classification != Classification.HUMAN:
        label = reason_label(verdict.reason)
        reasons[(hit.message_id, hit.kind, verdict.classification, label)] += sign


def _owners(conn: Connection, message_ids: Collection[str]) -> dict[str, tuple[str, str]]:
    """(campaign, contact) of each message this instance sent; others are left out."""
    found: dict[str, tuple[str, str]] = {}
    for chunk in chunks(sorted(message_ids)):
        query = select(_m.id, _m.campaign_id, _m.contact_id).where(among(conn, _m.id, chunk))
        found.update((row.id, (row.campaign_id, row.contact_id)) for row in conn.execute(query))
    return found


def record_report_changes(
    conn: Connection,
    before: Mapping[str, Sequence[Event]],
    new: Sequence[Event],
    changed: Sequence[tuple[str, Verdict]],
) -> None:
    """Bring the aggregates up to date after the flusher stored `new` events and `changed`
    verdicts; `before` holds, by message, the stored events as they were read."""
    old = {event.hit.id: event for stored in before.values() for event in stored}
    timeline: TimelineMoves = Counter()
    reasons: ReasonMoves = Counter()
    for event in new:
        _move(timeline, reasons, event, Verdict(event.classification, event.reason), 1)
    for event_id, verdict in changed:
        if (was := old.get(event_id)) is not None:
            _move(timeline, reasons, was, Verdict(was.classification, was.reason), -1)
            _move(timeline, reasons, was, verdict, 1)
    touched = {key[0] for key in timeline}
    owners = _owners(conn, touched)
    contacts_of: dict[str, set[str]] = {}
    for campaign_id, contact_id in owners.values():
        contacts_of.setdefault(campaign_id, set()).add(contact_id)
    refresh_contacts(conn, contacts_of)
    _add_event_moves(conn, owners, timeline, reasons)


def _add_event_moves(
    conn: Connection,
    owners: Mapping[str, tuple[str, str]],
    timeline: TimelineMoves,
    reasons: ReasonMoves,
) -> None:
    buckets: dict[tuple[str, int], Counter[str]] = {}
    for (message_id, bucket, field), n in timeline.items():
        if message_id in owners and n:
            buckets.setdefault((owners[message_id][0], bucket), Counter())[field] += n
    add_to(
        conn,
        report_timeline,
        [{"campaign_id": c, "bucket_ms": b, **{f: counts[f] for f in TIMELINE_FIELDS}}
         for (c, b), counts in sorted(buckets.items()) if any(counts.values())],
        TIMELINE_FIELDS,
    )  # fmt: skip
    per_campaign: ReasonMoves = Counter()
    for (message_id, kind, classification, label), n in reasons.items():
        if message_id in owners:
            per_campaign[(owners[message_id][0], kind, classification, label)] += n
    _add_reasons(conn, per_campaign)


def _add_reasons(conn: Connection, counts: ReasonMoves) -> None:
    rows = [
        {"campaign_id": c, "reason_key": key_of(kind, classification, reason), "kind": kind,
         "classification": classification, "reason": reason, "events": n}
        for (c, kind, classification, reason), n in sorted(counts.items()) if n
    ]  # fmt: skip
    add_to(conn, report_reasons, rows, ["events"])


def rebuild_reports(conn: Connection, campaign_id: str) -> None:
    """Recompute every aggregate of a campaign from its events (stored by other means than
    the flusher, say), plus what its purged events had counted: a purge changes nothing here."""
    for table in TABLES:
        conn.execute(delete(table).where(table.c.campaign_id == campaign_id))
    contact_ids = conn.execute(
        select(_m.contact_id).where(_m.campaign_id == campaign_id).distinct()
    ).scalars()
    refresh_contacts(conn, {campaign_id: set(contact_ids)})
    mine = messages.join(events, _e.message_id == _m.id)
    bucket = (_e.at_ms - _e.at_ms % QUARTER_HOUR_MS).label("bucket_ms")
    counted, human = (
        _e.classification.in_(sorted(COUNTED_AS_OPEN)),
        _e.classification == Classification.HUMAN,
    )
    opens, clicks = _e.kind == "open", _e.kind == "click"
    rows = (
        select(
            _m.campaign_id,
            bucket,
            count_if(opens & counted),
            count_if(opens & ~counted),
            count_if(clicks & human),
            count_if(clicks & ~human),
        )
        .select_from(mine)
        .where(_m.campaign_id == campaign_id)
        .group_by(_m.campaign_id, bucket)
    )
    names = ["campaign_id", "bucket_ms", *TIMELINE_FIELDS]
    conn.execute(insert(report_timeline).from_select(names, rows))
    add_to(conn, report_timeline, purged_timeline_rows(conn, campaign_id), TIMELINE_FIELDS)
    labelled: ReasonMoves = Counter(
        {(campaign_id, *key): n for key, n in purged_reason_counts(conn, campaign_id).items()}
    )
    for kind, classification, reason, n in conn.execute(
        select(_e.kind, _e.classification, _e.reason, func.count())
        .select_from(mine)
        .where(_m.campaign_id == campaign_id, ~human)
        .group_by(_e.kind, _e.classification, _e.reason)
    ):
        labelled[(campaign_id, kind, classification, reason_label(reason))] += n
    _add_reasons(conn, labelled)
