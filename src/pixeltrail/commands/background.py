"""`pixeltrail background`: what `serve` starts beside itself, or run on its own; `worker`, more
senders. Neither imports the web apps (API, dashboard) or the HTTP servers, which would add
seconds to their start."""

from __future__ import annotations

import faulthandler
import signal
import threading

import click

from pixeltrail.commands.common import settings
from pixeltrail.commands.logs import LOG_LEVELS, log_to_stderr
from pixeltrail.runtime.background_process import run_background_process
from pixeltrail.runtime.supervision import STACKS_SIGNAL, STOP_SIGNALS
from pixeltrail.runtime.worker_process import WorkerProcess


@click.command()
@click.option("--log-level", default="info", show_default=True, type=click.Choice(LOG_LEVELS))
@click.option(
    "--parent-pid",
    type=int,
    hidden=True,
    help="Stop when this process (the `serve` that started this one) is gone.",
)
def background(log_level: str, parent_pid: int | None) -> None:
    """Record spooled hits, schedule and send messages, re-check domains, deliver webhooks.

    `pixeltrail serve` starts this itself. Run it on its own beside `serve --no-background`,
    on the same machine and data directory (the spool is a folder there). SIGTERM or Ctrl+C
    stops it after one last flush.
    """
    log_to_stderr(log_level, "[background] ")
    faulthandler.register(STACKS_SIGNAL, all_threads=True)
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    # `serve` starts this with them blocked, so that none is lost while importing.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    run_background_process(settings(), stop, parent_pid)


@click.command()
@click.option("--log-level", default="info", show_default=True, type=click.Choice(LOG_LEVELS))
def worker(log_level: str) -> None:
    """Send due messages (beside `pixeltrail serve`, whose background process sends too)."""
    log_to_stderr(log_level)
    config = settings()
    process = WorkerProcess(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("pixeltrail worker sending (Ctrl+C stops)", err=True)
    process.run(stop)
