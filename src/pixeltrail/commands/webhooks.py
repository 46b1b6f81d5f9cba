"""`pixeltrail webhooks ...` (filled in by its own change)."""

from __future__ import annotations

import click


@click.group()
def webhooks() -> None:
    """Outbound webhooks: endpoints and their delivery log."""
