"""`pixeltrail serve`: the tracking server (and, as they land, the API and dashboard)."""

from __future__ import annotations

import logging

import click
import uvicorn

from pixeltrail.commands.common import settings
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
