"""The `pixeltrail` command: a thin shell over the library, one module per area."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from pixeltrail import __version__
from pixeltrail.commands.accounts import account
from pixeltrail.commands.campaigns import campaigns, mailboxes
from pixeltrail.commands.contacts import contacts
from pixeltrail.commands.domains import domains
from pixeltrail.commands.instrument import inspect, instrument
from pixeltrail.commands.reports import report
from pixeltrail.commands.serve import background, serve, worker
from pixeltrail.commands.store import db, events, ip_ranges
from pixeltrail.commands.webhooks import webhooks
from pixeltrail.config import ConfigError
from pixeltrail.platform.errors import PlatformError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            # A setting that cannot work is the user's to fix: say which, no traceback.
            raise click.ClickException(str(exc)) from None
        except PlatformError as exc:
            raise click.ClickException(exc.message) from None
        except BrokenPipeError:
            # The reader went away (`pixeltrail events --json | head`): stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pixeltrail")
def main() -> None:
    """pixeltrail: email outreach with open and click tracking you can trust."""


main.add_command(instrument)
main.add_command(inspect)
main.add_command(serve)
main.add_command(background)
main.add_command(db)
main.add_command(events)
main.add_command(ip_ranges)
main.add_command(account)
main.add_command(domains)
main.add_command(mailboxes)
main.add_command(contacts)
main.add_command(campaigns)
main.add_command(report)
main.add_command(webhooks)
main.add_command(worker)
