"""A real `pixeltrail worker` process killed (SIGKILL) in the middle of a batch, then another
started: nothing is sent twice, nothing is lost or left claimed, and only the messages that
were in flight at the kill (at most CONCURRENCY) are failed, with the reason the README gives.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, insert, select, update

from pixeltrail.platform.ids import now_ms
from pixeltrail.sending.worker import CONCURRENCY, SENDING_LEASE_MS
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import messages
from pixeltrail.tracking.tokens import new_message_id

from ..api.conftest import make_settings
from ..chain import make_chain
from ..conftest import SECRET
from ..dbs import DATABASES, Database, fresh_database
from ..server.conftest import eventually, free_port

MESSAGES = 300
HOLD_AFTER = 40  # the 41st message on: held in DATA until the worker has been killed
IN_DOUBT = "the worker stopped while sending it"


@dataclass
class HoldingInbox:
    """Takes messages (their ids, from the Message-ID header); once `hold_after` arrived, each
    next one is taken but its answer (250) held until `release` is set: a kill meanwhile leaves
    messages the server has while their sender never heard so, the worst case of being in doubt.
    """

    hold_after: int
    received: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        message_id = _message_id(str(parsed["Message-ID"]))
        hold = len(self.received) >= self.hold_after and not self.release.is_set()
        self.received.append(message_id)  # handlers all run on the server's one event loop
        if hold:
            self.held.append(message_id)
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return "250 Message accepted"


def _message_id(header: str) -> str:
    """The message's id in its Message-ID header (<id@sender's domain>)."""
    found = re.fullmatch(r"<([A-Za-z0-9_-]{16})@acme\.example>", header)
    assert found is not None, header
    return found.group(1)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        database.migrated()
        yield database


@pytest.fixture
def inbox() -> Iterator[tuple[HoldingInbox, str]]:
    handler = HoldingInbox(HOLD_AFTER)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{port}?starttls=off"
    finally:
        handler.release.set()
        controller.stop()


def _due_messages(database: Database, tmp_path: Path, smtp_url: str) -> set[str]:
    settings = make_settings(tmp_path, database.url, PIXELTRAIL_MAIL_ALLOW_LOCAL="1")
    emails = [f"r{n:03}@example.org" for n in range(MESSAGES)]
    now = now_ms()
    with write_transaction(database.engine) as conn:
        chain = make_chain(conn, settings, emails=emails, smtp_url=smtp_url)
        rows = [
            {
                "id": new_message_id(),
                "account_id": chain.account_id,
                "campaign_id": chain.campaign_id,
                "step_id": chain.step_ids[0],
                "contact_id": contact_id,
                "mailbox_id": chain.mailbox_id,
                "status": "scheduled",
                "send_at_ms": now - 1000,
                "track_opens": True,
                "track_clicks": True,
                "track_text_links": True,
                "tracking_base_url": "https://t.example.com",
                "link_count": None,
                "attempts": 0,
                "sent_at_ms": None,
                "error": None,
                "created_at_ms": now - 1000,
            }
            for contact_id in chain.contact_ids
        ]
        conn.execute(insert(messages), rows)
    return {str(row["id"]) for row in rows}


def _worker(database: Database, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIXELTRAIL_")},
        "PIXELTRAIL_DATA_DIR": str(tmp_path / "data"),
        "PIXELTRAIL_SECRET_KEY": SECRET,
        "PIXELTRAIL_DATABASE_URL": database.url,
        "PIXELTRAIL_MAIL_ALLOW_LOCAL": "1",
    }
    with (tmp_path / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pixeltrail", "worker", "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _statuses(engine: Engine) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        query = select(messages.c.id, messages.c.status, messages.c.error)
        return {row.id: (row.status, row.error) for row in conn.execute(query)}


def _unfinished(engine: Engine) -> int:
    pending = {"scheduled", "claimed", "sending"}
    return sum(status in pending for status, _ in _statuses(engine).values())


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_loses_nothing(
    database: Database, tmp_path: Path, inbox: tuple[HoldingInbox, str]
) -> None:
    server, smtp_url = inbox
    ids = _due_messages(database, tmp_path, smtp_url)
    engine = database.engine
    first = _worker(database, tmp_path, "first")
    try:
        eventually(lambda: server.held or first.poll() is not None, timeout=30)
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        _settle(server)  # the round's other messages arrive too, each on its own connection
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    at_kill = _statuses(engine)
    held = set(server.held)
    # The kill landed mid-batch: messages in flight (the server has them, unanswered), and
    # others of the batch claimed, not yet tried.
    assert 1 <= len(held) <= CONCURRENCY
    assert {mid for mid, (status, _) in at_kill.items() if status == "sending"} == held
    assert any(status == "claimed" for status, _ in at_kill.values())
    assert sum(status == "sent" for status, _ in at_kill.values()) <= HOLD_AFTER
    server.release.set()
    # Stands in for the ten minutes after which another worker takes over a dead one's lease.
    with write_transaction(engine) as conn:
        conn.execute(
            update(messages)
            .where(messages.c.status.in_(["claimed", "sending"]))
            .values(send_at_ms=messages.c.send_at_ms - SENDING_LEASE_MS - 1000)
        )

    second = _worker(database, tmp_path, "second")
    try:
        eventually(lambda: not _unfinished(engine), timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, (tmp_path / "second.log").read_text()

    final = _statuses(engine)
    received = Counter(server.received)
    assert set(final) == ids
    assert [mid for mid, n in received.items() if n > 1] == []  # none twice, some in doubt
    assert set(received) == ids  # and every one reached the server
    sent = {mid for mid, (status, _) in final.items() if status == "sent"}
    failed = {mid for mid, (status, _) in final.items() if status == "failed"}
    assert sent | failed == ids  # none left scheduled, claimed or sending
    # Failed: exactly those in flight at the kill (delivered, as it happens), with the reason.
    assert failed == held
    assert all(str(final[mid][1]).startswith(IN_DOUBT) for mid in failed)


def _settle(server: HoldingInbox) -> None:
    """Wait until no more messages arrive to be held for half a second."""
    last, stable_since = len(server.held), time.monotonic()
    while time.monotonic() - stable_since < 0.5:
        time.sleep(0.05)
        if len(server.held) != last:
            last, stable_since = len(server.held), time.monotonic()
