"""Composing a claimed batch's messages: its contacts, steps and mailboxes read in a few queries,
then each message rendered for its contact, instrumented and built as MIME."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Row, select

from pixeltrail.platform.campaigns.templates import render_with_context, template_context
from pixeltrail.platform.contacts.contacts import SUPPRESSED, with_suppression
from pixeltrail.platform.errors import PlatformError
from pixeltrail.sending.claims import Claimed
from pixeltrail.sending.mime import Envelope, UnsendableAddress, build_message
from pixeltrail.sending.outcomes import Outcome
from pixeltrail.sending.plaintext import html_to_text, tidy
from pixeltrail.sending.text_template import text_template
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import campaign_steps, contacts, mailboxes
from pixeltrail.tracking.htmlpart import instrument_html
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.textpart import instrument_text
from pixeltrail.tracking.tokens import TokenSigner
from pixeltrail.tracking.tracker import MessageTracker, TrackingOptions

_CHUNK = 500


@dataclass(frozen=True)
class Prepared:
    message: Claimed
    envelope: Envelope
    data: bytes
    link_count: int
    destination_count: int


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    iterator = iter(ids)
    while chunk := list(islice(iterator, _CHUNK)):
        yield chunk


class BatchComposer:
    """The rows a batch's messages are made of, read once; `compose` makes one message."""

    def __init__(self, conn: Connection, batch: Sequence[Claimed], signer: TokenSigner) -> None:
        self.signer = signer
        self._contacts: dict[str, Row[Any]] = {}
        for chunk in _chunks(sorted({m.contact_id for m in batch})):
            query = (
                select(contacts, SUPPRESSED)
                .select_from(with_suppression(contacts))
                .where(contacts.c.id.in_(chunk))
            )
            self._contacts.update((row.id, row) for row in conn.execute(query))
        steps = sorted({m.step_id for m in batch})
        self._steps = {
            row.id: row
            for row in conn.execute(select(campaign_steps).where(campaign_steps.c.id.in_(steps)))
        }
        boxes = sorted({m.mailbox_id for m in batch})
        self._mailboxes = {
            row.id: row for row in conn.execute(select(mailboxes).where(mailboxes.c.id.in_(boxes)))
        }
        self._links: dict[tuple[str, str], LinkBuilder] = {}

    def _link_builder(self, base_url: str, account_id: str) -> LinkBuilder:
        """Links bound to the message's account: answered on its own tracking domains and the
        instance's host, never on another account's domain."""
        links = self._links.get((base_url, account_id))
        if links is None:
            links = LinkBuilder(base_url, self.signer, account_id)
            self._links[base_url, account_id] = links
        return links

    def compose(self, m: Claimed) -> Prepared | Outcome:
        """The message ready for SMTP, or why it is not sent (suppressed, a template error)."""
        contact = self._contacts[m.contact_id]
        if contact.suppressed is not None:
            return Outcome(
                MessageStatus.CANCELLED, f"not sent: the address is {contact.suppressed}"
            )
        step = self._steps[m.step_id]
        context = template_context(
            {
                "email": contact.email,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "company": contact.company,
                "fields": contact.fields or {},
            }
        )
        try:
            subject = render_with_context(step.subject, context, "subject")
            html = render_with_context(step.html, context, "html")
            if step.text:
                text = render_with_context(step.text, context, "text")
            elif (converted := text_template(step.html)) is not None:
                text = tidy(render_with_context(converted, context, "text"))
            else:
                text = html_to_text(html)
        except PlatformError as exc:  # a template error fails this message only
            return Outcome(MessageStatus.FAILED, f"template: {exc.message}")
        links = self._link_builder(m.tracking_base_url, m.account_id)
        options = TrackingOptions(
            opens=m.track_opens, clicks=m.track_clicks, text_links=m.track_text_links
        )
        tracker = MessageTracker(links, m.id, options)
        html = instrument_html(html.encode(), tracker, "utf-8").decode()
        text = instrument_text(text.encode(), tracker, "utf-8").decode()
        mailbox = self._mailboxes[m.mailbox_id]
        name = f"{contact.first_name} {contact.last_name}".strip()
        envelope = Envelope(
            m.id, mailbox.from_email, mailbox.from_name, contact.email, name, subject
        )
        try:
            data = build_message(envelope, html, text, links.unsubscribe_url(m.id))
        except UnsendableAddress as exc:
            return Outcome(MessageStatus.FAILED, str(exc))
        destinations = {link.destination for link in tracker.tracked}
        return Prepared(m, envelope, data, len(tracker.tracked), len(destinations))
