"""The INBOX of a mailbox on the built-in outbox, read from its folder as an IMAP INBOX is read.

The folder's format and its writer are in platform/mail/local_inbox.py (the dashboard puts
replies and bounces there). Reading is read-only: files are never moved, changed or deleted.
"""

from __future__ import annotations

import bisect
import os
import stat
import time
from pathlib import Path

from pixeltrail.inbound import MAX_READ_BYTES
from pixeltrail.platform.mail.local_inbox import LocalInboxError, uid_validity, uids
from pixeltrail.receiving.sources import Fetched, InboxUnavailable

POLL_SECONDS = 0.2


class LocalInbox:
    """An InboxSource (receiving/sources.py) over `directory`, a folder of `<uid>.eml` files."""

    def __init__(self, directory: Path, poll_seconds: float = POLL_SECONDS) -> None:
        self.directory = directory
        self.poll_seconds = poll_seconds
        self._seen = 0  # the highest UID returned or known at open: `wait` looks for more

    def open(self) -> int:
        try:
            validity = uid_validity(self.directory)  # makes the folder and its UIDVALIDITY
        except (LocalInboxError, OSError) as exc:
            raise InboxUnavailable(f"cannot read the local inbox: {exc}") from None
        self._seen = max(uids(self.directory), default=0)
        return validity

    def fetch_after(self, last_uid: int, limit: int) -> list[Fetched]:
        """UIDs are given out one after the other, so the next file is opened by its name; the
        folder is listed only where one is missing (the end, or a gap), not for every batch."""
        found: list[Fetched] = []
        uid = last_uid + 1
        listed: list[int] | None = None
        while len(found) < limit:
            fetched = self._read(uid)
            if fetched is not None:
                found.append(fetched)
            elif not os.path.lexists(self.directory / f"{uid}.eml"):
                listed = uids(self.directory) if listed is None else listed
                following = bisect.bisect_right(listed, uid)
                if following == len(listed):
                    break
                uid = listed[following]
                continue
            uid += 1
        if found:
            self._seen = max(self._seen, found[-1].uid)
        return found

    def wait(self, timeout_s: float) -> None:
        """Back at once when a message above what was fetched is there, else after a poll finds
        one or `timeout_s` has passed."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        changed = -1
        while True:
            try:
                mtime = os.stat(self.directory).st_mtime_ns
            except FileNotFoundError:
                mtime = 0
            # Listing a large folder costs more than a stat: only when the folder changed.
            if mtime != changed:
                changed = mtime
                if max(uids(self.directory), default=0) > self._seen:
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(self.poll_seconds, left))

    def close(self) -> None:
        return None

    def _read(self, uid: int) -> Fetched | None:
        """The message's first bytes (as much as classifying reads) and its file time; None when
        the name is not a regular file (a link or a folder put there is not a message)."""
        path = self.directory / f"{uid}.eml"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # gone, or a symbolic link (O_NOFOLLOW)
            return None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return None
        with os.fdopen(fd, "rb") as f:
            raw = f.read(MAX_READ_BYTES + 1)
        return Fetched(uid=uid, raw=raw, received_at_ms=info.st_mtime_ns // 1_000_000)
