"""The INBOX reader against a real Dovecot and real databases: each message recorded once,
whatever happens to the connection, the process or the number of nodes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from pixeltrail.config import Settings
from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.platform.mail.mailboxes import create_mailbox, get_mailbox
from pixeltrail.receiving.imap_inbox import ImapInbox
from pixeltrail.receiving.reader import InboxReader, ReadMailbox, inbox_source
from pixeltrail.receiving.sources import InboxSource
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import inbound_messages, mailbox_inboxes
from tests.api.conftest import make_settings
from tests.dbs import DATABASES, Database, fresh_database
from tests.inbound.imap_server import ImapServer
from tests.receiving.conftest import imaps_url, message
from tests.receiving.test_imap_inbox import flags


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        database.migrated()
        yield database


@dataclass
class Setup:
    engine: Engine
    settings: Settings
    account_id: str
    mailbox_id: str
    server: ImapServer

    def reader(self, owner: str, **options: float) -> InboxReader:
        """A reader trusting the test server's certificate, quick to notice and retry."""
        default = inbox_source(self.settings)

        def source_of(mailbox: ReadMailbox) -> InboxSource | None:
            source = default(mailbox)
            if isinstance(source, ImapInbox):
                return ImapInbox(source.endpoint, True, self.server.tls_context())
            return source

        timing = {"look_seconds": 0.2, "wait_seconds": 1.0, "backoff_seconds": (0.5,)}
        return InboxReader(self.engine, source_of, owner=owner, **(timing | options))  # type: ignore[arg-type]

    def recorded(self) -> list[tuple[int, int, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    inbound_messages.c.uid_validity,
                    inbound_messages.c.uid,
                    inbound_messages.c.subject,
                ).order_by(inbound_messages.c.uid_validity, inbound_messages.c.uid)
            )
            return [(r.uid_validity, r.uid, r.subject) for r in rows]

    def error(self) -> str | None:
        with write_transaction(self.engine) as conn:
            found = get_mailbox(conn, self.account_id, self.mailbox_id, self.settings)
        return found.imap_url_error


@pytest.fixture
def setup(database: Database, tmp_path: Path, imap_server: ImapServer) -> Setup:
    settings = make_settings(tmp_path, database.url, PIXELTRAIL_MAIL_ALLOW_LOCAL="1")
    with write_transaction(database.engine) as conn:
        account, _ = create_account(conn, "Acme", "ana@acme.example")
        mailbox = create_mailbox(
            conn,
            account.id,
            settings,
            name="Sales",
            from_email="ana@acme.example",
            imap_url=imaps_url(imap_server),
        )
    return Setup(database.engine, settings, account.id, mailbox.id, imap_server)


def eventually(check: Callable[[], object], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.05)


def test_a_new_message_is_recorded_once_across_a_restart(setup: Setup) -> None:
    setup.server.deliver(message("before start"))
    reader = setup.reader("node-a")
    reader.start()
    try:
        eventually(lambda: len(setup.recorded()) == 1)
        started = time.monotonic()
        setup.server.deliver(message("while reading"))
        eventually(lambda: len(setup.recorded()) == 2)
        assert time.monotonic() - started < 10  # IDLE: at once, far inside the minute
    finally:
        reader.stop()
    setup.server.deliver(message("while stopped"))
    again = setup.reader("node-a-restarted")
    again.start()
    try:
        eventually(lambda: len(setup.recorded()) == 3)
        time.sleep(1.5)  # another round of reading finds nothing new
    finally:
        again.stop()
    validity = setup.server.uid_validity()
    assert setup.recorded() == [
        (validity, 1, "before start"),
        (validity, 2, "while reading"),
        (validity, 3, "while stopped"),
    ]
    assert flags(setup.server) == [(), (), ()]  # still unread on the server
    assert setup.error() is None


def test_two_readers_on_one_database_read_a_mailbox_once(setup: Setup) -> None:
    readers = [setup.reader("node-a"), setup.reader("node-b")]
    for reader in readers:
        reader.start()
    try:
        for n in range(5):
            setup.server.deliver(message(f"message {n}"))
        eventually(lambda: len(setup.recorded()) == 5)
        time.sleep(1.5)
        reading = [reader.owner for reader in readers if reader._readers]
        assert len(reading) == 1
        with setup.engine.connect() as conn:
            owner = conn.execute(select(mailbox_inboxes.c.lease_owner)).scalar_one()
        assert reading == [owner]
    finally:
        for reader in readers:
            reader.stop()
    assert [row[2] for row in setup.recorded()] == [f"message {n}" for n in range(5)]


def test_a_node_that_stops_leaves_the_mailbox_to_another(setup: Setup) -> None:
    first = setup.reader("node-a")
    first.start()
    eventually(lambda: first._readers)
    second = setup.reader("node-b")
    second.start()
    try:
        first.stop()  # its lease is given back: node-b reads on
        setup.server.deliver(message("after the handover"))
        eventually(lambda: len(setup.recorded()) == 1)
        assert second._readers
    finally:
        second.stop()


def test_a_dropped_connection_is_an_error_then_recovered_nothing_lost(setup: Setup) -> None:
    reader = setup.reader("node-a", backoff_seconds=(2.0,))  # type: ignore[arg-type]
    reader.start()
    try:
        setup.server.deliver(message("first"))
        eventually(lambda: len(setup.recorded()) == 1)
        setup.server.drop_connections()
        setup.server.deliver(message("during the outage"))
        eventually(lambda: (setup.error() or "").startswith("connection lost: "))
        eventually(lambda: len(setup.recorded()) == 2)
        eventually(lambda: setup.error() is None)
    finally:
        reader.stop()
    assert [row[2] for row in setup.recorded()] == ["first", "during the outage"]


def test_a_new_uidvalidity_is_read_from_its_start(setup: Setup) -> None:
    setup.server.deliver(message("old"))
    reader = setup.reader("node-a")
    reader.start()
    try:
        eventually(lambda: len(setup.recorded()) == 1)
        old = setup.server.uid_validity()
        new = setup.server.set_uid_validity()  # as when the mailbox is restored
        setup.server.drop_connections()
        setup.server.deliver(message("new"))
        eventually(lambda: len(setup.recorded()) == 3)
    finally:
        reader.stop()
    # The new UIDVALIDITY voids the old UIDs: its messages are read from UID 1, kept apart.
    assert setup.recorded() == [(old, 1, "old"), (new, 1, "old"), (new, 2, "new")]
    with setup.engine.connect() as conn:
        state = conn.execute(select(mailbox_inboxes.c.uid_validity, mailbox_inboxes.c.last_uid))
        assert state.one() == (new, 2)


def test_a_wrong_password_is_shown_as_the_mailbox_error(setup: Setup) -> None:
    from pixeltrail.platform.mail.mailboxes import update_mailbox

    with write_transaction(setup.engine) as conn:
        update_mailbox(
            conn,
            setup.account_id,
            setup.mailbox_id,
            setup.settings,
            {"imap_url": imaps_url(setup.server, "not the password")},
        )
    setup.server.deliver(message("unread"))
    reader = setup.reader("node-a")
    reader.start()
    try:
        eventually(lambda: (setup.error() or "").startswith("cannot log in: "))
    finally:
        reader.stop()
    assert "not the password" not in (setup.error() or "")
    assert setup.recorded() == []
    with setup.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbound_messages)).scalar() == 0


def test_the_background_process_reads_inboxes(setup: Setup) -> None:
    import threading

    from pixeltrail.platform.mail.mailboxes import update_mailbox
    from pixeltrail.runtime.background_process import Background

    server = setup.server
    user, secret = server.user.replace("@", "%40"), server.password.replace(" ", "%20")
    plain = f"imap://{user}:{secret}@127.0.0.1:{server.port}?starttls=off"
    with write_transaction(setup.engine) as conn:
        update_mailbox(
            conn, setup.account_id, setup.mailbox_id, setup.settings, {"imap_url": plain}
        )
    server.deliver(message("to the background"))
    stop = threading.Event()
    background = Background(setup.settings, setup.engine)
    running = threading.Thread(target=background.run, args=(stop,))
    running.start()
    try:
        eventually(lambda: len(setup.recorded()) == 1, seconds=30)
    finally:
        stop.set()
        running.join(30)
    assert not running.is_alive()
    assert [row[2] for row in setup.recorded()] == ["to the background"]


def test_a_mailbox_whose_inbox_was_read_stays_as_the_record(setup: Setup) -> None:
    from pixeltrail.platform.errors import Conflict
    from pixeltrail.platform.mail.mailboxes import delete_mailbox

    setup.server.deliver(message("kept"))
    reader = setup.reader("node-a")
    reader.start()
    try:
        eventually(lambda: len(setup.recorded()) == 1)
    finally:
        reader.stop()
    with (
        pytest.raises(Conflict, match="replies or bounces were read from its INBOX"),
        write_transaction(setup.engine) as conn,
    ):
        delete_mailbox(conn, setup.account_id, setup.mailbox_id)
    assert len(setup.recorded()) == 1


def test_a_mailbox_that_cannot_be_opened_holds_up_no_other(setup: Setup) -> None:
    with write_transaction(setup.engine) as conn:
        broken = create_mailbox(
            conn,
            setup.account_id,
            setup.settings,
            name="Broken",
            from_email="bob@acme.example",
            imap_url=imaps_url(setup.server),
        )
    working = setup.reader("node-a")
    inner = working.source_of

    def source_of(mailbox: ReadMailbox) -> InboxSource | None:
        if mailbox.id == broken.id:
            raise RuntimeError("a source that fails in a way nobody foresaw")
        return inner(mailbox)

    working.source_of = source_of
    setup.server.deliver(message("still read"))
    working.start()
    try:
        eventually(lambda: len(setup.recorded()) == 1)
    finally:
        working.stop()
    assert list(working._readers) == [setup.mailbox_id]


def test_hostile_messages_are_recorded_and_reading_goes_on(setup: Setup) -> None:
    setup.server.deliver(
        b"Subject: nul\x00 inside\r\nFrom: \xff\xfe<x@\x00>\r\n\r\n\x00\x00body\r\n"
    )
    setup.server.deliver(b"From: a@b.example\r\nSubject: big\r\n\r\n" + b"A" * 3_000_000 + b"\r\n")
    setup.server.deliver(message("after them"))
    reader = setup.reader("node-a")
    reader.start()
    try:
        eventually(lambda: len(setup.recorded()) == 3, seconds=30)
    finally:
        reader.stop()
    subjects = [row[2] for row in setup.recorded()]
    assert subjects[1:] == ["big", "after them"]
    assert "\x00" not in subjects[0]
    assert setup.error() is None


def test_a_message_that_cannot_be_recorded_is_named_and_tried_again(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixeltrail.platform.inbox.recording import record_inbound as real
    from pixeltrail.receiving import reader as reader_module

    calls: list[int] = []

    def failing_once(*args: object, **kwargs: object) -> str | None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database refused it this once")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reader_module, "record_inbound", failing_once)
    setup.server.deliver(message("second try"))
    reader = setup.reader("node-a", backoff_seconds=(2.0,))  # type: ignore[arg-type]
    reader.start()
    try:
        eventually(lambda: setup.error() == "cannot record the message with UID 1: RuntimeError")
        eventually(lambda: len(setup.recorded()) == 1)
        eventually(lambda: setup.error() is None)
    finally:
        reader.stop()
    assert [row[2] for row in setup.recorded()] == ["second try"]
