"""What the reader reads from: an INBOX, by UID, never changing it (IMAP or a local folder)."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Fetched(NamedTuple):
    uid: int
    raw: bytes  # at most inbound.classify's read cap is looked at
    received_at_ms: int  # INTERNALDATE (IMAP) or file time (local)


class InboxUnavailable(Exception):
    """The INBOX cannot be read now, said for the mailbox's owner ("cannot log in: ...",
    "cannot connect: ..."); never holds a password."""


class InboxSource(Protocol):
    def open(self) -> int:
        """Connect, log in, select INBOX (read-only): its UIDVALIDITY."""
        ...

    def fetch_after(self, last_uid: int, limit: int) -> list[Fetched]:
        """At most `limit` messages with UID > last_uid, ascending, read without marking them."""
        ...

    def wait(self, timeout_s: float) -> None:
        """Until something may have arrived (IDLE) or `timeout_s` has passed."""
        ...

    def close(self) -> None: ...
