"""`pixeltrail campaigns ...` and `pixeltrail mailboxes ...` (filled in by its own change)."""

from __future__ import annotations

import click


@click.group()
def campaigns() -> None:
    """Campaigns: sequences of steps sent to contacts, with their tracking settings."""


@click.group()
def mailboxes() -> None:
    """Mailboxes that send: SMTP servers or the built-in outbox."""
