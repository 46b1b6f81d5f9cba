"""`pixeltrail serve`: the tracking server (and, as they land, the API and dashboard)."""

from __future__ import annotations

import logging
import signal
import threading

import click
import uvicorn

from pixeltrail.commands.common import settings
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import open_store
from pixeltrail.web.app import Server


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(host: str, port: int, log_level: str) -> None:
    """Serve pixels, redirects and the rest on HOST:PORT."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = Server(settings())
    click.echo(
        f"pixeltrail listening on http://{host}:{port} (tracking base {app.settings.base_url})",
        err=True,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level=log_level,
        server_header=False,
        # X-Forwarded-For is read by the app, and only from PIXELTRAIL_TRUSTED_PROXIES.
        proxy_headers=False,
    )


@click.command()
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def worker(log_level: str) -> None:
    """Send due messages (beside `pixeltrail serve`, which runs one worker already)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = settings()
    engine = open_store(config)
    send_worker = SendWorker(engine, config, config.signer())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("pixeltrail worker sending (Ctrl+C stops)", err=True)
    send_worker.start()
    stop.wait()
    send_worker.stop()
    engine.dispose()
