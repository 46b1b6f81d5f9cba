"""`pixeltrail worker`: a process that only sends due messages, beside `serve` (whose background
process sends too)."""

from __future__ import annotations

import threading

from pixeltrail.config import Settings
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import open_store


class WorkerProcess:
    """A send worker on its own engine; the schema is brought up to date when it is built."""

    def __init__(self, settings: Settings) -> None:
        self.engine = open_store(settings)
        self.sender = SendWorker(self.engine, settings, settings.signer())

    def run(self, stop: threading.Event) -> None:
        """Send until `stop` is set."""
        self.sender.start()
        stop.wait()
        self.sender.stop()
        self.engine.dispose()
