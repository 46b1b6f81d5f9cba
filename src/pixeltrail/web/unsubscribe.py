"""/u/<token>: a confirmation page on GET (scanners follow GETs), unsubscribe on POST.

A POST with `List-Unsubscribe=One-Click` (RFC 8058, sent by mail providers) gets a plain 200,
no redirect. The link is signed, carries no readable address, and works forever.
"""

from __future__ import annotations

import html

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pixeltrail.platform.contacts.unsubscribe import masked, recipient_of, unsubscribe
from pixeltrail.store.db import write_transaction
from pixeltrail.tracking.tokens import InvalidToken, TokenSigner

_HEADERS = {
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
}
_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:32em;margin:4em auto;padding:0 1em">
<h1 style="font-size:1.4em">{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=title, body=body), status, headers=_HEADERS)


def unsubscribe_routes(engine: Engine, signer: TokenSigner) -> list[Route]:
    def message_of(token: str) -> str | None:
        try:
            claims = signer.verify(token)
        except InvalidToken:
            return None
        return claims.message_id if claims.kind == "unsubscribe" else None

    def confirm(message_id: str) -> Response:
        with engine.connect() as conn:
            recipient = recipient_of(conn, message_id)
        if recipient is None:
            return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)
        address = html.escape(masked(recipient.email))
        if recipient.already:
            return _page(
                "You are unsubscribed", f"<p>{address} receives no more email from us.</p>"
            )
        form = (
            f"<p>Stop all email from this sender to {address}?</p>"
            '<form method="post"><button type="submit" style="font-size:1em;padding:.5em 1em">'
            "Unsubscribe</button></form>"
        )
        return _page("Unsubscribe", form)

    def apply(message_id: str) -> Response:
        with write_transaction(engine) as conn:
            recipient = unsubscribe(conn, message_id)
        if recipient is None:
            return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)
        address = html.escape(masked(recipient.email))
        return _page("You are unsubscribed", f"<p>{address} receives no more email from us.</p>")

    async def endpoint(request: Request) -> Response:
        message_id = message_of(request.path_params["token"])
        if message_id is None:
            return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)
        if request.method == "POST":
            return await run_in_threadpool(apply, message_id)
        return await run_in_threadpool(confirm, message_id)

    return [Route("/u/{token}", endpoint, methods=["GET", "HEAD", "POST"])]
