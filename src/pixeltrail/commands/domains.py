"""`pixeltrail domains ...`: custom tracking domains, as the API offers them."""

from __future__ import annotations

import json
import sys

import click

from pixeltrail.commands.common import (
    account_option,
    all_pages,
    json_option,
    open_engine,
    resolve_account,
    settings,
)
from pixeltrail.platform.domains.checks import verify_domain
from pixeltrail.platform.domains.dns_check import CnameResolver
from pixeltrail.platform.domains.domains import (
    TrackingDomain,
    add_domain,
    delete_domain,
    list_domains,
)
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.store.db import write_transaction


def _show(domain: TrackingDomain, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(domain.as_record(), ensure_ascii=False))
        return
    click.echo(f"{domain.id}  {domain.hostname}  {domain.status}")
    if domain.last_error:
        click.echo(f"  {domain.last_error}")


@click.group()
def domains() -> None:
    """Custom tracking domains: links and pixels on a hostname of yours."""


@domains.command("add")
@click.argument("hostname")
@account_option
@json_option
def domains_add(hostname: str, account_id: str | None, as_json: bool) -> None:
    """Add HOSTNAME and print the CNAME record to create for it."""
    with open_engine() as engine, write_transaction(engine) as conn:
        domain = add_domain(conn, resolve_account(conn, account_id), hostname, settings())
    if as_json:
        _show(domain, as_json)
        return
    click.echo(f"added {domain.hostname} ({domain.id}), {domain.status}")
    click.echo("Create this DNS record at the hostname's DNS provider:")
    click.echo(f"  {domain.hostname}.  CNAME  {domain.cname_target}.")
    click.echo(f"then: pixeltrail domains verify {domain.id}")


@domains.command("list")
@account_option
@json_option
def domains_list(account_id: str | None, as_json: bool) -> None:
    """Every tracking domain of the account (with --json, one object per line)."""
    with open_engine() as engine, engine.begin() as conn:
        account = resolve_account(conn, account_id)
        found = list(all_pages(lambda cursor: list_domains(conn, account, cursor, 500)))
    for domain in found:
        _show(domain, as_json)
    if not found and not as_json:
        click.echo("no tracking domains yet: add one with `pixeltrail domains add HOSTNAME`")


@domains.command("verify")
@click.argument("domain_id")
@account_option
@json_option
def domains_verify(domain_id: str, account_id: str | None, as_json: bool) -> None:
    """Check the domain's CNAME now; the exit status is 1 when it is not verified."""
    with open_engine() as engine:
        with engine.begin() as conn:
            account = resolve_account(conn, account_id)
        domain = verify_domain(engine, account, domain_id, CnameResolver.from_settings(settings()))
    _show(domain, as_json)
    if domain.status != DomainStatus.VERIFIED:
        sys.exit(1)


@domains.command("remove")
@click.argument("domain_id")
@account_option
@json_option
def domains_remove(domain_id: str, account_id: str | None, as_json: bool) -> None:
    """Remove a tracking domain: links already sent on it stop working."""
    with open_engine() as engine, write_transaction(engine) as conn:
        domain = delete_domain(conn, resolve_account(conn, account_id), domain_id)
    if as_json:
        click.echo(json.dumps({"id": domain.id, "hostname": domain.hostname, "removed": True}))
    else:
        click.echo(f"removed {domain.hostname} ({domain.id})")
