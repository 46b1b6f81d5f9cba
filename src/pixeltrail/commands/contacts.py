"""`pixeltrail contacts ...`: import, list, add and export contacts; the suppression list."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from pixeltrail.commands.common import (
    account_option,
    all_pages,
    fail,
    open_engine,
    resolve_account,
)
from pixeltrail.platform.contacts.contacts import create_contact, list_contacts
from pixeltrail.platform.contacts.csv_export import export_contacts_csv
from pixeltrail.platform.contacts.csv_import import MAX_BYTES, Progress, check_contacts_csv
from pixeltrail.platform.contacts.imports import save_contacts
from pixeltrail.platform.contacts.suppressions import (
    REASONS,
    list_suppressions,
    suppress,
    unsuppress,
)
from pixeltrail.store.db import write_transaction

NOTHING = "nothing was imported"


@click.group()
def contacts() -> None:
    """Contacts and the suppression list."""


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        # Split at the last '=': a column name may hold one, a field name never does.
        name, sep, target = value.rpartition("=")
        if not sep or not name.strip():
            raise fail(f"{option} takes NAME=VALUE, not {value!r}")
        pairs[name] = target
    return pairs


def _read(path: Path) -> bytes:
    if str(path) == "-":
        data = sys.stdin.buffer.read(MAX_BYTES + 1)
    else:
        try:
            if path.stat().st_size > MAX_BYTES:
                raise fail(f"{path} is larger than {MAX_BYTES // 1024 // 1024} MiB; {NOTHING}")
            data = path.read_bytes()
        except OSError as exc:
            raise fail(f"cannot read {path}: {exc.strerror}; {NOTHING}") from None
    return data


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Progress | None]:
    """A progress bar on a terminal's stderr, a line per tenth otherwise, nothing if quiet."""
    if quiet:
        yield None
        return
    with ExitStack() as stack:
        bars: list[Any] = []
        shown = [-1]

        def report(done: int, total: int) -> None:
            if sys.stderr.isatty():
                if not bars:
                    bars.append(
                        stack.enter_context(
                            click.progressbar(length=total, label=label, file=sys.stderr)
                        )
                    )
                bars[0].update(done - bars[0].pos)
            elif total and (done * 10 // total > shown[0]):
                shown[0] = done * 10 // total
                click.echo(f"{label}: {done:,} of {total:,} rows", err=True)

        yield report


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Say what a column holds: email, first_name, last_name, company, fields.<name> or "
    'ignore (e.g. --map "Org=company"). Repeatable.',
)
@click.option("--encoding", help="The file's encoding when it is not UTF-8 (e.g. windows-1252).")
@account_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {read, created, updated, rejected, duplicates}.",
)
def contacts_import(
    file: Path, maps: tuple[str, ...], encoding: str | None, account_id: str | None, as_json: bool
) -> None:
    """Import contacts from a CSV file with a header row (- reads stdin).

    Addresses already there are updated with the file's non-empty cells. Of an address on
    several rows the first is imported and the others are duplicates. Each rejected row and
    each duplicate is listed with its line number and reason; a file that cannot be read
    imports nothing.
    """
    mapping = _pairs(maps, "--map")
    data = _read(file)
    with open_engine() as engine:
        with engine.begin() as conn:
            account = resolve_account(conn, account_id)
        with _progress("Checking", as_json) as progress:
            checked = check_contacts_csv(data, mapping, encoding, progress)
        with write_transaction(engine) as conn, _progress("Saving", as_json) as progress:
            result = save_contacts(conn, account, checked, progress)
    if as_json:
        click.echo(json.dumps(result.as_record(), ensure_ascii=False))
        return
    click.echo(
        f"read {result.read}: created {result.created}, updated {result.updated}, "
        f"rejected {len(result.rejected)}, duplicates {len(result.duplicates)}"
    )
    left_out = [(r.line, r.reason) for r in result.rejected]
    left_out += [(d.line, d.reason) for d in result.duplicates]
    for line, reason in sorted(left_out):
        click.echo(f"line {line}: {reason}")


@contacts.command("list")
@click.option("--search", help="Only contacts whose email, name or company has every word.")
@account_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def contacts_list(search: str | None, account_id: str | None, as_json: bool) -> None:
    """List contacts, oldest first."""
    with open_engine() as engine, engine.begin() as conn:
        account = resolve_account(conn, account_id)
        count = 0
        for item in all_pages(
            lambda cursor: list_contacts(conn, account, cursor, 500, search=search)
        ):
            count += 1
            if as_json:
                click.echo(json.dumps(item.as_record(), ensure_ascii=False))
            else:
                name = " ".join(p for p in (item.first_name, item.last_name) if p)
                flag = f"  [suppressed: {item.suppressed}]" if item.suppressed else ""
                click.echo(f"{item.id}  {item.email}  {name}  {item.company}{flag}".rstrip())
    if not count and not as_json:
        click.echo("no contacts", err=True)


@contacts.command("add")
@click.argument("email")
@click.option("--first-name")
@click.option("--last-name")
@click.option("--company")
@click.option("--field", "extra", multiple=True, metavar="NAME=VALUE", help="A custom field.")
@account_option
@click.option("--json", "as_json", is_flag=True)
def contacts_add(
    email: str,
    first_name: str | None,
    last_name: str | None,
    company: str | None,
    extra: tuple[str, ...],
    account_id: str | None,
    as_json: bool,
) -> None:
    """Add a contact, or update the one with this address."""
    fields = _pairs(extra, "--field") if extra else None
    with open_engine() as engine, write_transaction(engine) as conn:
        account = resolve_account(conn, account_id)
        contact, created = create_contact(
            conn, account, email, first_name, last_name, company, fields
        )
    if as_json:
        click.echo(json.dumps({**contact.as_record(), "created": created}, ensure_ascii=False))
    else:
        click.echo(f"{'created' if created else 'updated'} {contact.id}  {contact.email}")


@contacts.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@account_option
def contacts_export(file: Path | None, account_id: str | None) -> None:
    """Write every contact as CSV to FILE (or stdout), safe to open in a spreadsheet."""
    out = io.StringIO(newline="")
    with open_engine() as engine, engine.begin() as conn:
        count = export_contacts_csv(conn, resolve_account(conn, account_id), out)
    data = out.getvalue().encode("utf-8")
    if file is None:
        sys.stdout.buffer.write(data)
        return
    try:
        file.write_bytes(data)
    except OSError as exc:
        raise fail(f"cannot write {file}: {exc.strerror}") from None
    click.echo(f"{count} contacts written to {file}", err=True)


@contacts.command("suppress")
@click.argument("email")
@click.option("--reason", type=click.Choice(REASONS), default="manual", show_default=True)
@account_option
def contacts_suppress(email: str, reason: str, account_id: str | None) -> None:
    """Never write to EMAIL again (whether or not it is a contact)."""
    with open_engine() as engine, write_transaction(engine) as conn:
        found, added = suppress(conn, resolve_account(conn, account_id), email, reason)
    state = "suppressed" if added else "already suppressed"
    click.echo(f"{found.email} {state} ({found.reason})")


@contacts.command("unsuppress")
@click.argument("email")
@account_option
def contacts_unsuppress(email: str, account_id: str | None) -> None:
    """Take EMAIL off the suppression list (not if it unsubscribed)."""
    with open_engine() as engine, write_transaction(engine) as conn:
        unsuppress(conn, resolve_account(conn, account_id), email)
    click.echo(f"{email} is no longer suppressed")


@contacts.command("suppressions")
@account_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def contacts_suppressions(account_id: str | None, as_json: bool) -> None:
    """The suppression list, oldest first."""
    with open_engine() as engine, engine.begin() as conn:
        account = resolve_account(conn, account_id)
        for item in all_pages(lambda cursor: list_suppressions(conn, account, cursor, 500)):
            record = item.as_record()
            if as_json:
                click.echo(json.dumps(record, ensure_ascii=False))
            else:
                click.echo(f"{record['email']}  {record['reason']}  {record['created_at']}")
