"""Storing and reading events: idempotent inserts, verdict changes, ordered streaming."""

from __future__ import annotations

import random
from itertools import islice

from sqlalchemy import Engine, text

from pixeltrail.store.events import (
    count_events,
    events_of_messages,
    insert_events,
    list_events,
    update_verdicts,
)
from pixeltrail.tracking.hits import Classification, Event, Verdict

from .conftest import T0, make_event

A = "AAAAAAAAAAAAAAAA"
B = "BBBBBBBBBBBBBBBB"
C = "CCCCCCCCCCCCCCCC"


def test_events_come_back_exactly_as_stored(store: Engine) -> None:
    stored = [
        make_event(
            A, T0, "open", classification=Classification.APPLE_MPP, reason="Apple MPP range"
        ),
        make_event(
            A,
            T0 + 1,
            "click",
            link=3,
            destination="https://example.com/ünïcode?a=1&b=2#frag",
            user_agent="Mozilla/5.0 (iPhone) \u2603",
        ),
        make_event(
            A, T0 + 2, "click", link=0, honeypot=True, classification=Classification.SCANNER
        ),
    ]
    with store.begin() as conn:
        assert insert_events(conn, stored) == 3
    with store.connect() as conn:
        assert events_of_messages(conn, [A]) == stored


def test_inserting_the_same_events_again_stores_each_once(store: Engine) -> None:
    first = [make_event(A, T0 + i) for i in range(3)]
    with store.begin() as conn:
        assert insert_events(conn, first) == 3
    replay = [*first, make_event(A, T0 + 9)]
    with store.begin() as conn:
        assert insert_events(conn, replay) == 1
        assert insert_events(conn, replay) == 0
        assert insert_events(conn, []) == 0
    with store.connect() as conn:
        assert count_events(conn) == 4


def test_duplicates_within_one_batch_count_once(store: Engine) -> None:
    event = make_event()
    with store.begin() as conn:
        assert insert_events(conn, [event, event, event]) == 1
        assert count_events(conn) == 1


def test_large_batches_are_inserted_whole(store: Engine) -> None:
    batch = [make_event(A, T0 + i) for i in range(1234)]
    with store.begin() as conn:
        assert insert_events(conn, batch) == 1234
        assert insert_events(conn, [*batch[1000:], make_event(B)]) == 1
        assert count_events(conn) == 1235


def test_a_rolled_back_insert_leaves_nothing(store: Engine) -> None:
    with store.connect() as conn:
        with conn.begin() as tx:
            insert_events(conn, [make_event()])
            tx.rollback()
        assert count_events(conn) == 0


def test_update_verdicts_changes_only_the_named_events(store: Engine) -> None:
    events = [make_event(A, T0 + i) for i in range(3)]
    with store.begin() as conn:
        insert_events(conn, events)
        update_verdicts(
            conn,
            [
                (events[0].hit.id, Verdict(Classification.SCANNER, "clicked the honeypot link")),
                (events[2].hit.id, Verdict(Classification.APPLE_MPP, "Apple MPP range")),
                ("0" * 32, Verdict(Classification.SCANNER, "no such event")),
            ],
        )
        update_verdicts(conn, [])
    with store.connect() as conn:
        stored = events_of_messages(conn, [A])
    assert [(e.classification, e.reason) for e in stored] == [
        (Classification.SCANNER, "clicked the honeypot link"),
        (Classification.HUMAN, ""),
        (Classification.APPLE_MPP, "Apple MPP range"),
    ]
    assert [e.hit for e in stored] == [e.hit for e in events]


def test_events_of_messages_oldest_first_ties_by_id(store: Engine) -> None:
    tied = [make_event(B, T0 + 5, event_id=f"{n:032x}") for n in (7, 3, 5)]
    others = [make_event(A, T0 + 9), make_event(C, T0), make_event(A, T0 + 1)]
    with store.begin() as conn:
        insert_events(conn, [*tied, *others])
    with store.connect() as conn:
        found = events_of_messages(conn, {A, B})
        assert [(e.hit.message_id, e.hit.at_ms, e.hit.id[-1]) for e in found] == [
            (A, T0 + 1, others[2].hit.id[-1]),
            (B, T0 + 5, "3"),
            (B, T0 + 5, "5"),
            (B, T0 + 5, "7"),
            (A, T0 + 9, others[0].hit.id[-1]),
        ]
        assert events_of_messages(conn, []) == []
        assert events_of_messages(conn, ["DDDDDDDDDDDDDDDD"]) == []
        # More messages than fit in one IN (...) list, still one ordered answer.
        many = [f"{n:016d}" for n in range(1200)] + [C]
        assert [e.hit.message_id for e in events_of_messages(conn, many)] == [C]


def test_list_events_streams_thousands_in_order(store: Engine) -> None:
    rng = random.Random(7)
    stored = [
        make_event(rng.choice((A, B, C)), T0 + rng.randrange(2_000), event_id=f"{n:032x}")
        for n in range(5_000)
    ]
    with store.begin() as conn:
        assert insert_events(conn, stored) == 5_000

    def key(event: Event) -> tuple[int, str]:
        return event.hit.at_ms, event.hit.id

    with store.connect() as conn:
        streamed = list_events(conn)
        first = next(streamed)
        if store.dialect.name == "postgresql":
            # Rows come from a server-side cursor as they are consumed, not all at once.
            assert conn.execute(text("SELECT count(*) FROM pg_cursors")).scalar_one() == 1
        everything = [first, *streamed]
        assert everything == sorted(stored, key=key)

        only_b = list(list_events(conn, B))
        assert only_b == sorted((e for e in stored if e.hit.message_id == B), key=key)

        # Stopping early is cheap and leaves the connection usable.
        assert list(islice(list_events(conn), 10)) == everything[:10]
        assert count_events(conn) == 5_000
        assert list(list_events(conn, "DDDDDDDDDDDDDDDD")) == []
