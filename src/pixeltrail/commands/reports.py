"""`pixeltrail report CAMPAIGN`: a campaign's report, for people, as JSON, or as CSV."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from pixeltrail.commands.common import account_option, fail, open_engine, resolve_account
from pixeltrail.platform.reports.activity import link_report
from pixeltrail.platform.reports.contacts import (
    all_contact_rows,
    contacts_page,
    write_contacts_csv,
)
from pixeltrail.platform.reports.steps import step_report
from pixeltrail.platform.reports.summary import campaign_of, campaign_summary

CONTACTS_SHOWN = 50
LINKS_SHOWN = 10
REPLY_WIDTH = 100
STEP_COLUMNS = ("sent", "opened", "clicked", "replied", "bounced", "unsubscribed")


def _percent(rate: float | None) -> str:
    return "" if rate is None else f" ({rate:.1%})"


def _local(iso: str | None, zone: ZoneInfo) -> str:
    if iso is None:
        return "-"
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _machine_lines(machine: dict[str, Any]) -> Iterator[str]:
    yield f"          machines {machine['unique']:,} unique, {machine['total']:,} total"
    for item in machine["by_reason"]:
        yield f"            {item['count']:>7,}  {item['classification']:<9}  {item['reason']}"


def summary_lines(summary: dict[str, Any], timezone: str) -> Iterator[str]:
    s, rates = summary, summary["rates"]
    yield f"{s['name']} ({s['campaign_id']}); times in {timezone}"
    yield (
        f"Sent {s['sent']:,} messages to {s['recipients']:,} recipients; "
        f"{s['failed']:,} failed, {s['bounced']:,} bounced{_percent(rates['bounce'])}, "
        f"{s['unsubscribed']:,} unsubscribed{_percent(rates['unsubscribe'])}"
    )
    yield ""
    human, proxy = s["opens"]["human"], s["opens"]["human"]["proxy_open"]
    yield (
        f"Opens     people   {human['unique']:,} unique{_percent(rates['open'])}, "
        f"{human['total']:,} total (through image proxies: {proxy['unique']:,} unique, "
        f"{proxy['total']:,} total)"
    )
    yield from _machine_lines(s["opens"]["machine"])
    clicks, to_open = s["clicks"]["human"], rates["click_to_open"]
    yield (
        f"Clicks    people   {clicks['unique']:,} unique{_percent(rates['click'])}, "
        f"{clicks['total']:,} total (click to open: {'-' if to_open is None else f'{to_open:.1%}'})"
    )
    yield from _machine_lines(s["clicks"]["machine"])
    yield (
        f"Replies   people   {s['replied']:,} replied{_percent(rates['reply'])}; "
        f"{s['read']:,} read{_percent(rates['read'])} (opened as people or replied)"
    )


def step_lines(steps: list[dict[str, Any]]) -> Iterator[str]:
    yield "Steps     step     sent   opened  clicked  replied  bounced  unsubscribed"
    for step in steps:
        counts = "  ".join(f"{step[name]:>7,}" for name in STEP_COLUMNS)
        yield f"          {step['step']:>4}  {counts}"


def one_line(text: str, width: int = REPLY_WIDTH) -> str:
    """Text someone else wrote, on one line of a terminal: control characters (escape
    sequences, carriage returns) become spaces, runs of space one, and long text is cut."""
    printable = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    flat = " ".join(printable.split())
    return flat if len(flat) <= width else f"{flat[: width - 1]}…"


def reply_lines(rows: list[dict[str, Any]], zone: ZoneInfo) -> Iterator[str]:
    replies = [(r["email"], reply) for r in rows for reply in r["replies"]]
    yield "Replies   (of the contacts above; --json for every reply in full)"
    if not replies:
        yield "          (no replies)"
    for email, reply in sorted(replies, key=lambda item: str(item[1]["at"])):
        when, subject = _local(reply["at"], zone), one_line(reply["subject"])
        yield f"          {when}  {one_line(email, 60)}  {subject}"
        yield f"            {one_line(reply['text'])}"


def link_lines(links: list[dict[str, Any]]) -> Iterator[str]:
    yield "Links     people unique  people total  machines  destination"
    if not links:
        yield "          (no clicks)"
    for link in links[:LINKS_SHOWN]:
        yield (
            f"          {link['unique_clicks']:>13,}  {link['total_clicks']:>12,}  "
            f"{link['machine_clicks']:>8,}  {link['destination'] or '-'}"
        )
    if len(links) > LINKS_SHOWN:
        yield f"          ... {len(links) - LINKS_SHOWN:,} more (--json for all)"


def contact_lines(rows: list[dict[str, Any]], total: int, zone: ZoneInfo) -> Iterator[str]:
    shown = f"first {len(rows):,} of {total:,} by id; --csv for all" if total > len(rows) else ""
    yield f"Contacts  {shown}".rstrip()
    width = max([len(r["email"]) for r in rows] + [5])
    yield (
        f"          {'email':<{width}}  opens  clicks  first opened      last opened       "
        "machine opens/clicks  replies  first reply       sequence"
    )
    for r in rows:
        machines = f"{r['machine_open_count']:,}/{r['machine_click_count']:,}"
        yield (
            f"          {r['email']:<{width}}  {r['open_count']:>5,}  {r['click_count']:>6,}  "
            f"{_local(r['first_opened_at'], zone):<16}  {_local(r['last_opened_at'], zone):<16}  "
            f"{machines:<20}  {r['reply_count']:>7,}  {_local(r['replied_at'], zone):<16}  "
            f"{r['sequence_status'] or '-'}"
        )


@click.command()
@click.argument("campaign_id")
@click.option(
    "--json", "as_json", is_flag=True, help="Summary, steps, links and every contact as JSON."
)
@click.option("--csv", "as_csv", is_flag=True, help="The per-contact CSV (spreadsheet-safe).")
@account_option
def report(campaign_id: str, as_json: bool, as_csv: bool, account_id: str | None) -> None:
    """A campaign's report: people and machines apart, replies, steps, links, and contacts."""
    if as_json and as_csv:
        raise fail("--json and --csv cannot go together: choose one")
    with open_engine() as engine, engine.connect() as conn:
        account = resolve_account(conn, account_id)
        if as_csv:
            write_contacts_csv(conn, account, campaign_id, sys.stdout)
            return
        summary = campaign_summary(conn, account, campaign_id)
        links = link_report(conn, account, campaign_id)
        steps = step_report(conn, account, campaign_id)
        if as_json:
            document = {
                "summary": summary,
                "steps": steps,
                "links": links,
                "contacts": list(all_contact_rows(conn, account, campaign_id)),
            }
            click.echo(json.dumps(document, ensure_ascii=False, indent=2))
            return
        timezone = campaign_of(conn, account, campaign_id).timezone
        rows, _ = contacts_page(conn, account, campaign_id, None, CONTACTS_SHOWN)
    zone = ZoneInfo(timezone)
    for lines in (
        summary_lines(summary, timezone),
        [""],
        step_lines(steps),
        [""],
        link_lines(links),
        [""],
        contact_lines(rows, summary["recipients"], zone),
        [""],
        reply_lines(rows, zone),
    ):
        for line in lines:
            click.echo(line)
