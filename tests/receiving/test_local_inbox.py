"""The built-in outbox's INBOX folder read as an IMAP INBOX: UIDs ascending and never handed out
twice, a fixed UIDVALIDITY, whole messages only (a half-written file is never read), and a wait
that comes back when something arrives."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pixeltrail.inbound import MAX_READ_BYTES
from pixeltrail.platform.mail.local_inbox import deliver, inbox_directory, uid_validity, uids
from pixeltrail.receiving.local_inbox import LocalInbox
from pixeltrail.receiving.sources import InboxSource, InboxUnavailable


def _message(n: int) -> bytes:
    return f"From: c{n}@example.com\r\nSubject: Re: hello {n}\r\n\r\nanswer {n}\r\n".encode()


def test_messages_come_in_uid_order_after_the_last_one_read(tmp_path: Path) -> None:
    folder = inbox_directory(tmp_path, "mbx_one")
    inbox: InboxSource = LocalInbox(folder)
    validity = inbox.open()
    assert folder.is_dir() and validity > 0
    assert [deliver(folder, _message(n)) for n in range(1, 6)] == [1, 2, 3, 4, 5]
    first = inbox.fetch_after(0, 3)
    assert [m.uid for m in first] == [1, 2, 3]
    assert first[0].raw == _message(1)
    assert abs(first[0].received_at_ms - time.time() * 1000) < 60_000
    rest = inbox.fetch_after(first[-1].uid, 3)
    assert [(m.uid, m.raw) for m in rest] == [(4, _message(4)), (5, _message(5))]
    assert inbox.fetch_after(5, 10) == []
    inbox.close()


def test_uidvalidity_is_made_once_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "inbox" / "mbx_two"
    validity = LocalInbox(folder).open()
    deliver(folder, _message(1))
    assert LocalInbox(folder).open() == validity == uid_validity(folder)
    # Another folder made later gets its own (never smaller: a fresh folder means re-reading).
    assert LocalInbox(tmp_path / "inbox" / "mbx_three").open() >= validity


def test_a_broken_uidvalidity_file_makes_the_inbox_unavailable_not_renumbered(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "box"
    folder.mkdir()
    (folder / "uidvalidity").write_bytes(b"not a number\n")
    with pytest.raises(InboxUnavailable, match="UIDVALIDITY"):
        LocalInbox(folder).open()
    assert (folder / "uidvalidity").read_bytes() == b"not a number\n"


def test_writers_at_the_same_time_never_share_a_uid(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda n: (deliver(folder, _message(n)), n), range(200)))
    assert sorted(uid for uid, _n in taken) == list(range(1, 201))
    inbox = LocalInbox(folder)
    inbox.open()
    read = inbox.fetch_after(0, 500)
    assert {m.uid: m.raw for m in read} == {uid: _message(n) for uid, n in taken}
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_nothing_is_returned_twice_while_messages_keep_arriving(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    inbox = LocalInbox(folder, poll_seconds=0.01)
    inbox.open()
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set() and n < 300:
            deliver(folder, _message(n))
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(seen) < 300:
            batch = inbox.fetch_after(seen[-1] if seen else 0, 7)
            seen.extend(m.uid for m in batch)
            if not batch:
                inbox.wait(0.05)
    finally:
        stop.set()
        writer.join()
    assert seen == list(range(1, 301))


def test_a_half_written_message_is_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    inbox = LocalInbox(folder)
    inbox.open()
    # What a writer has made so far: its temporary file, half the message in it.
    (folder / ".incoming-abc123").write_bytes(_message(1)[:20])
    (folder / "7.eml.tmp").write_bytes(b"From: x")
    (folder / "notes.txt").write_bytes(b"From: x")
    assert inbox.fetch_after(0, 10) == []
    assert deliver(folder, _message(2)) == 1
    (got,) = inbox.fetch_after(0, 10)
    assert got.raw == _message(2)


def test_a_file_that_is_not_a_message_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    inbox = LocalInbox(folder)
    inbox.open()
    secret = tmp_path / "secret"
    secret.write_bytes(b"password")
    os.symlink(secret, folder / "1.eml")  # a link put there is not followed
    (folder / "2.eml").mkdir()
    (folder / "007.eml").write_bytes(_message(7))  # not a name the writer makes
    (folder / "99999999999.eml").write_bytes(_message(9))  # past IMAP's 32-bit UIDs
    assert deliver(folder, _message(3)) == 3
    assert [(m.uid, m.raw) for m in inbox.fetch_after(0, 10)] == [(3, _message(3))]
    assert uids(folder) == [1, 2, 3]


def test_a_huge_message_is_read_only_as_far_as_it_is_classified(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    inbox = LocalInbox(folder)
    inbox.open()
    deliver(folder, _message(1) + b"x" * (MAX_READ_BYTES + 5000))
    (got,) = inbox.fetch_after(0, 1)
    assert len(got.raw) == MAX_READ_BYTES + 1  # enough for the classifier to see it is cut


def test_wait_comes_back_when_a_message_arrives(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    inbox = LocalInbox(folder, poll_seconds=0.02)
    inbox.open()
    started = time.monotonic()
    inbox.wait(0.3)  # nothing: the whole timeout
    assert time.monotonic() - started >= 0.29
    timer = threading.Timer(0.2, lambda: deliver(folder, _message(1)))
    timer.start()
    started = time.monotonic()
    inbox.wait(10)
    timer.join()
    assert time.monotonic() - started < 5
    assert [m.uid for m in inbox.fetch_after(0, 5)] == [1]
    started = time.monotonic()
    inbox.wait(0.2)  # what is there has been fetched: nothing new, so the whole timeout
    assert time.monotonic() - started >= 0.19


def test_a_gap_in_the_uids_is_stepped_over(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    inbox = LocalInbox(folder)
    inbox.open()
    deliver(folder, _message(1))
    deliver(folder, _message(2))
    (folder / "5.eml").write_bytes(_message(5))  # 3 and 4 gone (removed by hand)
    (folder / "9.eml").write_bytes(_message(9))
    assert [m.uid for m in inbox.fetch_after(0, 10)] == [1, 2, 5, 9]
    assert [m.uid for m in inbox.fetch_after(2, 1)] == [5]
    assert [m.uid for m in inbox.fetch_after(5, 1)] == [9]
    assert inbox.fetch_after(9, 10) == []
    assert deliver(folder, _message(10)) == 10  # after the highest: never below one read
