"""`pixeltrail instrument` and `pixeltrail inspect`: add tracking to a message, read a link."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pixeltrail.commands.common import fail, settings
from pixeltrail.tracking.charsets import UnsupportedCharset
from pixeltrail.tracking.htmlpart import instrument_html
from pixeltrail.tracking.links import parse_tracking_url
from pixeltrail.tracking.message import instrument_message
from pixeltrail.tracking.textpart import instrument_text
from pixeltrail.tracking.tokens import InvalidToken, message_id_error, new_message_id
from pixeltrail.tracking.tracker import MessageTracker, TrackingOptions


def _kind_of(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix == ".eml":
        return "message"
    if suffix in {".html", ".htm"}:
        return "html"
    if suffix == ".txt":
        return "text"
    return "html" if data.lstrip()[:1] == b"<" else "message"


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--base-url", help="Tracking base URL (default PIXELTRAIL_BASE_URL).")
@click.option("--message-id", help="The message's id (16 URL-safe base64 chars); random if unset.")
@click.option("--no-opens", is_flag=True, help="Do not insert the open pixel.")
@click.option("--no-clicks", is_flag=True, help="Do not rewrite links.")
@click.option("--no-text-links", is_flag=True, help="Do not rewrite URLs in plain text.")
@click.option("--honeypot", is_flag=True, help="Add an invisible link that only machines follow.")
def instrument(
    path: Path,
    base_url: str | None,
    message_id: str | None,
    no_opens: bool,
    no_clicks: bool,
    no_text_links: bool,
    honeypot: bool,
) -> None:
    """Print PATH (.html, .txt or .eml) with tracking added, byte for byte otherwise."""
    if message_id is not None and (error := message_id_error(message_id)):
        raise click.BadParameter(error, param_hint="--message-id")
    links = settings().link_builder(base_url)
    options = TrackingOptions(
        opens=not no_opens, clicks=not no_clicks, text_links=not no_text_links, honeypot=honeypot
    )
    tracker = MessageTracker(links, message_id or new_message_id(), options)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None
    kind = _kind_of(path, data)
    try:
        if kind == "message":
            out = instrument_message(data, tracker)
        elif kind == "html":
            out = instrument_html(data, tracker)
        else:
            out = instrument_text(data, tracker)
    except UnsupportedCharset as exc:
        raise fail(f"{path}: {exc}; nothing was changed") from None
    for note in tracker.notes:
        click.echo(f"note: {note}", err=True)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    click.echo(f"message {tracker.message_id}: {len(tracker.tracked)} links tracked", err=True)


@click.command()
@click.argument("urls", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def inspect(urls: tuple[str, ...], as_json: bool) -> None:
    """Verify tracking URLs and show what they carry ('-' reads them from stdin)."""
    signer = settings().signer()
    items: list[str] = []
    for url in urls:
        if url == "-":
            items += [line.strip() for line in sys.stdin if line.strip()]
        else:
            items.append(url)
    failed = False
    for url in items:
        try:
            claims = parse_tracking_url(url, signer)
        except InvalidToken as exc:
            failed = True
            if as_json:
                click.echo(json.dumps({"url": url, "error": exc.reason}))
            else:
                click.echo(f"invalid  {url}: {exc.reason}")
            continue
        record = {
            "kind": claims.kind,
            "destination": claims.destination,
            "message_id": claims.message_id,
            "link": claims.link,
            "key_id": claims.key_id,
            "honeypot": claims.honeypot,
        }
        if as_json:
            click.echo(json.dumps(record))
        elif claims.kind == "open":
            click.echo(f"open     message {claims.message_id}  key {claims.key_id}")
        else:
            target = "(honeypot link)" if claims.honeypot else claims.destination
            click.echo(
                f"click    message {claims.message_id}  link {claims.link}  "
                f"key {claims.key_id}  -> {target}"
            )
    if failed:
        sys.exit(1)
