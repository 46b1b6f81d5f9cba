"""What every subcommand shares: settings from the environment and clean failures."""

from __future__ import annotations

import click

from pixeltrail.config import Settings


def fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def settings() -> Settings:
    return Settings.from_env()
