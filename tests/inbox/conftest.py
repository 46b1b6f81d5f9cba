"""Sent messages to answer: chains of rows (tests/chain.py) scheduled and sent into the built-in
outbox, and the raw bytes of what went out, so replies and bounces name real Message-IDs."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from pixeltrail.config import Settings
from pixeltrail.inbound import classify_message
from pixeltrail.platform.campaigns.scheduler import schedule_due
from pixeltrail.platform.inbox.recording import record_inbound
from pixeltrail.sending.worker import SendWorker
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import inbound_messages, messages

from ..api.conftest import make_settings
from ..dbs import DATABASES, fresh_database

SAMPLES = Path(__file__).parent.parent / "inbound" / "samples"
UID_VALIDITY = 7


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path) as database:
        yield database.migrated()


@pytest.fixture
def settings(tmp_path: Path, engine: Engine) -> Settings:
    return make_settings(tmp_path, engine.url.render_as_string(hide_password=False))


def schedule(engine: Engine, settings: Settings, now: int) -> int:
    with write_transaction(engine) as conn:
        return schedule_due(conn, settings, now)


def send(engine: Engine, settings: Settings, now: int) -> int:
    """Send what is due into the outbox (the chains' mailboxes have no SMTP server)."""
    worker = SendWorker(engine, settings, settings.signer(), concurrency=1, batch=50)

    async def once() -> int:
        try:
            return await worker.run_once(now)
        finally:
            await worker.close()

    return asyncio.run(once())


def sent_email(settings: Settings, message_id: str) -> EmailMessage:
    """The message as it went out, read from the outbox."""
    raw = (settings.data_dir / "outbox" / f"{message_id}.eml").read_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def reply_to(original: EmailMessage, body: str = "Sounds good, call me.", **headers: str) -> bytes:
    """A person's answer to `original`, as a mail client writes it; `headers` replace or, set
    to "", drop the threading headers and the subject."""
    reply = EmailMessage()
    reply["From"] = headers.pop("From", str(original["To"]))
    reply["To"] = str(original["From"])
    reply["Subject"] = headers.pop("Subject", f"Re: {original['Subject']}")
    reply["Date"] = "Tue, 08 Dec 2026 10:00:00 +0000"
    reply["Message-ID"] = "<reply-1@mail.example.org>"
    threading = {
        "In-Reply-To": str(original["Message-ID"]),
        "References": str(original["Message-ID"]),
    }
    threading.update(headers)
    for name, value in threading.items():
        if value:
            reply[name] = value
    reply.set_content(body)
    return reply.as_bytes()


def sample(name: str, replace: dict[str, str]) -> bytes:
    """A real message of tests/inbound/samples with its ids and addresses made ours."""
    raw = (SAMPLES / name).read_bytes()
    for old, new in replace.items():
        assert old.encode() in raw, old
        raw = raw.replace(old.encode(), new.encode())
    return raw


def record(
    engine: Engine,
    raw: bytes,
    uid: int,
    mailbox_id: str = "mbx_a",
    account_id: str | None = None,
    now: int = 0,
) -> str | None:
    """Classify `raw` and record it as UID `uid` of the mailbox's INBOX, in one transaction
    (the account of a chain's mailbox unless named)."""
    inbound = classify_message(raw)
    account_id = account_id or "acct_" + mailbox_id.removeprefix("mbx_")
    with write_transaction(engine) as conn:
        return record_inbound(
            conn, account_id, mailbox_id, UID_VALIDITY, uid, inbound, 1_000 + uid, now
        )


def inbound_row(engine: Engine, row_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(inbound_messages).where(inbound_messages.c.id == row_id)).one()
    return dict(row._mapping)


def message_rows(engine: Engine, campaign_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(messages)
            .where(messages.c.campaign_id == campaign_id)
            .order_by(messages.c.created_at_ms, messages.c.id)
        )
        return [dict(row._mapping) for row in rows]
