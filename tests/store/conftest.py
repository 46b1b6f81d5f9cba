"""A fresh database per test, each test run once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pixeltrail.tracking.hits import Classification, Event, Hit, HitKind, new_event_id

from ..dbs import DATABASES, Database, fresh_database

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
_ips = itertools.count(1)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def engine(database: Database) -> Engine:
    """An empty database: no tables yet."""
    return database.engine


@pytest.fixture
def store(database: Database) -> Engine:
    """A database with the schema at the newest revision."""
    return database.migrated()


def make_event(
    message_id: str = "AAECAwQFBgcICQoL",
    at_ms: int = T0,
    kind: HitKind = "open",
    link: int | None = None,
    destination: str | None = None,
    classification: str = Classification.HUMAN,
    reason: str = "",
    *,
    event_id: str | None = None,
    honeypot: bool = False,
    user_agent: str = "Mozilla/5.0",
) -> Event:
    hit = Hit(
        id=event_id or new_event_id(),
        kind=kind,
        message_id=message_id,
        link=link,
        destination=destination,
        at_ms=at_ms,
        ip=f"192.0.2.{next(_ips) % 250 + 1}",
        user_agent=user_agent,
        method="GET",
        honeypot=honeypot,
    )
    return Event(hit, classification, reason)
