"""Recording hits into the database: classification, sent time, IP anonymisation, retroactivity."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert

from pixeltrail.platform.webhooks.events import enqueue_engagement
from pixeltrail.recording.flusher import record_hits
from pixeltrail.store.db import write_transaction
from pixeltrail.store.events import list_events
from pixeltrail.store.schema import (
    accounts,
    campaign_steps,
    campaigns,
    contacts,
    mailboxes,
    messages,
)
from pixeltrail.tracking.classify import Rules, classify_message
from pixeltrail.tracking.hits import Hit, HitKind, new_event_id
from pixeltrail.tracking.tokens import new_message_id

from ..dbs import DATABASES, fresh_database

MESSAGE = "AAECAwQFBgcICQoL"
SENT = 1_800_000_000_000
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path) as database:
        yield database.migrated()


def _sent_message(engine: Engine, anonymize: bool) -> None:
    """A message pixeltrail sent, with the rows it hangs from."""
    with write_transaction(engine) as conn:
        conn.execute(
            insert(accounts).values(
                id="acct_a",
                name="A",
                timezone="UTC",
                default_track_opens=True,
                anonymize_ips=anonymize,
                retention_days=None,
                created_at_ms=0,
            )
        )
        conn.execute(
            insert(mailboxes).values(
                id="mbx_a",
                account_id="acct_a",
                name="m",
                from_email="a@a.example",
                from_name="A",
                smtp_url_encrypted=None,
                daily_limit=100,
                created_at_ms=0,
            )
        )
        conn.execute(
            insert(contacts).values(
                id="ct_a",
                account_id="acct_a",
                email="r@b.example",
                first_name="",
                last_name="",
                company="",
                fields={},
                created_at_ms=0,
                updated_at_ms=0,
            )
        )
        conn.execute(
            insert(campaigns).values(
                id="cmp_a",
                account_id="acct_a",
                name="c",
                mailbox_id="mbx_a",
                status="active",
                schedule={},
                track_opens=True,
                track_clicks=True,
                track_text_links=True,
                tracking_domain_id=None,
                start_at_ms=None,
                created_at_ms=0,
                updated_at_ms=0,
            )
        )
        conn.execute(
            insert(campaign_steps).values(
                id="stp_a",
                campaign_id="cmp_a",
                position=1,
                subject="s",
                html="h",
                text=None,
                delay_days=0,
            )
        )
        conn.execute(
            insert(messages).values(
                id=MESSAGE,
                account_id="acct_a",
                campaign_id="cmp_a",
                step_id="stp_a",
                contact_id="ct_a",
                mailbox_id="mbx_a",
                status="sent",
                send_at_ms=SENT,
                track_opens=True,
                track_clicks=True,
                track_text_links=True,
                tracking_base_url="https://t.example",
                attempts=1,
                sent_at_ms=SENT,
                error=None,
                created_at_ms=0,
            )
        )


def _hit(
    kind: HitKind, at_ms: int, ip: str, link: int | None = None, honeypot: bool = False
) -> Hit:
    return Hit(
        new_event_id(),
        kind,
        MESSAGE,
        link,
        "https://a.example/" if kind == "click" and not honeypot else None,
        at_ms,
        ip,
        SAFARI,
        "GET",
        honeypot,
    )


def _record(engine: Engine, *hits: Hit) -> None:
    with write_transaction(engine) as conn:
        record_hits(conn, list(hits), Rules.load(), enqueue_engagement)


def _events(engine: Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        return {e.hit.id: (e.hit.ip, e.classification) for e in list_events(conn, MESSAGE)}


def test_anonymising_accounts_keep_only_the_network(engine: Engine) -> None:
    _sent_message(engine, anonymize=True)
    v4, v6 = (
        _hit("open", SENT + 60_000, "203.0.113.77"),
        _hit("open", SENT + 61_000, "2001:db8:aa:bb::1"),
    )
    _record(engine, v4, v6)
    stored = _events(engine)
    assert stored[v4.id][0] == "203.0.113.0"
    assert stored[v6.id][0] == "2001:db8:aa::"


def test_full_addresses_are_kept_otherwise(engine: Engine) -> None:
    _sent_message(engine, anonymize=False)
    hit = _hit("open", SENT + 60_000, "203.0.113.77")
    _record(engine, hit)
    assert _events(engine)[hit.id][0] == "203.0.113.77"


def test_a_click_right_after_sending_is_a_scanners(engine: Engine) -> None:
    _sent_message(engine, anonymize=False)
    quick, later = (
        _hit("click", SENT + 2_000, "198.51.100.7", 1),
        _hit("click", SENT + 600_000, "198.51.100.7", 1),
    )
    _record(engine, quick, later)
    stored = _events(engine)
    assert stored[quick.id][1] == "scanner"
    assert stored[later.id][1] == "human"


def test_a_later_honeypot_click_turns_earlier_clicks_into_a_scanners(engine: Engine) -> None:
    _sent_message(engine, anonymize=True)
    first = _hit("click", SENT + 300_000, "198.51.100.7", 1)
    _record(engine, first)
    assert _events(engine)[first.id][1] == "human"
    _record(engine, _hit("click", SENT + 303_000, "198.51.100.7", 0, honeypot=True))
    assert _events(engine)[first.id][1] == "scanner"


def test_hits_of_messages_sent_elsewhere_are_still_recorded(engine: Engine) -> None:
    hit = Hit(
        new_event_id(), "open", "BBECAwQFBgcICQoL", None, None, SENT, "192.0.2.1", SAFARI, "GET"
    )
    _record(engine, hit)
    with engine.connect() as conn:
        assert [e.hit.id for e in list_events(conn, "BBECAwQFBgcICQoL")] == [hit.id]


# Clients: the Apple MPP agent, a desktop and a phone, from three networks (forwards need
# another network AND another agent than the reader's).
_AGENTS = ("Mozilla/5.0", SAFARI, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)")
_ADDRESSES = ("198.51.100.7", "203.0.113.20", "192.0.2.33")


@st.composite
def _histories(draw: st.DrawFn) -> tuple[list[Hit], list[list[Hit]]]:
    """Hits of one message (clustered in time so honeypot windows and bursts overlap), and
    the batches they reach the flusher in: any order, any split."""
    message = new_message_id()
    moments = draw(st.lists(st.integers(0, 60_000), min_size=1, max_size=6))
    hits = []
    for _ in range(draw(st.integers(1, 24))):
        kind: HitKind = draw(st.sampled_from(["open", "click"]))
        link = draw(st.integers(0, 3)) if kind == "click" else None
        honeypot = link == 0
        hits.append(
            Hit(
                new_event_id(),
                kind,
                message,
                link,
                "https://a.example/" if kind == "click" and not honeypot else None,
                SENT + draw(st.sampled_from(moments)) + draw(st.integers(0, 12_000)),
                draw(st.sampled_from(_ADDRESSES)),
                draw(st.sampled_from(_AGENTS)),
                draw(st.sampled_from(["GET"] * 9 + ["HEAD"])),
                honeypot,
            )
        )
    arrival = draw(st.permutations(hits))
    cuts = sorted(draw(st.lists(st.integers(1, len(hits)), max_size=5, unique=True)))
    batches = [arrival[a:b] for a, b in itertools.pairwise([0, *cuts, len(hits)]) if a < b]
    return hits, batches


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=_histories())
def test_flushing_in_batches_judges_as_the_whole_history_at_once(
    engine: Engine, history: tuple[list[Hit], list[list[Hit]]]
) -> None:
    """The flusher judges again only the stored hits around new ones (and keeps the reader):
    whatever order and batches hits arrive in, every verdict is the one the whole history
    gives, and a replayed batch changes nothing."""
    hits, batches = history
    rules = Rules.load()
    for batch in [*batches, batches[0]]:
        with write_transaction(engine) as conn:
            record_hits(conn, batch, rules, enqueue_engagement)
    with engine.connect() as conn:
        stored = {
            e.hit.id: (e.classification, e.reason) for e in list_events(conn, hits[0].message_id)
        }
    expected = classify_message(hits, rules)
    assert stored == {i: (v.classification, v.reason) for i, v in expected.items()}


def _other(kind: HitKind, at_ms: int, ip: str, agent: str, link: int | None = None) -> Hit:
    honeypot = link == 0
    destination = "https://a.example/" if kind == "click" and not honeypot else None
    return Hit(new_event_id(), kind, MESSAGE, link, destination, at_ms, ip, agent, "GET", honeypot)


def test_a_forward_long_after_the_first_open_is_still_seen_as_one(engine: Engine) -> None:
    """The reader's open is far from the new hits, so not read again: it is still the reader."""
    _sent_message(engine, anonymize=False)
    reader = _other("open", SENT + 60_000, "198.51.100.7", SAFARI)
    forward = _other("open", SENT + 3_600_000, "203.0.113.20", _AGENTS[2])
    again = _other("open", SENT + 7_200_000, "198.51.100.9", SAFARI)
    for hit in (reader, forward, again):
        _record(engine, hit)
    with engine.connect() as conn:
        reasons = {e.hit.id: e.reason for e in list_events(conn, MESSAGE)}
    assert reasons[forward.id].startswith("likely forward")
    assert not reasons[again.id].startswith("likely forward")  # the reader's network
    assert not reasons[reader.id].startswith("likely forward")


def test_hits_judged_again_keep_what_their_older_neighbours_said(engine: Engine) -> None:
    """A click near a new hit is judged again with its own neighbours: the honeypot click
    9 s before it, recorded two flushes earlier, still condemns it."""
    _sent_message(engine, anonymize=False)
    honeypot = _other("click", SENT + 600_000, "198.51.100.7", SAFARI, link=0)
    click = _other("click", SENT + 609_000, "198.51.100.7", SAFARI, link=1)
    later = _other("open", SENT + 618_000, "198.51.100.7", SAFARI)
    for hit in (honeypot, click, later):
        _record(engine, hit)
    with engine.connect() as conn:
        verdicts = {e.hit.id: e.classification for e in list_events(conn, MESSAGE)}
    assert verdicts == {honeypot.id: "scanner", click.id: "scanner", later.id: "human"}
