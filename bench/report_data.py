"""A generated campaign for bench/report.py: N contacts, one message each, and E events.

The mix of events follows what a real B2B/B2C send gets: Apple Mail Privacy Protection
prefetches, opens through Gmail's image proxy, people opening (and re-opening, forwarding)
and clicking a few of the 5 links, Microsoft Safe Links scanning every link at delivery,
other link scanners clicking everything in a burst, and bots. Each message's hits are judged
by the classifier, as the flusher does (with 17.0.0.0/8 as Apple's egress ranges), and the
report aggregates are then built from the events by `rebuild_reports`, which the tests check
against what the flusher keeps event by event. Deterministic for a given seed.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, insert

from pixeltrail.store.report_aggregates import rebuild_reports
from pixeltrail.store.schema import (
    accounts,
    campaign_steps,
    campaigns,
    contacts,
    events,
    mailboxes,
    messages,
    suppressions,
)
from pixeltrail.tracking.classify import Rules, classify_message
from pixeltrail.tracking.hits import Hit, HitKind, Verdict

ACCOUNT, CAMPAIGN = "acct_bench", "cmp_bench"
T0 = 1_774_000_000_000  # 2026-03-20, ten days before a DST change in Europe/Paris
LINKS = (
    "https://shop.example.com/spring?utm_source=newsletter&utm_campaign=spring",
    "https://shop.example.com/products/trail-jacket?utm_source=newsletter",
    "https://blog.example.com/2026/03/layering-guide",
    "https://shop.example.com/sale?utm_source=newsletter&utm_content=footer",
    "https://example.com/account/preferences",
)
SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko)"
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
MPP_UA = "Mozilla/5.0"
BOT_UA = "ExampleBot/2.1 (+https://bot.example.com)"
MINUTE, HOUR = 60_000, 3_600_000
BATCH = 50_000


@dataclass
class Generated:
    contacts: int
    events: int
    message_ids: list[str]
    seconds: float


APPLE_RANGES = ("17.0.0.0/8",)
RULES = Rules.load(apple_ranges=APPLE_RANGES)


class _Hits:
    """The hits of one message as a recipient's copy gets them."""

    def __init__(self, rng: random.Random, message_id: str) -> None:
        self.rng = rng
        self.message_id = message_id
        self.hits: list[Hit] = []

    def add(self, kind: HitKind, at_ms: int, ip: str, agent: str, link: int | None = None) -> None:
        destination = LINKS[link - 1] if link else None
        hit_id = f"{self.rng.getrandbits(128):032x}"
        self.hits.append(
            Hit(hit_id, kind, self.message_id, link, destination, at_ms, ip, agent, "GET")
        )


def _ip(rng: random.Random, first: int, second: int | None = None) -> str:
    middle = rng.randrange(256) if second is None else second
    return f"{first}.{middle}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _persona(out: _Hits, sent_ms: int) -> str:
    """The hits one recipient's copy gets at first; returns the persona (for extra hits)."""
    rng = out.rng
    draw = rng.random()
    later = sent_ms + rng.randrange(10 * MINUTE, 72 * HOUR)
    if draw < 0.35:  # Apple Mail: MPP prefetch, sometimes a click from Safari later
        agent = MPP_UA if rng.random() < 0.7 else SAFARI  # by user agent, or by address
        out.add("open", sent_ms + rng.randrange(MINUTE, 20 * MINUTE), _ip(rng, 17), agent)
        if rng.random() < 0.08:
            out.add("click", later, _ip(rng, 81), SAFARI, rng.randint(1, 5))
        return "mpp"
    if draw < 0.50:  # Gmail: opens through the image proxy
        out.add("open", later, _ip(rng, 66), GMAIL)
        if rng.random() < 0.1:
            out.add("click", later + 30_000, _ip(rng, 92), SAFARI, rng.randint(1, 5))
        return "gmail"
    if draw < 0.75:  # a person in a desktop client: opens, clicks, sometimes a forward
        ip = _ip(rng, 92)
        out.add("open", later, ip, OUTLOOK)
        if rng.random() < 0.3:
            for link in rng.sample(range(1, 6), rng.randint(1, 2)):
                out.add("click", later + rng.randrange(5_000, 600_000), ip, SAFARI, link)
        if rng.random() < 0.05:
            out.add("open", later + 2 * HOUR, _ip(rng, 151), SAFARI)
        return "human"
    if draw < 0.85:  # behind Microsoft Safe Links: opens and every link clicked at delivery
        ip, at = _ip(rng, 40, 107), sent_ms + rng.randrange(12_000, 60_000)
        out.add("open", at, ip, SAFARI)
        for link in range(1, 6):
            out.add("click", at + 100 * link, ip, SAFARI, link)
        return "scanner"
    if draw < 0.88:  # another scanner, recognised by its burst
        ip, at, span = _ip(rng, 34), sent_ms + rng.randrange(MINUTE, 10 * MINUTE), 4_000
        for link in range(1, 6):
            out.add("click", at + rng.randrange(span), ip, SAFARI, link)
        return "burst"
    if draw < 0.90:
        out.add("open", later, _ip(rng, 54), BOT_UA)
        return "bot"
    return "none"


def _more(out: _Hits, persona: str, sent_ms: int) -> None:
    """One more hit of the kind this recipient's copy keeps getting (re-opens, re-scans)."""
    rng = out.rng
    at = sent_ms + rng.randrange(HOUR, 14 * 24 * HOUR)
    if persona == "mpp":
        out.add("open", at, _ip(rng, 17), MPP_UA)
    elif persona == "gmail":
        out.add("open", at, _ip(rng, 66), GMAIL)
    elif persona in {"scanner", "burst"}:
        out.add("open", at, _ip(rng, 40, 107), SAFARI)
    elif persona == "bot":
        out.add("open", at, _ip(rng, 54), BOT_UA)
    elif rng.random() < 0.05:
        out.add("click", at, _ip(rng, 92), SAFARI, rng.randint(1, 5))
    else:
        out.add("open", at, _ip(rng, 92), OUTLOOK)


def _platform_rows(conn: Connection, count: int, rng: random.Random) -> list[tuple[str, int]]:
    """Account, mailbox, campaign, contacts and messages; returns (message id, sent ms)."""
    common = {"created_at_ms": T0 - 86_400_000}
    conn.execute(
        insert(accounts).values(
            id=ACCOUNT,
            name="Bench",
            timezone="Europe/Paris",
            default_track_opens=True,
            anonymize_ips=False,
            retention_days=None,
            **common,
        )
    )
    conn.execute(
        insert(mailboxes).values(
            id="mbx_bench",
            account_id=ACCOUNT,
            name="m",
            from_email="news@example.com",
            from_name="News",
            smtp_url_encrypted=None,
            daily_limit=10**6,
            **common,
        )
    )
    conn.execute(
        insert(campaigns).values(
            id=CAMPAIGN,
            account_id=ACCOUNT,
            name="Spring launch",
            mailbox_id="mbx_bench",
            status="active",
            schedule={},
            track_opens=True,
            track_clicks=True,
            track_text_links=True,
            tracking_domain_id=None,
            start_at_ms=T0,
            updated_at_ms=T0,
            **common,
        )
    )
    conn.execute(
        insert(campaign_steps).values(
            id="stp_bench",
            campaign_id=CAMPAIGN,
            position=1,
            subject="Spring",
            html="<p>hi</p>",
            text=None,
            delay_days=0,
        )
    )
    people: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    suppressed: list[dict[str, Any]] = []
    delivered: list[tuple[str, int]] = []
    made = T0 - 3_600_000
    for i in range(count):
        contact_id, email = f"ct_{i:010d}", f"reader{i}@example.com"
        people.append(
            {
                "id": contact_id,
                "account_id": ACCOUNT,
                "email": email,
                "first_name": "",
                "last_name": "",
                "company": "",
                "fields": {},
                "created_at_ms": made,
                "updated_at_ms": made,
                "do_not_track": False,
            }
        )
        failed = rng.random() < 0.015
        at = T0 + i * 40
        sent.append(
            {
                "id": f"m{i:015d}",
                "account_id": ACCOUNT,
                "campaign_id": CAMPAIGN,
                "step_id": "stp_bench",
                "contact_id": contact_id,
                "mailbox_id": "mbx_bench",
                "status": "failed" if failed else "sent",
                "send_at_ms": at,
                "track_opens": True,
                "track_clicks": True,
                "track_text_links": True,
                "tracking_base_url": "https://t.example.com",
                "link_count": 5,
                "attempts": 1,
                "sent_at_ms": None if failed else at,
                "error": "550 5.1.1 user unknown" if failed else None,
                "created_at_ms": made,
            }
        )
        if not failed:
            delivered.append((f"m{i:015d}", at))
        reason = "bounced" if failed else ("unsubscribed" if rng.random() < 0.004 else None)
        if reason:
            suppressed.append(
                {
                    "account_id": ACCOUNT,
                    "email": email,
                    "reason": reason,
                    "created_at_ms": at + HOUR,
                }
            )
    for table, rows in ((contacts, people), (messages, sent), (suppressions, suppressed)):
        for start in range(0, len(rows), 5_000):
            conn.execute(insert(table), rows[start : start + 5_000])
    return delivered


def _make_events(
    conn: Connection, sent: list[tuple[str, int]], target: int, rng: random.Random
) -> int:
    copies = [(_Hits(rng, message_id), at) for message_id, at in sent]
    personas = [_persona(out, at) for out, at in copies]
    made = sum(len(out.hits) for out, _ in copies)
    active = [i for i, persona in enumerate(personas) if persona != "none"]
    extra = [0] * len(copies)
    for _ in range(max(0, target - made)):
        extra[rng.choice(active)] += 1
    rows: list[dict[str, Any]] = []
    for (out, at), persona, more in zip(copies, personas, extra, strict=True):
        for _ in range(more):
            _more(out, persona, at)
        verdicts = classify_message(out.hits, RULES, sent_at_ms=at, link_count=len(LINKS))
        rows += (_row(hit, verdicts[hit.id]) for hit in out.hits)
        made += more
        if len(rows) >= BATCH:
            _store_events(conn, rows)
            rows = []
    _store_events(conn, rows)
    return made


def _row(hit: Hit, verdict: Verdict) -> dict[str, Any]:
    return {
        **asdict(hit),
        "classification": verdict.classification,
        "reason": verdict.reason,
        "recorded_at_ms": hit.at_ms + 200,
    }


def _store_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = [c.name for c in events.columns]
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY events ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row([row[c] for c in columns])
        return
    conn.execute(insert(events), rows)


def generate(conn: Connection, contacts_count: int, events_count: int, seed: int) -> Generated:
    """Fill an empty, migrated database (inside the caller's transaction)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    sent = _platform_rows(conn, contacts_count, rng)
    made = _make_events(conn, sent, events_count, rng)
    rebuild_reports(conn, CAMPAIGN)
    ids = [message_id for message_id, _ in sent]
    return Generated(contacts_count, made, ids, time.perf_counter() - started)
