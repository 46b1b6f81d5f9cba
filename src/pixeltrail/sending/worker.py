"""The send worker: claims due messages, renders and instruments them, hands them to a mailer.

At most once, and nothing lost but the one in flight: a worker claims a batch (`claimed`),
marks each message `sending` (the intent, committed) just before handing it to the mailer,
and `sent` after. Claims carry a lease (renewed as the worker goes). When a worker dies, its
`claimed` messages go back to `scheduled` once the lease runs out (they were never tried);
a message left `sending` may or may not have reached the server, so it is marked `failed`
with that reason and never retried. Those in flight at that instant (at most CONCURRENCY)
are the price of never sending twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, select, update

from pixeltrail.config import Settings
from pixeltrail.platform.errors import PlatformError
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.mailboxes import mailbox_endpoint
from pixeltrail.platform.smtp_urls import SmtpEndpoint
from pixeltrail.platform.suppressions import suppress
from pixeltrail.platform.templates import render
from pixeltrail.platform.webhook_events import enqueue_message_sent
from pixeltrail.sending.mailers import DeliveryError, Mailer, OutboxMailer, SmtpMailer
from pixeltrail.sending.mime import Envelope, UnsendableAddress, build_message
from pixeltrail.sending.plaintext import html_to_text
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import (
    campaign_steps,
    campaigns,
    contacts,
    enrollments,
    mailboxes,
    messages,
    suppressions,
)
from pixeltrail.tracking.htmlpart import instrument_html
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.textpart import instrument_text
from pixeltrail.tracking.tokens import TokenSigner
from pixeltrail.tracking.tracker import MessageTracker, TrackingOptions

log = logging.getLogger("pixeltrail.worker")

BATCH = 50
# Messages in flight at once per worker (one SMTP connection each). A worker killed mid-send
# leaves at most this many messages in doubt.
CONCURRENCY = 4
MAX_ATTEMPTS = 8
SENDING_LEASE_MS = 10 * 60 * 1000
BACKOFF_MS = (60_000, 5 * 60_000, 15 * 60_000, 30 * 60_000, 60 * 60_000, 2 * 3600_000)


@dataclass(frozen=True)
class Claimed:
    id: str
    account_id: str
    campaign_id: str
    contact_id: str
    mailbox_id: str
    step_id: str
    attempts: int
    track_opens: bool
    track_clicks: bool
    track_text_links: bool
    tracking_base_url: str


def claim(conn: Connection, now: int, limit: int = BATCH) -> list[Claimed]:
    """Take up to `limit` due messages of active campaigns; several workers never share one."""
    due = (
        select(messages.c.id)
        .join(campaigns, campaigns.c.id == messages.c.campaign_id)
        .where(
            messages.c.status == "scheduled",
            messages.c.send_at_ms <= now,
            campaigns.c.status == "active",
        )
        .order_by(messages.c.send_at_ms)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=messages)
    ids = [r.id for r in conn.execute(due)]
    if not ids:
        return []
    # While claimed or sending, send_at_ms holds the lease: when the worker last touched it.
    conn.execute(
        update(messages)
        .where(messages.c.id.in_(ids))
        .values(status="claimed", send_at_ms=now, attempts=messages.c.attempts + 1)
    )
    rows = conn.execute(select(messages).where(messages.c.id.in_(ids))).all()
    return [
        Claimed(
            r.id,
            r.account_id,
            r.campaign_id,
            r.contact_id,
            r.mailbox_id,
            r.step_id,
            r.attempts,
            r.track_opens,
            r.track_clicks,
            r.track_text_links,
            r.tracking_base_url,
        )
        for r in rows
    ]


def reconcile(conn: Connection, now: int) -> int:
    """Messages of a worker that died: untried ones go back, the one in flight fails."""
    expired = messages.c.send_at_ms < now - SENDING_LEASE_MS
    back = conn.execute(
        update(messages)
        .where(messages.c.status == "claimed", expired)
        .values(status="scheduled", attempts=messages.c.attempts - 1)
    )
    failed = conn.execute(
        update(messages)
        .where(messages.c.status == "sending", expired)
        .values(
            status="failed",
            error="the worker stopped while sending it: it may or may not have been delivered, "
            "and is not retried so it is never sent twice",
        )
    )
    return (back.rowcount or 0) + (failed.rowcount or 0)


def mark_sending(conn: Connection, message_ids: list[str], others: list[str], now: int) -> None:
    """The intent to send these, and a fresh lease for the rest of the batch."""
    if message_ids:
        conn.execute(
            update(messages)
            .where(messages.c.id.in_(message_ids))
            .values(status="sending", send_at_ms=now)
        )
    if others:
        conn.execute(
            update(messages)
            .where(messages.c.id.in_(others), messages.c.status == "claimed")
            .values(send_at_ms=now)
        )


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed message: sent, retry (temporary), failed, or cancelled."""

    status: str
    error: str | None = None
    bounced: bool = False
    link_count: int = 0


@dataclass(frozen=True)
class Prepared:
    message: Claimed
    envelope: Envelope
    data: bytes
    link_count: int


class SendWorker:
    """Claims, sends and records; runs in its own thread with its own event loop."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        signer: TokenSigner,
        mailer_for: Callable[[SmtpEndpoint | None], Mailer] | None = None,
        interval: float = 1.0,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.signer = signer
        self.interval = interval
        self._mailer_for = mailer_for or self._default_mailer
        self.concurrency = concurrency
        self._mailers: dict[str, list[Mailer]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _default_mailer(self, endpoint: SmtpEndpoint | None) -> Mailer:
        if endpoint is None:
            return OutboxMailer(self.settings.data_dir / "outbox")
        return SmtpMailer(endpoint)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    done = await self.run_once()
                except Exception:  # a database outage: try again shortly
                    log.exception("send pass failed")
                    done = 0
                if not done:
                    await asyncio.sleep(self.interval)
        finally:
            await self.close()

    async def close(self) -> None:
        mailers, self._mailers = self._mailers, {}
        for pool in mailers.values():
            for mailer in pool:
                await mailer.close()

    async def run_once(self, now: int | None = None) -> int:
        """One pass: reconcile, claim a batch, send it, record the outcomes."""
        now = now_ms() if now is None else now
        with write_transaction(self.engine) as conn:
            reconcile(conn, now)
            batch = claim(conn, now)
        if not batch:
            return 0
        with self.engine.connect() as reader:
            prepared = [self._prepare(reader, claimed) for claimed in batch]
        # Up to `concurrency` messages are in flight at once, each on its own connection. One
        # write per round records the last round's outcomes and this round's intent together.
        done: list[tuple[Claimed, Outcome]] = []
        for start in range(0, len(batch), self.concurrency):
            round_ = list(zip(batch, prepared, strict=True))[start : start + self.concurrency]
            sending = [(m, p) for m, p in round_ if isinstance(p, Prepared)]
            rest = [m.id for m in batch[start + self.concurrency :]]
            with write_transaction(self.engine) as conn:
                for claimed, outcome in done:
                    record_outcome(conn, claimed, outcome, now_ms())
                mark_sending(conn, [m.id for m, _ in sending], rest, now_ms())
            outcomes = await asyncio.gather(
                *(self._deliver(p, slot) for slot, (_, p) in enumerate(sending))
            )
            delivered = {m.id: o for (m, _), o in zip(sending, outcomes, strict=True)}
            done = [(m, delivered[m.id] if isinstance(p, Prepared) else p) for m, p in round_]
        with write_transaction(self.engine) as conn:
            for claimed, outcome in done:
                record_outcome(conn, claimed, outcome, now_ms())
        return len(batch)

    def _ensure_mailers(self, conn: Connection, m: Claimed) -> None:
        if m.mailbox_id not in self._mailers:
            endpoint = mailbox_endpoint(conn, m.account_id, m.mailbox_id, self.settings)
            self._mailers[m.mailbox_id] = [
                self._mailer_for(endpoint) for _ in range(self.concurrency)
            ]

    def _prepare(self, conn: Connection, m: Claimed) -> Prepared | Outcome:
        row = conn.execute(
            select(
                contacts,
                campaign_steps.c.subject,
                campaign_steps.c.html,
                campaign_steps.c.text.label("step_text"),
                suppressions.c.reason.label("suppressed"),
            )
            .select_from(contacts)
            .join(campaign_steps, campaign_steps.c.id == m.step_id)
            .outerjoin(
                suppressions,
                and_(
                    suppressions.c.account_id == contacts.c.account_id,
                    suppressions.c.email == contacts.c.email,
                ),
            )
            .where(contacts.c.id == m.contact_id)
        ).one()
        if row.suppressed is not None:
            return Outcome("cancelled", f"not sent: the address is {row.suppressed}")
        mailbox = conn.execute(select(mailboxes).where(mailboxes.c.id == m.mailbox_id)).one()
        contact = {
            "email": row.email,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "company": row.company,
            "fields": row.fields or {},
        }
        try:
            subject = render(row.subject, contact, "subject")
            html = render(row.html, contact, "html")
            text = render(row.step_text, contact, "text") if row.step_text else html_to_text(html)
        except PlatformError as exc:  # a template error fails this message only
            return Outcome("failed", f"template: {exc.message}")
        links = LinkBuilder(m.tracking_base_url, self.signer)
        options = TrackingOptions(
            opens=m.track_opens, clicks=m.track_clicks, text_links=m.track_text_links
        )
        tracker = MessageTracker(links, m.id, options)
        html = instrument_html(html.encode(), tracker, "utf-8").decode()
        text = instrument_text(text.encode(), tracker, "utf-8").decode()
        name = f"{row.first_name} {row.last_name}".strip()
        envelope = Envelope(m.id, mailbox.from_email, mailbox.from_name, row.email, name, subject)
        try:
            data = build_message(envelope, html, text, links.unsubscribe_url(m.id))
        except UnsendableAddress as exc:
            return Outcome("failed", str(exc))
        self._ensure_mailers(conn, m)
        return Prepared(m, envelope, data, len(tracker.tracked))

    async def _deliver(self, p: Prepared, slot: int) -> Outcome:
        mailer = self._mailers[p.message.mailbox_id][slot]
        try:
            await mailer.send(p.message.id, p.envelope.from_email, p.envelope.to_email, p.data)
        except DeliveryError as exc:
            if exc.permanent:
                return Outcome("failed", str(exc), bounced=True)
            return Outcome("retry", str(exc))
        return Outcome("sent", link_count=p.link_count)


def record_outcome(conn: Connection, m: Claimed, outcome: Outcome, now: int) -> None:
    where = messages.c.id == m.id
    if outcome.status == "sent":
        conn.execute(
            update(messages)
            .where(where)
            .values(status="sent", sent_at_ms=now, error=None, link_count=outcome.link_count)
        )
        enqueue_message_sent(conn, m.id, sent_at_ms=now)
        return
    if outcome.status == "retry" and m.attempts < MAX_ATTEMPTS:
        delay = BACKOFF_MS[min(m.attempts - 1, len(BACKOFF_MS) - 1)]
        conn.execute(
            update(messages)
            .where(where)
            .values(status="scheduled", send_at_ms=now + delay, error=outcome.error)
        )
        return
    final = "cancelled" if outcome.status == "cancelled" else "failed"
    conn.execute(update(messages).where(where).values(status=final, error=outcome.error))
    _stop_enrollment(conn, m)
    if outcome.bounced:
        _bounce(conn, m, now)


def _stop_enrollment(conn: Connection, m: Claimed) -> None:
    conn.execute(
        update(enrollments)
        .where(enrollments.c.campaign_id == m.campaign_id, enrollments.c.contact_id == m.contact_id)
        .values(status="stopped")
    )


def _bounce(conn: Connection, m: Claimed, now: int) -> None:
    """A permanent refusal: the address is suppressed and leaves every sequence."""
    email = conn.execute(select(contacts.c.email).where(contacts.c.id == m.contact_id)).scalar_one()
    suppress(conn, m.account_id, email, "bounced")
    ids = select(contacts.c.id).where(
        contacts.c.account_id == m.account_id, contacts.c.email == email
    )
    conn.execute(
        update(enrollments)
        .where(enrollments.c.contact_id.in_(ids), enrollments.c.status == "active")
        .values(status="stopped")
    )
