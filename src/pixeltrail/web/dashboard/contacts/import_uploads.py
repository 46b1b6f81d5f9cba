"""CSV files kept between the two steps of a contact import: `<data dir>/imports/<id>.csv`.

The upload is saved under a random id (never a name the client gave), readable by this user
only, with a small record of whose it is and the character set chosen for it; it is deleted
after the import, and any upload older than an hour is deleted on the next upload. While its
import runs it carries a `<id>.started` mark: a mark with no import running in this process
means the server stopped during it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from pixeltrail.config import Settings
from pixeltrail.platform.errors import NotFound

KEEP_SECONDS = 3600
_ID = re.compile(r"[A-Za-z0-9_-]{32}")
GONE = "this upload is not here any more (files are kept for an hour): upload the file again"


@dataclass(frozen=True)
class Upload:
    id: str
    account_id: str
    filename: str
    size: int
    created: float
    # The character set chosen in the form (None: UTF-8, or UTF-16 by its byte order mark).
    encoding: str | None = None


def imports_dir(settings: Settings) -> Path:
    return settings.data_dir / "imports"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def save_upload(
    settings: Settings, account_id: str, filename: str, data: bytes, encoding: str | None = None
) -> Upload:
    folder = imports_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    sweep_uploads(settings)
    upload = Upload(
        secrets.token_urlsafe(24), account_id, filename[-200:], len(data), time.time(), encoding
    )
    _write_private(folder / f"{upload.id}.csv", data)
    record = {
        "account_id": account_id,
        "filename": upload.filename,
        "size": upload.size,
        "created": upload.created,
        "encoding": upload.encoding,
    }
    _write_private(folder / f"{upload.id}.json", json.dumps(record).encode())
    return upload


def load_upload(settings: Settings, account_id: str, upload_id: str) -> tuple[Upload, bytes]:
    """The account's upload and its bytes; NotFound for another account's, an expired one or
    anything that is not an id we gave out."""
    if not _ID.fullmatch(upload_id):
        raise NotFound(GONE)
    folder = imports_dir(settings)
    try:
        record = json.loads((folder / f"{upload_id}.json").read_text())
        data = (folder / f"{upload_id}.csv").read_bytes()
    except (OSError, ValueError):
        raise NotFound(GONE) from None
    created = float(record.get("created", 0))
    if time.time() - created > KEEP_SECONDS:
        discard_upload(settings, upload_id)
        raise NotFound(GONE)
    if record.get("account_id") != account_id:
        raise NotFound(GONE)
    encoding = record.get("encoding")
    upload = Upload(
        upload_id,
        account_id,
        str(record.get("filename", "")),
        len(data),
        created,
        encoding if isinstance(encoding, str) else None,
    )
    return upload, data


def discard_upload(settings: Settings, upload_id: str) -> None:
    if not _ID.fullmatch(upload_id):
        return
    for suffix in (".csv", ".json", ".started"):
        with contextlib.suppress(FileNotFoundError):
            (imports_dir(settings) / f"{upload_id}{suffix}").unlink()


def mark_started(settings: Settings, upload_id: str, started: bool = True) -> None:
    """Set (or take away) the mark of an import running from this upload."""
    if not _ID.fullmatch(upload_id):
        return
    path = imports_dir(settings) / f"{upload_id}.started"
    if started:
        path.touch(mode=0o600)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def was_started(settings: Settings, upload_id: str) -> bool:
    if not _ID.fullmatch(upload_id):
        return False
    return (imports_dir(settings) / f"{upload_id}.started").exists()


def sweep_uploads(settings: Settings, now: float | None = None) -> int:
    """Delete uploads older than KEEP_SECONDS; how many were deleted."""
    cutoff = (time.time() if now is None else now) - KEEP_SECONDS
    removed = 0
    try:
        entries = list(imports_dir(settings).iterdir())
    except FileNotFoundError:
        return 0
    for path in entries:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += path.suffix == ".csv"
        except FileNotFoundError:
            continue
    return removed
