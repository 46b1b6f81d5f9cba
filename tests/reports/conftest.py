"""A campaign with the rows it hangs from, inserted directly, and hits recorded as the flusher
records them (record_hits), on SQLite and PostgreSQL.

The `story` fixture is one campaign of an account in Europe/Paris, sent on the evening before
the night clocks go forward (2026-03-29), whose recipients did what recipients do:

- ann opens twice in Outlook and clicks link 1 once;
- bob reads in Apple Mail: Mail Privacy Protection prefetches the pixel, nothing else;
- cy is behind Microsoft Safe Links: at delivery it opens and clicks all three links from
  Microsoft's network; later cy opens for real;
- dee opens, then forwards: a colleague on another network and client opens it a day later;
- eve reads in Gmail: the open comes through Google's image proxy; eve clicks link 2;
- hal's copy gets a click on link 1 recorded in one batch, then a honeypot click 3 s later
  recorded in the next batch: the first click becomes a scanner's after the fact;
- fay's message bounced (failed, address suppressed as bounced); gus unsubscribed later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert

from pixeltrail.platform.ids import new_id
from pixeltrail.platform.webhooks.events import enqueue_engagement
from pixeltrail.recording.flusher import record_hits
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import (
    campaign_steps,
    campaigns,
    contacts,
    mailboxes,
    messages,
    suppressions,
)
from pixeltrail.tracking.classify import Rules
from pixeltrail.tracking.hits import Hit, HitKind, new_event_id
from pixeltrail.tracking.tokens import new_message_id

from ..api.conftest import Api, Tenant, api, database

__all__ = ["api", "database"]

OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
MPP = "Mozilla/5.0"
LINKS = {
    1: "https://shop.example.com/spring?utm_source=mail",
    2: "https://blog.example.com/guide",
    3: "https://example.com/account",
}
EOP_IP = "40.107.20.15"  # Microsoft Exchange Online Protection (machine_rules.toml)
# Sent Saturday 2026-03-28 at 22:00 UTC (23:00 in Paris); clocks go forward at 01:00 UTC.
SENT = int(datetime(2026, 3, 28, 22, 0, tzinfo=UTC).timestamp() * 1000)
S, M, H = 1000, 60_000, 3_600_000


@dataclass
class Campaign:
    engine: Engine
    account_id: str
    id: str
    mailbox_id: str
    step_id: str
    contact: dict[str, str] = field(default_factory=dict)  # name -> contact id
    message: dict[str, str] = field(default_factory=dict)  # name (or label) -> message id

    def add_message(self, name: str, label: str | None = None, status: str = "sent") -> str:
        """A message of this campaign to <name>@example.com (a new contact unless known)."""
        sent = status == "sent"
        with write_transaction(self.engine) as conn:
            if name not in self.contact:
                self.contact[name] = new_id("ct")
                conn.execute(
                    insert(contacts).values(
                        id=self.contact[name],
                        account_id=self.account_id,
                        email=f"{name}@example.com",
                        first_name=name.title(),
                        last_name="",
                        company="",
                        fields={},
                        created_at_ms=SENT - H,
                        updated_at_ms=SENT - H,
                    )
                )
            message_id = new_message_id()
            conn.execute(
                insert(messages).values(
                    id=message_id,
                    account_id=self.account_id,
                    campaign_id=self.id,
                    step_id=self.step_id,
                    contact_id=self.contact[name],
                    mailbox_id=self.mailbox_id,
                    status=status,
                    send_at_ms=SENT,
                    track_opens=True,
                    track_clicks=True,
                    track_text_links=True,
                    tracking_base_url="https://t.example.com",
                    link_count=len(LINKS),
                    attempts=1,
                    sent_at_ms=SENT if sent else None,
                    error=None if sent else "550 5.1.1 no such user",
                    created_at_ms=SENT - H,
                )
            )
        self.message[label or name] = message_id
        return message_id

    def hit(
        self,
        name: str,
        kind: HitKind,
        at_ms: int,
        ip: str,
        agent: str,
        link: int | None = None,
        honeypot: bool = False,
    ) -> Hit:
        destination = LINKS.get(link) if link is not None and not honeypot else None
        message_id = self.message[name]
        return Hit(
            new_event_id(), kind, message_id, link, destination, at_ms, ip, agent, "GET", honeypot
        )

    def record(self, *hits: Hit) -> None:
        with write_transaction(self.engine) as conn:
            record_hits(conn, list(hits), Rules.load(), enqueue_engagement)

    def suppress(self, name: str, reason: str, at_ms: int) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                insert(suppressions).values(
                    account_id=self.account_id,
                    email=f"{name}@example.com",
                    reason=reason,
                    created_at_ms=at_ms,
                )
            )


def make_campaign(
    engine: Engine, account_id: str, names: Iterable[str] = (), failed: Iterable[str] = ()
) -> Campaign:
    """A campaign of `account_id` (one step, three links) with a message per name, sent (or
    failed) at SENT; contacts are <name>@example.com, made per campaign."""
    with write_transaction(engine) as conn:
        mailbox, campaign, step = new_id("mbx"), new_id("cmp"), new_id("stp")
        conn.execute(
            insert(mailboxes).values(
                id=mailbox,
                account_id=account_id,
                name="m",
                from_email="me@acme.example",
                from_name="Me",
                smtp_url_encrypted=None,
                daily_limit=100,
                created_at_ms=SENT - H,
            )
        )
        conn.execute(
            insert(campaigns).values(
                id=campaign,
                account_id=account_id,
                name="Spring launch",
                mailbox_id=mailbox,
                status="active",
                schedule={},
                track_opens=True,
                track_clicks=True,
                track_text_links=True,
                tracking_domain_id=None,
                start_at_ms=SENT,
                created_at_ms=SENT - H,
                updated_at_ms=SENT - H,
            )
        )
        conn.execute(
            insert(campaign_steps).values(
                id=step,
                campaign_id=campaign,
                position=1,
                subject="Spring",
                html="<p>hi</p>",
                text=None,
                delay_days=0,
            )
        )
    built = Campaign(engine, account_id, campaign, mailbox, step)
    failing = set(failed)
    for name in names:
        built.add_message(name, status="failed" if name in failing else "sent")
    return built


NAMES = ("ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal")


def tell_story(c: Campaign) -> None:
    """The recipients' doings (see the module docstring), recorded as the flusher would."""
    c.record(
        c.hit("ann", "open", SENT + 1 * H, "198.51.100.7", OUTLOOK),
        c.hit("ann", "click", SENT + 1 * H + 30 * S, "198.51.100.7", SAFARI, link=1),
        c.hit("bob", "open", SENT + 2 * M, "17.58.1.9", MPP),
        *(c.hit("cy", "click", SENT + 20 * S + n * 100, EOP_IP, SAFARI, link=n) for n in (1, 2, 3)),
        c.hit("cy", "open", SENT + 20 * S, EOP_IP, SAFARI),
        c.hit("dee", "open", SENT + 2 * H, "203.0.113.5", OUTLOOK),
        c.hit("eve", "open", SENT + 30 * M, "66.249.84.1", GMAIL),
        c.hit("eve", "click", SENT + 31 * M, "192.0.2.44", FIREFOX, link=2),
        c.hit("hal", "click", SENT + 3 * H, "198.51.100.99", SAFARI, link=1),
    )
    c.record(
        c.hit("ann", "open", SENT + 5 * H, "198.51.100.7", OUTLOOK),
        c.hit("cy", "open", SENT + 3 * H + 30 * M, "192.0.2.80", OUTLOOK),
        c.hit("dee", "open", SENT + 26 * H, "100.64.9.9", FIREFOX),  # the forward
        c.hit("hal", "click", SENT + 3 * H + 3 * S, "198.51.100.99", SAFARI, link=0, honeypot=True),
    )
    c.suppress("fay", "bounced", SENT + 1 * M)
    c.suppress("gus", "unsubscribed", SENT + 30 * H)


@pytest.fixture
def story(api: Api) -> tuple[Api, Tenant, Campaign]:
    tenant = api.account("owner@acme.example", timezone="Europe/Paris")
    campaign = make_campaign(api.engine, tenant.account_id, NAMES, failed=["fay"])
    tell_story(campaign)
    return api, tenant, campaign
