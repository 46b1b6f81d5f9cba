"""`pixeltrail report CAMPAIGN` (filled in by its own change)."""

from __future__ import annotations

import click


@click.command()
@click.argument("campaign_id")
def report(campaign_id: str) -> None:
    """A campaign's report."""
    raise click.ClickException("not built yet")
