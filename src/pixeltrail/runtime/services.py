"""What both processes are built of: services, started in order and stopped in reverse; and
where in the data directory they meet (the spool, the served-hosts cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pixeltrail.config import Settings


class Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def spool_dir(settings: Settings) -> Path:
    """Written by the HTTP process, read by the background process's flusher."""
    return settings.data_dir / "spool"


def hosts_file(settings: Settings) -> Path:
    """The served tracking domains, kept by the HTTP process; a background re-check that
    changes them rewrites it, and the HTTP process serves the change at once."""
    return settings.data_dir / "tracking-hosts.json"
