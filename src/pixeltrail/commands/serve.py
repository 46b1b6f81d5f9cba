"""`pixeltrail serve`: the server (HTTP, and the background process beside it)."""

from __future__ import annotations

import click

from pixeltrail.commands.common import fail, settings
from pixeltrail.commands.logs import LOG_LEVELS, log_to_stderr
from pixeltrail.runtime.http_process import http_process
from pixeltrail.web.http_server import PortUnavailable, check_port, run_http_server


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--no-background",
    is_flag=True,
    help="Do not start `pixeltrail background`: run it yourself, for this data directory.",
)
@click.option(
    "--reuse-port",
    is_flag=True,
    help="Share PORT with servers already on it (SO_REUSEPORT), each taking some of the "
    "connections: for servers of the same data directory and database only.",
)
@click.option("--log-level", default="info", show_default=True, type=click.Choice(LOG_LEVELS))
def serve(host: str, port: int, no_background: bool, reuse_port: bool, log_level: str) -> None:
    """Serve pixels, redirects, the API and the rest on HOST:PORT.

    Everything else (recording events, scheduling, sending, domain re-checks, webhooks) runs
    in a second process, `pixeltrail background`, which this starts, watches and restarts.
    A PORT already in use is refused, unless --reuse-port.
    """
    log_to_stderr(log_level)
    config = settings()
    # Checked before anything starts. Another server on the port would otherwise be joined
    # (granian listens with SO_REUSEPORT): with another data directory, requests would be
    # split between two databases.
    if not reuse_port and port != 0:
        try:
            check_port(host, port)
        except PortUnavailable as exc:
            hint = "; --reuse-port shares it with the server there" if exc.in_use else ""
            raise fail(f"{exc}{hint}") from None
    app = http_process(config, log_level, background=not no_background)
    click.echo(
        f"pixeltrail listening on http://{host}:{port} with {config.http_server} "
        f"(tracking base {app.settings.base_url})",
        err=True,
    )
    try:
        run_http_server(config.http_server, app, host, port, log_level, app.tracking, reuse_port)
    except PortUnavailable as exc:  # the server there does not share its port
        raise fail(f"{exc} by a server that does not share it") from None
