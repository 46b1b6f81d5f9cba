"""Campaign report speed: the report aggregates against the same numbers counted from events.

A generated campaign (bench/report_data.py: 50,000 contacts, 1,000,000 events by default) is
written to a temporary SQLite file and to a fresh PostgreSQL schema. On each, the summary, the
link report and the timeline are computed both ways, side by side and interleaved (A/B, then
B/A, ...): from the report_* aggregates the flusher keeps (what the API serves), and straight
from the events with the indexes events(message_id, at_ms) and messages(campaign_id, status)
(bench/report_baseline.py). The medians are reported with their ratio, and the two results
are compared (they must be equal). The first page of the per-contact report and the whole
per-contact CSV are timed too, and so is what the aggregates add to recording: record_hits of
a batch of 20,000 hits of this campaign, and the part of it spent in record_report_changes.

    .venv/bin/python bench/report.py            # print the table
    .venv/bin/python bench/report.py --write    # and update docs/benchmarks.md

PostgreSQL: PIXELTRAIL_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test
(a schema is created for the run and dropped afterwards).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import sqlalchemy
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from pixeltrail.platform.reports.activity import link_report, timeline
from pixeltrail.platform.reports.contacts import contacts_page, write_contacts_csv
from pixeltrail.platform.reports.summary import campaign_summary
from pixeltrail.platform.webhooks.events import enqueue_engagement
from pixeltrail.recording import flusher
from pixeltrail.store.db import make_engine, upgrade
from pixeltrail.store.report_aggregates import TABLES, record_report_changes
from pixeltrail.tracking.classify import Rules
from report_baseline import raw_links, raw_summary, raw_timeline, recording_batch
from report_data import ACCOUNT, CAMPAIGN, Generated, generate

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- bench:report -->"
END = "<!-- /bench:report -->"
COMMAND = ".venv/bin/python bench/report.py --write"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GOAL_MS = 100.0
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass
class Row:
    what: str
    aggregates: list[float]
    events: list[float] | None = None
    same: bool | None = None


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory(prefix="pixeltrail-bench-") as folder:
        engine = make_engine(f"sqlite:///{folder}/report.db")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_engine() -> Iterator[Engine]:
    base = make_url(os.environ.get("PIXELTRAIL_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(
        base.set(drivername="postgresql+psycopg"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = make_engine(
        base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def _timed(engine: Engine, work: Callable[[Connection], Any]) -> tuple[float, Any]:
    with engine.connect() as conn:
        started = time.perf_counter()
        result = work(conn)
        elapsed = (time.perf_counter() - started) * 1000
        conn.rollback()
    return elapsed, result


def side_by_side(
    engine: Engine,
    what: str,
    ours: Callable[[Connection], Any],
    baseline: Callable[[Connection], Any] | None,
    runs: int,
) -> Row:
    row = Row(what, [], [] if baseline else None)
    for run in range(runs):
        order = [("a", ours), ("b", baseline)] if run % 2 == 0 else [("b", baseline), ("a", ours)]
        results: dict[str, Any] = {}
        for name, work in order:
            if work is None:
                continue
            elapsed, results[name] = _timed(engine, work)
            if name == "a":
                row.aggregates.append(elapsed)
            elif row.events is not None:
                row.events.append(elapsed)
        if baseline is not None and run == 0:
            row.same = results["a"] == results["b"]
    return row


def _summary_numbers(conn: Connection) -> dict[str, Any]:
    s = campaign_summary(conn, ACCOUNT, CAMPAIGN)
    return {"opens": s["opens"], "clicks": s["clicks"]}


def _csv(conn: Connection) -> int:
    return write_contacts_csv(conn, ACCOUNT, CAMPAIGN, io.StringIO())


def _recording(engine: Engine, data: Generated, runs: int) -> tuple[list[float], list[float]]:
    """record_hits of a 20,000-hit batch, and the part of it spent on the report aggregates."""
    rules = Rules.load()
    total, aggregates = [], []
    spent: list[float] = []

    def timed_changes(*args: Any) -> None:
        started = time.perf_counter()
        record_report_changes(*args)
        spent.append((time.perf_counter() - started) * 1000)

    # The flusher's own call, timed where it is made.
    with mock.patch.object(flusher, "record_report_changes", timed_changes):
        for run in range(runs):
            hits = recording_batch(data.message_ids, 20_000, seed=run)
            with engine.connect() as conn, conn.begin() as transaction:
                started = time.perf_counter()
                flusher.record_hits(conn, hits, rules, enqueue_engagement)
                total.append((time.perf_counter() - started) * 1000)
                aggregates.append(spent.pop())
                transaction.rollback()
    return total, aggregates


def measure(engine: Engine, contacts: int, events: int, runs: int) -> dict[str, Any]:
    upgrade(engine)
    with engine.begin() as conn:
        data = generate(conn, contacts, events, seed=7)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))  # what autovacuum does after a bulk load
    with engine.connect() as conn:
        rows_kept = {
            t.name: conn.execute(text(f"SELECT count(*) FROM {t.name}")).scalar_one()
            for t in TABLES
        }
    zone = "Europe/Paris"
    results = [
        side_by_side(engine, "summary", _summary_numbers, raw_summary, runs),
        side_by_side(
            engine,
            "links",
            lambda c: link_report(c, ACCOUNT, CAMPAIGN),
            raw_links,
            runs,
        ),
        side_by_side(
            engine,
            "timeline (days)",
            lambda c: timeline(c, ACCOUNT, CAMPAIGN, "day", zone)["items"],
            lambda c: raw_timeline(c, "day", zone),
            runs,
        ),
        side_by_side(
            engine,
            "timeline (hours)",
            lambda c: timeline(c, ACCOUNT, CAMPAIGN, "hour", zone)["items"],
            lambda c: raw_timeline(c, "hour", zone),
            runs,
        ),
        side_by_side(
            engine,
            "first page of contacts (50)",
            lambda c: contacts_page(c, ACCOUNT, CAMPAIGN, None, 50),
            None,
            runs,
        ),
        side_by_side(engine, f"contacts.csv (all {contacts:,})", _csv, None, max(3, runs // 2)),
    ]
    total, aggregates = _recording(engine, data, max(3, runs // 2))
    return {
        "data": data,
        "rows": results,
        "kept": rows_kept,
        "record_ms": total,
        "refresh_ms": aggregates,
    }


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):,.1f} ms"


def report(measured: dict[str, dict[str, Any]], runs: int) -> str:
    lines = [
        f"| query | database | from the aggregates (median of {runs}) "
        "| from the events (median) | ratio | same result |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    notes = []
    for label, m in measured.items():
        data: Generated = m["data"]
        for row in m["rows"]:
            if row.events:
                ratio = statistics.median(row.events) / statistics.median(row.aggregates)
                lines.append(
                    f"| {row.what} | {label} | {_ms(row.aggregates)} | {_ms(row.events)} "
                    f"| **{ratio:,.0f}{TIMES}** | {'yes' if row.same else 'NO'} |"
                )
            else:
                lines.append(f"| {row.what} | {label} | {_ms(row.aggregates)} | | | |")
        slowest = max(statistics.median(r.aggregates) for r in m["rows"][:5])
        kept = ", ".join(f"{name} {count:,}" for name, count in m["kept"].items())
        record, refresh = statistics.median(m["record_ms"]), statistics.median(m["refresh_ms"])
        notes += [
            f"- {label}: generated {data.contacts:,} contacts and {data.events:,} events with "
            f"their aggregates in {data.seconds:.0f} s; aggregate rows: {kept}. Slowest API "
            f"query from the aggregates: {slowest:,.1f} ms (goal < {GOAL_MS:.0f} ms: "
            f"{'met' if slowest < GOAL_MS else 'NOT met'}).",
            f"- {label}: record_hits of a 20,000-hit batch of this campaign's messages "
            f"{record:,.0f} ms (median), of which the report aggregates "
            f"{refresh:,.0f} ms ({refresh / record:.0%}).",
        ]
    return "\n".join([*lines, "", *notes])


def environment() -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Measured {when} with `{COMMAND}`: Python {platform.python_version()}, SQLAlchemy "
        f"{sqlalchemy.__version__}, SQLite {sqlite3.sqlite_version}, {{postgres}}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        "(other processes share them)."
    )


def write_docs(section: str) -> None:
    text_ = DOCS.read_text(encoding="utf-8")
    begin, end = text_.find(BEGIN), text_.find(END)
    if begin < 0 or end < 0:
        text_ = text_.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
        begin, end = text_.find(BEGIN), text_.find(END)
    text_ = text_[: begin + len(BEGIN)] + "\n" + section + "\n" + text_[end:]
    DOCS.write_text(text_, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--write", action="store_true", help=f"update {DOCS.name} too")
    args = parser.parse_args()
    measured: dict[str, dict[str, Any]] = {}
    postgres = "PostgreSQL (not run)"
    if args.only != "postgresql":
        with sqlite_engine() as engine:
            measured["SQLite"] = measure(engine, args.contacts, args.events, args.runs)
    if args.only != "sqlite":
        with postgres_engine() as engine:
            with engine.connect() as conn:
                postgres = "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar_one()
            measured["PostgreSQL"] = measure(engine, args.contacts, args.events, args.runs)
    section = environment().replace("{postgres}", postgres) + "\n\n" + report(measured, args.runs)
    print(section)
    if args.write:
        write_docs(section)


if __name__ == "__main__":
    main()
