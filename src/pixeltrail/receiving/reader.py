"""The INBOX reader of the background process: each mailbox's new messages, classified and
recorded once (platform/inbox/recording.py), in the order of their UIDs.

One loop looks every few seconds for the mailboxes to read (`mailboxes_to_read`, each given its
source by `source_of`). For each mailbox whose lease this node takes (inbox_state.py), a thread
keeps its INBOX open: it fetches what came after the last UID read, records each message and
moves the last UID in one transaction, then waits (IDLE, or a poll) for more. A failure (the
server cannot be reached, refuses the login, drops the connection) is kept as the mailbox's
error and retried with backoff; the process never stops for it. A message whose transaction did
not commit is read again, and one that did is never read again: nothing is lost or counted twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple

from sqlalchemy import Engine, select

from pixeltrail.config import Settings
from pixeltrail.inbound import classify_message
from pixeltrail.platform.errors import Invalid
from pixeltrail.platform.ids import now_ms
from pixeltrail.platform.inbox.recording import record_inbound
from pixeltrail.platform.mail.local_inbox import inbox_directory
from pixeltrail.platform.mail.mailboxes import mailbox_imap_endpoint
from pixeltrail.platform.secretbox import SecretUnreadable
from pixeltrail.receiving import inbox_state
from pixeltrail.receiving.imap_inbox import ImapInbox
from pixeltrail.receiving.inbox_state import LeaseLost
from pixeltrail.receiving.local_inbox import LocalInbox
from pixeltrail.receiving.sources import InboxSource, InboxUnavailable
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import mailboxes

log = logging.getLogger("pixeltrail.inbox")

LOOK_SECONDS = 10.0  # how often new, changed and removed mailboxes are noticed
WAIT_SECONDS = 5.0  # one IDLE (or poll) before looking again: a new message is read within it
LEASE_MS = 120_000  # a node that stopped without a word leaves its mailboxes this long
CHECKED_MS = 30_000  # how often "last read" and the lease are written while nothing arrives
BATCH = 50
BACKOFF_SECONDS: Sequence[float] = (5.0, 15.0, 60.0, 300.0)


class ReadMailbox(NamedTuple):
    id: str
    account_id: str
    imap_url_encrypted: str | None
    on_outbox: bool  # sends through the built-in outbox (no SMTP URL)


SourceOf = Callable[[ReadMailbox], InboxSource | None]


def mailboxes_to_read(engine: Engine) -> list[ReadMailbox]:
    """Every mailbox; `source_of` says which of them have an INBOX to read."""
    m = mailboxes.c
    query = select(m.id, m.account_id, m.imap_url_encrypted, m.smtp_url_encrypted).order_by(m.id)
    with engine.connect() as conn:
        return [
            ReadMailbox(r.id, r.account_id, r.imap_url_encrypted, r.smtp_url_encrypted is None)
            for r in conn.execute(query)
        ]


def inbox_source(settings: Settings) -> SourceOf:
    """The source of a mailbox's INBOX: IMAP when it has an IMAP URL, else the local INBOX of a
    mailbox on the built-in outbox (where the Outbox page puts replies and bounces), else none."""

    def source_of(mailbox: ReadMailbox) -> InboxSource | None:
        if mailbox.imap_url_encrypted is None:
            if mailbox.on_outbox:
                return LocalInbox(inbox_directory(settings.data_dir, mailbox.id))
            return None
        try:
            endpoint = mailbox_imap_endpoint(mailbox.imap_url_encrypted, settings)
        except (SecretUnreadable, Invalid) as exc:
            raise InboxUnavailable(f"cannot use the IMAP URL: {exc}") from None
        return ImapInbox(endpoint, settings.mail_allow_local)

    return source_of


def node_name() -> str:
    """This reader among the nodes sharing the database (at most 64 characters)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class InboxReader:
    """A Service of the background process: reads every mailbox's INBOX it holds the lease of."""

    def __init__(
        self,
        engine: Engine,
        source_of: SourceOf,
        *,
        owner: str | None = None,
        look_seconds: float = LOOK_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        lease_ms: int = LEASE_MS,
        backoff_seconds: Sequence[float] = BACKOFF_SECONDS,
        batch: int = BATCH,
    ) -> None:
        self.engine = engine
        self.source_of = source_of
        self.owner = owner or node_name()
        self.look_seconds = look_seconds
        self.wait_seconds = wait_seconds
        self.lease_ms = lease_ms
        self.backoff_seconds = backoff_seconds
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._readers: dict[str, _MailboxReader] = {}

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> InboxReader:
        return cls(engine, inbox_source(settings))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pixeltrail-inbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for reader in list(self._readers.values()):
            reader.stop.set()
        for reader in list(self._readers.values()):
            # One IDLE may take its few seconds; a reader still in it is left, its lease expires.
            reader.thread.join(self.wait_seconds + 2)

    def look(self) -> None:
        """Start reading the mailboxes newly to read (whose lease this node gets), stop reading
        the ones gone or changed."""
        wanted = {m.id: m for m in mailboxes_to_read(self.engine)}
        for mailbox_id, reader in list(self._readers.items()):
            if not reader.thread.is_alive():
                del self._readers[mailbox_id]
            elif wanted.get(mailbox_id) != reader.mailbox:
                reader.stop.set()
                del self._readers[mailbox_id]
        for mailbox in wanted.values():
            if mailbox.id in self._readers or self._stop.is_set():
                continue
            if mailbox.imap_url_encrypted is None and not mailbox.on_outbox:
                continue
            try:
                self._begin(mailbox)
            except Exception as exc:  # this mailbox waits for the next look; the others go on
                log.warning("mailbox %s: not read for now: %s", mailbox.id, exc)

    def _begin(self, mailbox: ReadMailbox) -> None:
        try:
            source = self.source_of(mailbox)
        except InboxUnavailable as exc:
            if inbox_state.take_lease(self.engine, mailbox.id, self.owner, self.lease_ms):
                inbox_state.failed(self.engine, mailbox.id, self.owner, str(exc), self.lease_ms)
                inbox_state.release_lease(self.engine, mailbox.id, self.owner)
            return
        if source is None:
            return
        if not inbox_state.take_lease(self.engine, mailbox.id, self.owner, self.lease_ms):
            return
        reader = _MailboxReader(self, mailbox, source)
        self._readers[mailbox.id] = reader
        reader.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.look()
            except Exception as exc:
                log.warning("looking for mailboxes to read postponed: %s", exc)
            self._stop.wait(self.look_seconds)


class _MailboxReader:
    """One mailbox's INBOX, read in its own thread while this node holds its lease."""

    def __init__(self, reader: InboxReader, mailbox: ReadMailbox, source: InboxSource) -> None:
        self.reader = reader
        self.mailbox = mailbox
        self.source = source
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"pixeltrail-inbox-{mailbox.id}", daemon=True
        )

    def _run(self) -> None:
        r, box = self.reader, self.mailbox
        failures = 0
        try:
            while not self.stop.is_set() and not r._stop.is_set():
                try:
                    self._read()
                    return
                except LeaseLost:
                    log.info("mailbox %s: read by another node now", box.id)
                    return
                except InboxUnavailable as exc:
                    error = str(exc)
                except Exception as exc:
                    log.exception("mailbox %s: reading its INBOX failed", box.id)
                    error = f"cannot read the INBOX: {type(exc).__name__}"
                finally:
                    self.source.close()
                failures += 1
                pause = r.backoff_seconds[min(failures, len(r.backoff_seconds)) - 1]
                log.warning("mailbox %s: %s (again in %g s)", box.id, error, pause)
                try:
                    inbox_state.failed(r.engine, box.id, r.owner, error, r.lease_ms)
                except Exception as exc:
                    log.warning("mailbox %s: its error not recorded: %s", box.id, exc)
                if self.stop.wait(pause):
                    return
        finally:
            try:
                inbox_state.release_lease(r.engine, box.id, r.owner)
            except Exception as exc:
                log.warning("mailbox %s: lease left to expire: %s", box.id, exc)

    def _read(self) -> None:
        """Open the INBOX and read it until told to stop; raises what ends the reading."""
        r, box = self.reader, self.mailbox
        uid_validity = self.source.open()
        last_uid, before = inbox_state.begin_reading(
            r.engine, box.id, r.owner, uid_validity, r.lease_ms
        )
        if before is not None:
            log.warning(
                "mailbox %s: UIDVALIDITY changed from %d to %d: reading the INBOX from its start",
                box.id,
                before,
                uid_validity,
            )
        written = now_ms()
        while not self.stop.is_set() and not r._stop.is_set():
            last_uid = self._drain(uid_validity, last_uid)
            if now_ms() - written >= min(CHECKED_MS, r.lease_ms // 3):
                inbox_state.checked(r.engine, box.id, r.owner, r.lease_ms)
                written = now_ms()
            self.source.wait(r.wait_seconds)

    def _drain(self, uid_validity: int, last_uid: int) -> int:
        """Record every message after `last_uid`, each in its own transaction; the last UID."""
        r, box = self.reader, self.mailbox
        while not self.stop.is_set():
            fetched = self.source.fetch_after(last_uid, r.batch)
            for message in fetched:
                if message.uid <= last_uid:
                    continue
                inbound = classify_message(message.raw)
                try:
                    with write_transaction(r.engine) as conn:
                        inbox_state.advance(
                            conn, box.id, r.owner, uid_validity, message.uid, r.lease_ms
                        )
                        record_inbound(
                            conn,
                            box.account_id,
                            box.id,
                            uid_validity,
                            message.uid,
                            inbound,
                            message.received_at_ms,
                            now_ms(),
                        )
                except LeaseLost:
                    raise
                except Exception as exc:
                    # Not skipped (it would be lost): tried again with the backoff, and named.
                    log.exception("mailbox %s: message UID %d not recorded", box.id, message.uid)
                    raise InboxUnavailable(
                        f"cannot record the message with UID {message.uid}: {type(exc).__name__}"
                    ) from None
                last_uid = message.uid
            if len(fetched) < r.batch:
                break
        return last_uid
