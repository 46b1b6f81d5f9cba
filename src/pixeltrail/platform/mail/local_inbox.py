"""The built-in outbox's INBOX on disk: a folder per mailbox, one file per message.

`<data dir>/inbox/<mailbox id>/<uid>.eml`. A message is written whole to a hidden temporary file
first and then linked to its name, which fails rather than replace a file already there: a
reader never sees half a message, and two writers never take the same UID (the later one takes
the next). UIDs only grow while files are only added. The folder's UIDVALIDITY, made once, is
in the file `uidvalidity`: the reader keeps its place per (UIDVALIDITY, UID), as over IMAP.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

UID_NAME = re.compile(r"([1-9][0-9]{0,9})\.eml")
VALIDITY_FILE = "uidvalidity"
_MAX_UID = 2**32 - 1  # IMAP's UIDs and UIDVALIDITY are 32-bit numbers


class LocalInboxError(Exception):
    """The folder cannot be used as an INBOX (an unreadable UIDVALIDITY, no room for a UID)."""


def inbox_directory(data_dir: Path, mailbox_id: str) -> Path:
    """The local INBOX of a mailbox on the built-in outbox."""
    return data_dir / "inbox" / mailbox_id


def uid_of(name: str) -> int | None:
    """The UID a file name holds, or None for any other file (temporary files, the UIDVALIDITY)."""
    found = UID_NAME.fullmatch(name)
    if found is None:
        return None
    uid = int(found.group(1))
    return uid if uid <= _MAX_UID else None


def uids(directory: Path) -> list[int]:
    """The UIDs in the folder, ascending (none when it does not exist yet)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(uid for uid in map(uid_of, names) if uid is not None)


def uid_validity(directory: Path) -> int:
    """The folder's UIDVALIDITY, made (with the folder) the first time it is asked for."""
    path = directory / VALIDITY_FILE
    try:
        return _read_validity(path)
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    # Seconds since 2020: a new folder in the same place gets a greater one, as IMAP advises.
    validity = (int(time.time()) - 1_577_836_800) % _MAX_UID + 1
    # Made at the same moment by another process: theirs stands.
    with contextlib.suppress(FileExistsError):
        _link_new(directory, f"{validity}\n".encode("ascii"), path)
    return _read_validity(path)


def _read_validity(path: Path) -> int:
    text = path.read_bytes()[:32].decode("ascii", "replace").strip()
    if not text.isdigit() or not 0 < int(text) <= _MAX_UID:
        raise LocalInboxError(f"{path.name} of the local inbox does not hold a UIDVALIDITY")
    return int(text)


def deliver(directory: Path, raw: bytes) -> int:
    """Put one message in the folder; its UID, greater than every UID there."""
    uid_validity(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        for _attempt in range(1000):
            uid = max(uids(directory), default=0) + 1
            if uid > _MAX_UID:
                raise LocalInboxError("the local inbox has no UID left")
            try:
                os.link(tmp, directory / f"{uid}.eml")
            except FileExistsError:  # another writer took it between the listing and now
                continue
            return uid
        raise LocalInboxError("the local inbox is too busy to take a message")
    finally:
        os.unlink(tmp)


def _link_new(directory: Path, data: bytes, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.link(tmp, target)
    finally:
        os.unlink(tmp)
