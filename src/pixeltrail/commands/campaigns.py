"""`pixeltrail campaigns ...` and `pixeltrail mailboxes ...`: the same calls the API makes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO, Any

import click
from sqlalchemy import Connection

from pixeltrail.commands.common import (
    account_option,
    all_pages,
    fail,
    json_option,
    open_engine,
    resolve_account,
    settings,
)
from pixeltrail.platform.campaigns.campaigns import (
    Campaign,
    create_campaign,
    get_campaign,
    list_campaigns,
)
from pixeltrail.platform.campaigns.input import CampaignIn, parse_input
from pixeltrail.platform.campaigns.lifecycle import enroll_contacts, launch, pause, resume
from pixeltrail.platform.campaigns.settings import get_settings, update_settings
from pixeltrail.platform.campaigns.status import CampaignStatus
from pixeltrail.platform.mail.mailboxes import (
    DEFAULT_DAILY_LIMIT,
    create_mailbox,
    list_mailboxes,
    update_mailbox,
)
from pixeltrail.store.db import write_transaction


@click.group()
def mailboxes() -> None:
    """Mailboxes that send: SMTP servers or the built-in outbox."""


@mailboxes.command("add")
@click.option("--name", required=True, help="What you call this mailbox.")
@click.option("--from-email", required=True, help="The From address.")
@click.option("--from-name", default="", help="The From display name.")
@click.option(
    "--smtp-url",
    help="smtp://user:password@host:587 (STARTTLS) or smtps://...:465 (TLS); '-' reads it "
    "from stdin (keeps the password out of shell history). Without it: the built-in outbox. "
    "A server on this host or a private network needs PIXELTRAIL_MAIL_ALLOW_LOCAL=1.",
)
@click.option(
    "--imap-url",
    help="imap://user:password@host:143 (STARTTLS) or imaps://...:993 (TLS): replies and "
    "bounces are read from its INBOX, which is never changed. '-' reads it from stdin (after "
    "the SMTP URL when both are '-').",
)
@click.option("--daily-limit", type=int, default=DEFAULT_DAILY_LIMIT, show_default=True)
@account_option
@json_option
def mailboxes_add(
    name: str,
    from_email: str,
    from_name: str,
    smtp_url: str | None,
    imap_url: str | None,
    daily_limit: int,
    account_id: str | None,
    as_json: bool,
) -> None:
    """Add a mailbox (the passwords are stored encrypted and never shown again)."""
    if smtp_url == "-":
        smtp_url = sys.stdin.readline().strip()
    if imap_url == "-":
        imap_url = sys.stdin.readline().strip()
    with open_engine() as engine, write_transaction(engine) as conn:
        created = create_mailbox(
            conn,
            resolve_account(conn, account_id),
            settings(),
            name=name,
            from_email=from_email,
            from_name=from_name,
            smtp_url=smtp_url,
            daily_limit=daily_limit,
            imap_url=imap_url,
        )
    record = created.as_record()
    click.echo(json.dumps(record) if as_json else _mailbox_line(record))


@mailboxes.command("set-imap-url")
@click.argument("mailbox_id")
@click.argument("imap_url")
@account_option
@json_option
def mailboxes_set_imap_url(
    mailbox_id: str, imap_url: str, account_id: str | None, as_json: bool
) -> None:
    """Read replies and bounces from IMAP_URL's INBOX ('-': from stdin, keeping the password out
    of shell history; 'none': stop reading)."""
    if imap_url == "-":
        imap_url = sys.stdin.readline().strip()
    value = None if imap_url == "none" else imap_url
    with open_engine() as engine, write_transaction(engine) as conn:
        account = resolve_account(conn, account_id)
        changed = update_mailbox(conn, account, mailbox_id, settings(), {"imap_url": value})
    record = changed.as_record()
    click.echo(json.dumps(record) if as_json else _mailbox_line(record))


def _mailbox_line(m: dict[str, Any]) -> str:
    sender = f"{m['from_name']} <{m['from_email']}>" if m["from_name"] else m["from_email"]
    where = m["smtp_url"] or m["smtp_url_error"] or "built-in outbox"
    line = f"{m['id']}  {m['name']}  {sender}  {where}  {m['daily_limit']}/day"
    if m["imap_url"] is not None:
        line += f"  reads {m['imap_url']}"
        if m["imap_url_error"]:
            line += f" ({m['imap_url_error']})"
    return line


@mailboxes.command("list")
@account_option
@json_option
def mailboxes_list(account_id: str | None, as_json: bool) -> None:
    """List the account's mailboxes (passwords masked)."""
    with open_engine() as engine, engine.begin() as conn:
        account = resolve_account(conn, account_id)
        found = [
            m.as_record()
            for m in all_pages(
                lambda c: list_mailboxes(conn, account, settings(), c, 500),
            )
        ]
    for record in found:
        click.echo(json.dumps(record) if as_json else _mailbox_line(record))


@click.group()
def campaigns() -> None:
    """Campaigns: sequences of steps sent to contacts, with their tracking settings."""


def _show(campaign: Campaign, as_json: bool) -> None:
    record = campaign.as_record()
    if as_json:
        click.echo(json.dumps(record))
        return
    click.echo(f"{record['id']}  {record['status']}  {record['name']}")
    click.echo(f"  mailbox   {record['mailbox_id']}")
    schedule = record["schedule"]
    cap = schedule["daily_cap"] or "mailbox limit"
    click.echo(
        f"  schedule  {','.join(schedule['days'])} {schedule['start_hour']}-"
        f"{schedule['end_hour']}h {schedule['timezone']}, cap {cap}"
    )
    click.echo(f"  start     {record['start_at'] or '-'}")
    click.echo("  tracking  " + " ".join(f"{k}={v}" for k, v in record["settings"].items()))
    click.echo("  contacts  " + " ".join(f"{k}={v}" for k, v in record["contacts"].items()))
    for step in record.get("steps", []):
        click.echo(f"  step {step['position']}  +{step['delay_days']}d  {step['subject']}")


@campaigns.command("create")
@click.argument("file", type=click.File("r"))
@account_option
@json_option
def campaigns_create(file: IO[str], account_id: str | None, as_json: bool) -> None:
    """Create a draft campaign from a JSON FILE ('-' for stdin), shaped like POST /campaigns:

    {"name": ..., "mailbox_id": ..., "steps": [{"subject", "html", "text", "delay_days"}],
    "schedule": {"timezone", "days", "start_hour", "end_hour", "daily_cap"}}
    """
    try:
        data = json.load(file)
    except (ValueError, UnicodeError) as exc:
        raise fail(f"{file.name} is not valid JSON: {exc}") from None
    given = parse_input(CampaignIn, data)
    with open_engine() as engine, write_transaction(engine) as conn:
        created = create_campaign(conn, resolve_account(conn, account_id), given)
    _show(created, as_json)


@campaigns.command("list")
@click.option("--status", type=click.Choice([str(s) for s in CampaignStatus]))
@account_option
@json_option
def campaigns_list(status: str | None, account_id: str | None, as_json: bool) -> None:
    """List campaigns, oldest first."""
    with open_engine() as engine, engine.begin() as conn:
        account = resolve_account(conn, account_id)
        found = [
            c.as_record()
            for c in all_pages(lambda cur: list_campaigns(conn, account, cur, 500, status))
        ]
    for r in found:
        if as_json:
            click.echo(json.dumps(r))
        else:
            enrolled = r["contacts"]["total"]
            click.echo(
                f"{r['id']}  {r['status']:8}  {r['name']}  "
                f"{r['step_count']} steps, {enrolled} contacts"
            )


def _act(
    account_id: str | None, as_json: bool, action: Callable[[Connection, str], Campaign]
) -> None:
    with open_engine() as engine, write_transaction(engine) as conn:
        campaign = action(conn, resolve_account(conn, account_id))
    _show(campaign, as_json)


@campaigns.command("show")
@click.argument("campaign_id")
@account_option
@json_option
def campaigns_show(campaign_id: str, account_id: str | None, as_json: bool) -> None:
    """Show a campaign: steps, schedule, status, tracking, enrolled contacts."""
    with open_engine() as engine, engine.begin() as conn:
        campaign = get_campaign(conn, resolve_account(conn, account_id), campaign_id)
    _show(campaign, as_json)


@campaigns.command("settings")
@click.argument("campaign_id")
@click.option("--track-opens/--no-track-opens", default=None)
@click.option("--track-clicks/--no-track-clicks", default=None)
@click.option("--track-text-links/--no-track-text-links", default=None)
@click.option("--tracking-domain", help="A verified tracking domain id, or 'none'.")
@click.option(
    "--stop-on-reply/--no-stop-on-reply", default=None, help="Does a reply end the sequence?"
)
@account_option
@json_option
def campaigns_settings(
    campaign_id: str,
    track_opens: bool | None,
    track_clicks: bool | None,
    track_text_links: bool | None,
    tracking_domain: str | None,
    stop_on_reply: bool | None,
    account_id: str | None,
    as_json: bool,
) -> None:
    """Show or change tracking and stopping on replies; tracking changes apply to outreach not
    yet scheduled."""
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "track_opens": track_opens,
            "track_clicks": track_clicks,
            "track_text_links": track_text_links,
            "stop_on_reply": stop_on_reply,
        }.items()
        if v is not None
    }
    if tracking_domain is not None:
        changes["tracking_domain_id"] = None if tracking_domain == "none" else tracking_domain
    with open_engine() as engine, write_transaction(engine) as conn:
        account = resolve_account(conn, account_id)
        if changes:
            record = update_settings(conn, account, campaign_id, changes).as_record()
        else:
            record = get_settings(conn, account, campaign_id)
    if as_json:
        click.echo(json.dumps(record))
        return
    for key, value in record.items():
        click.echo(f"{key:24} {value}")


@campaigns.command("add-contacts")
@click.argument("campaign_id")
@click.argument("contact_ids", nargs=-1, required=True)
@account_option
@json_option
def campaigns_add_contacts(
    campaign_id: str, contact_ids: tuple[str, ...], account_id: str | None, as_json: bool
) -> None:
    """Enrol contacts (ids; '-' reads ids from stdin, one per line). Suppressed ones are
    skipped and counted."""
    ids = [i for i in contact_ids if i != "-"]
    if "-" in contact_ids:
        ids += [line.strip() for line in sys.stdin if line.strip()]
    with open_engine() as engine, write_transaction(engine) as conn:
        counts = enroll_contacts(conn, resolve_account(conn, account_id), campaign_id, ids)
    if as_json:
        click.echo(json.dumps(counts))
    else:
        click.echo(", ".join(f"{value} {key.replace('_', ' ')}" for key, value in counts.items()))


@campaigns.command("launch")
@click.argument("campaign_id")
@click.option("--start-at", help="ISO 8601 time (without offset: the campaign's time zone).")
@account_option
@json_option
def campaigns_launch(
    campaign_id: str, start_at: str | None, account_id: str | None, as_json: bool
) -> None:
    """Start sending a draft campaign (now, or at --start-at)."""
    _act(account_id, as_json, lambda conn, acct: launch(conn, acct, campaign_id, start_at))


@campaigns.command("pause")
@click.argument("campaign_id")
@account_option
@json_option
def campaigns_pause(campaign_id: str, account_id: str | None, as_json: bool) -> None:
    """Stop sending until resumed."""
    _act(account_id, as_json, lambda conn, acct: pause(conn, acct, campaign_id))


@campaigns.command("resume")
@click.argument("campaign_id")
@account_option
@json_option
def campaigns_resume(campaign_id: str, account_id: str | None, as_json: bool) -> None:
    """Send again after a pause."""
    _act(account_id, as_json, lambda conn, acct: resume(conn, acct, campaign_id))
