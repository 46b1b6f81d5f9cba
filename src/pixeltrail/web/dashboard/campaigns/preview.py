"""A step rendered for a sample contact, as a document of its own for a sandboxed iframe.

Email HTML is the author's, and contact values end up in it: it is never put inside a
dashboard page. It is served alone, under a policy of its own: no scripts, no requests but
images (emails show remote images), no forms, an opaque origin (`sandbox`), framed only by
our own pages. The page frames it with `<iframe sandbox>` too, a second wall.

While the author types, the page's script posts the form here as a draft (kept in memory,
the latest per user, campaign and step, never saved) and then reloads the iframe with
`location.replace`, so the preview follows without adding to the browser's history and
without srcdoc or blob: URLs, which the page's CSP would refuse. A draft not found (expired,
or another server process) shows the saved step instead.
"""

from __future__ import annotations

import html
import threading
import time
from collections import OrderedDict
from typing import Any

from starlette.responses import HTMLResponse, Response

from pixeltrail.platform.campaigns.campaigns import Campaign
from pixeltrail.platform.campaigns.contacts import sample_contact
from pixeltrail.platform.campaigns.sequence import Step
from pixeltrail.platform.campaigns.templates import KINDS, MAX_SOURCE, render
from pixeltrail.platform.errors import PlatformError
from pixeltrail.web.dashboard.pages import Ctx

PREVIEW_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; font-src data:; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'; sandbox"
)
PREVIEW_HEADERS = {
    "Content-Security-Policy": PREVIEW_CSP,
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    # Remote images of the email must not learn which campaign page asked for them.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
DRAFT_SECONDS = 15 * 60
MAX_DRAFTS = 200
# All drafts together: a bound on memory whatever is posted (a draft is up to ~0.5 M).
MAX_DRAFT_CHARS = 32 * 1024 * 1024
DraftKey = tuple[str, str, str]  # user, campaign, step ("1", "2", ... or "new")


class PreviewDrafts:
    """The latest typed version of each step being edited, for its preview; bounded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drafts: OrderedDict[DraftKey, tuple[float, dict[str, str]]] = OrderedDict()
        self._chars = 0

    def put(self, key: DraftKey, fields: dict[str, str]) -> bool:
        """Keep `fields` as the step's draft; False (nothing kept) if a field is longer than
        a template may be."""
        if any(len(fields.get(kind, "")) > MAX_SOURCE[kind] for kind in KINDS):
            return False
        with self._lock:
            self._forget(key)
            self._drafts[key] = (time.monotonic() + DRAFT_SECONDS, fields)
            self._chars += _size(fields)
            while len(self._drafts) > MAX_DRAFTS or self._chars > MAX_DRAFT_CHARS:
                self._forget(next(iter(self._drafts)))
        return True

    def _forget(self, key: DraftKey) -> None:
        found = self._drafts.pop(key, None)
        if found is not None:
            self._chars -= _size(found[1])

    def get(self, key: DraftKey) -> dict[str, str] | None:
        with self._lock:
            found = self._drafts.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]


def _size(fields: dict[str, str]) -> int:
    return sum(len(value) for value in fields.values())


drafts = PreviewDrafts()
_HEADER = (
    '<div style="font:13px/1.5 system-ui,sans-serif;color:#5d6678;background:#f6f7f9;'
    'border-bottom:1px solid #dde1e8;padding:6px 10px;margin:0 0 10px">{}</div>'
)
_TEXT = (
    '<hr style="margin:16px 0"><div style="font:12px system-ui,sans-serif;color:#5d6678">'
    'Plain-text part</div><pre style="white-space:pre-wrap;font:13px/1.5 monospace">{}</pre>'
)


def _document(status: int, head: str, body: str = "") -> Response:
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Preview</title></head>'
        f"<body>{_HEADER.format(head)}{body}</body></html>"
    )
    return HTMLResponse(page, status, headers=PREVIEW_HEADERS)


def _contact_line(contact: dict[str, Any]) -> str:
    name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
    to = f"{name} <{contact['email']}>" if name else str(contact["email"])
    company = f" · {contact['company']}" if contact.get("company") else ""
    return html.escape(f"To: {to}{company}")


def _preview(ctx: Ctx, campaign: Campaign, subject: str, body: str, text: str | None) -> Response:
    with ctx.read() as conn:
        contact = sample_contact(conn, ctx.account_id, campaign.id)
    who = _contact_line(contact)
    try:
        parts = (
            render(subject, contact, "subject"),
            render(body, contact, "html"),
            render(text, contact, "text") if text and text.strip() else None,
        )
    except PlatformError as exc:
        problem = html.escape(f"Cannot preview: {exc.message}")
        return _document(422, f'{who}<br><strong style="color:#b3261e">{problem}</strong>')
    rendered_subject, rendered_html, rendered_text = parts
    head = f"{who}<br>Subject: <strong>{html.escape(rendered_subject)}</strong>"
    # The email's own HTML, as its recipient would get it: this document is sandboxed.
    tail = _TEXT.format(html.escape(rendered_text)) if rendered_text is not None else ""
    return _document(200, head, rendered_html + tail)


def preview_saved(ctx: Ctx, campaign: Campaign, step: Step) -> Response:
    return _preview(ctx, campaign, step.subject, step.html, step.text)


def preview_typed(ctx: Ctx, campaign: Campaign, typed: dict[str, str] | None) -> Response:
    """What the step form holds, rendered without saving anything (None: nothing typed yet)."""
    if typed is None or not (typed["subject"].strip() or typed["html"].strip()):
        return _document(200, "Type a subject and a body: the preview follows as you type.")
    return _preview(ctx, campaign, typed["subject"], typed["html"], typed["text"])


def draft_key(ctx: Ctx, campaign: Campaign, step: str) -> DraftKey:
    assert ctx.session is not None
    return (ctx.session.user.id, campaign.id, step)
