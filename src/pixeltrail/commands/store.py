"""`pixeltrail db`, `pixeltrail events` and `pixeltrail ip-ranges`: the database from the shell."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from pixeltrail.commands.common import fail, settings
from pixeltrail.store.db import StoreError, current_revision, open_store, write_transaction
from pixeltrail.store.event_retention import purge_expired_events
from pixeltrail.store.events import list_events
from pixeltrail.store.ip_ranges import APPLE_MPP, parse_apple_csv, replace_ranges
from pixeltrail.tracking.hits import Classification, Event, ms_to_iso
from pixeltrail.tracking.tokens import message_id_error


@contextmanager
def _store() -> Iterator[Engine]:
    """The configured database, upgraded; disposed of afterwards."""
    try:
        engine = open_store(settings())
    except StoreError as exc:
        raise fail(f"PIXELTRAIL_DATABASE_URL: {exc}") from None
    except DBAPIError as exc:
        raise fail(f"cannot open the database: {str(exc.orig or exc).strip()}") from None
    try:
        yield engine
    finally:
        engine.dispose()


@click.group()
def db() -> None:
    """The database (PIXELTRAIL_DATABASE_URL)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest revision (every command does this first)."""
    with _store() as engine:
        revision = current_revision(engine)
        where = engine.url.render_as_string(hide_password=True)
        click.echo(f"database {where} is at revision {revision}")


@dataclass
class _Clicks:
    destination: str | None
    honeypot: bool
    total: int = 0
    human: int = 0


@dataclass
class _MessageSummary:
    first_ms: int
    last_ms: int = 0
    human_opens: int = 0
    proxy_opens: int = 0
    machine_opens: Counter[str] = field(default_factory=Counter)
    clicks: dict[int | None, _Clicks] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        hit = event.hit
        self.first_ms = min(self.first_ms, hit.at_ms)
        self.last_ms = max(self.last_ms, hit.at_ms)
        if hit.kind == "open":
            if event.classification == Classification.HUMAN:
                self.human_opens += 1
            elif event.classification == Classification.PROXY_OPEN:
                self.proxy_opens += 1
            else:
                self.machine_opens[event.reason or event.classification] += 1
            return
        link = self.clicks.setdefault(hit.link, _Clicks(hit.destination, hit.honeypot))
        link.total += 1
        link.human += int(event.classification == Classification.HUMAN)

    def lines(self, message_id: str) -> Iterator[str]:
        yield f"message {message_id}"
        yield f"  first  {ms_to_iso(self.first_ms)}"
        yield f"  last   {ms_to_iso(self.last_ms)}"
        machine = sum(self.machine_opens.values())
        yield (
            f"  opens  {self.human_opens} human, {self.proxy_opens} proxy_open, {machine} machine"
        )
        for reason, count in sorted(self.machine_opens.items(), key=lambda rc: (-rc[1], rc[0])):
            yield f"    machine {count}: {reason}"
        if not self.clicks:
            yield "  clicks none"
            return
        yield "  clicks"
        for position in sorted(self.clicks, key=lambda p: -1 if p is None else p):
            link = self.clicks[position]
            where = "(honeypot)" if link.honeypot else link.destination
            yield f"    link {position} {where}: {link.total} total, {link.human} human"


def _summaries(stream: Iterable[Event]) -> dict[str, _MessageSummary]:
    # Counters per message, not events: memory grows with messages, not with hits.
    summaries: dict[str, _MessageSummary] = {}
    for event in stream:
        message_id = event.hit.message_id
        summary = summaries.get(message_id)
        if summary is None:
            summary = summaries[message_id] = _MessageSummary(first_ms=event.hit.at_ms)
        summary.add(event)
    return summaries


@click.group(invoke_without_command=True)
@click.option("--message-id", help="Only this message's events.")
@click.option("--json", "as_json", is_flag=True, help="Every event, one JSON object per line.")
@click.pass_context
def events(ctx: click.Context, message_id: str | None, as_json: bool) -> None:
    """Recorded opens and clicks: a summary per message, or every event with --json."""
    if ctx.invoked_subcommand is not None:
        return
    if message_id is not None and (error := message_id_error(message_id)):
        raise click.BadParameter(error, param_hint="--message-id")
    with (
        _store() as engine,
        engine.connect() as conn,
        contextlib.closing(list_events(conn, message_id)) as stream,
    ):
        if as_json:
            for event in stream:
                click.echo(json.dumps(event.as_record(), ensure_ascii=False))
            return
        summaries = _summaries(stream)
    if not summaries:
        click.echo("no events" + (f" for message {message_id}" if message_id else ""))
    for number, (mid, summary) in enumerate(summaries.items()):
        if number:
            click.echo()
        for line in summary.lines(mid):
            click.echo(line)


@click.group("ip-ranges")
def ip_ranges() -> None:
    """Published networks of machine traffic, used to recognise proxied opens."""


@ip_ranges.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--source",
    default=APPLE_MPP,
    show_default=True,
    help="Which list this is; loading replaces that source's networks.",
)
def ip_ranges_load(path: Path, source: str) -> None:
    """Replace a source's networks with those in PATH (Apple's egress-ip-ranges.csv format)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise fail(f"{path}: not UTF-8 text ({exc.reason}); nothing was loaded") from None
    try:
        networks = parse_apple_csv(text)
    except ValueError as exc:
        raise fail(f"{path}: {exc}\nnothing was loaded") from None
    with _store() as engine:
        try:
            with write_transaction(engine) as conn:
                loaded = replace_ranges(conn, source, networks)
        except ValueError as exc:
            raise fail(f"--source: {exc}; nothing was loaded") from None
    click.echo(f"{source}: {loaded} networks loaded from {path}")


@events.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def events_purge(dry_run: bool) -> None:
    """Delete events older than their account's retention_days (reports keep their counts).

    The background process does this every hour; accounts without a retention keep every
    event."""
    with _store() as engine:
        done = purge_expired_events(engine, dry_run=dry_run)
    if not done:
        click.echo("no account has a retention period: every event is kept")
    verb = "would be deleted" if dry_run else "deleted"
    for purge in done:
        click.echo(
            f"{purge.account_id} ({purge.name}): {purge.events} event(s) older than "
            f"{purge.retention_days} days (before {ms_to_iso(purge.cutoff_ms)}) {verb}"
        )
