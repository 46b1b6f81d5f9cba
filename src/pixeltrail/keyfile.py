"""The instance's secret key file: created on first use, readable by its owner only."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import tempfile
from pathlib import Path

KEY_FILE_NAME = "secret.key"


def load_or_create_key(data_dir: Path) -> bytes:
    """The secret in `data_dir/secret.key`, creating it (mode 0600) if there is none.

    Creation is atomic: the key is written to a private temporary file and linked into
    place, so two processes starting together end up with the same key, never half a key.
    """
    path = data_dir / KEY_FILE_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".secret-")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secret + b"\n")
        os.fsync(fd)
        os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return _read(path)


def _read(path: Path) -> bytes:
    secret = path.read_bytes().strip()
    if not secret:
        raise ValueError(f"{path} is empty; delete it to create a new key")
    return secret
