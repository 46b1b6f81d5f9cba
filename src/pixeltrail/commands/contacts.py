"""`pixeltrail contacts ...` (filled in by its own change)."""

from __future__ import annotations

import click


@click.group()
def contacts() -> None:
    """Contacts and the suppression list."""
