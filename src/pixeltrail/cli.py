"""The `pixeltrail` command: a thin shell over the library, one module per area."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from pixeltrail import __version__
from pixeltrail.config import ConfigError
from pixeltrail.platform.errors import PlatformError

# Each command is imported when it runs (or for --help), not all of them at every start: the
# commands import the database layer, the web apps and the HTML instrumentation, about a
# second of start-up each that a command which does not need them should not pay.
COMMANDS = {
    "instrument": "pixeltrail.commands.instrument:instrument",
    "inspect": "pixeltrail.commands.instrument:inspect",
    "serve": "pixeltrail.commands.serve:serve",
    "background": "pixeltrail.commands.background:background",
    "worker": "pixeltrail.commands.background:worker",
    "db": "pixeltrail.commands.store:db",
    "events": "pixeltrail.commands.store:events",
    "ip-ranges": "pixeltrail.commands.store:ip_ranges",
    "account": "pixeltrail.commands.accounts:account",
    "domains": "pixeltrail.commands.domains:domains",
    "mailboxes": "pixeltrail.commands.campaigns:mailboxes",
    "contacts": "pixeltrail.commands.contacts:contacts",
    "campaigns": "pixeltrail.commands.campaigns:campaigns",
    "report": "pixeltrail.commands.reports:report",
    "webhooks": "pixeltrail.commands.webhooks:webhooks",
}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, name = target.split(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command), target
        assert command.name == cmd_name, target
        return command

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
