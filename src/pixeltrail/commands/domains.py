"""`pixeltrail domains ...` (filled in by its own change)."""

from __future__ import annotations

import click


@click.group()
def domains() -> None:
    """Custom tracking domains."""
