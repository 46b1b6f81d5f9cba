"""`pixeltrail account ...`: create accounts and read or change their settings."""

from __future__ import annotations

import json

import click

from pixeltrail.commands.common import account_option, open_engine, resolve_account
from pixeltrail.platform.accounts.accounts import create_account, get_account
from pixeltrail.platform.accounts.users import ROLES, set_password, set_role_by_email
from pixeltrail.store.db import write_transaction


@click.group()
def account() -> None:
    """Accounts: who uses this instance."""


@account.command("create")
@click.option("--name", required=True, help="The account's name (a company or team).")
@click.option("--owner-email", required=True, help="The owner's email address (sign-in).")
@click.option("--password", help="The owner's password for the dashboard (optional).")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.option("--json", "as_json", is_flag=True, help="Print {account_id, api_key} as JSON.")
def account_create(
    name: str, owner_email: str, password: str | None, timezone: str, as_json: bool
) -> None:
    """Create an account and print its id and first API key (shown only this once)."""
    with open_engine() as engine, write_transaction(engine) as conn:
        created, key = create_account(conn, name, owner_email, password, timezone)
    if as_json:
        click.echo(json.dumps({"account_id": created.id, "api_key": key}))
    else:
        click.echo(f"account  {created.id}  ({created.name})")
        click.echo(f"API key  {key}")
        click.echo("Keep the key: it is not shown again.", err=True)


@account.command("show")
@account_option
@click.option("--json", "as_json", is_flag=True)
def account_show(account_id: str | None, as_json: bool) -> None:
    """Show an account's settings."""
    with open_engine() as engine, engine.begin() as conn:
        found = get_account(conn, resolve_account(conn, account_id))
    record = found.as_record()
    if as_json:
        click.echo(json.dumps(record))
    else:
        for key, value in record.items():
            click.echo(f"{key:20} {value}")


@account.command("set-password")
@click.argument("email")
@click.password_option(help="The new password (asked for when not given).")
def account_set_password(email: str, password: str) -> None:
    """Set a user's dashboard password; signs out their open sessions."""
    with open_engine() as engine, write_transaction(engine) as conn:
        set_password(conn, email, password)
    click.echo(f"password set for {email.strip().lower()}; sign in at the dashboard")


@account.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def account_set_role(email: str, role: str) -> None:
    """Make a user an owner or a member of their account (an account keeps an owner)."""
    with open_engine() as engine, write_transaction(engine) as conn:
        user = set_role_by_email(conn, email, role)
    click.echo(f"{user.email} is now {user.role} of {user.account_name}")
