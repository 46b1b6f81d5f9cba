"""Which hosts the tracking routes answer for, and whose links.

The hot path never asks the database: it reads a mapping (served hostname to its account's
token tag) that a background thread replaces every REFRESH_SECONDS (and the API at once after a
change in this process). The last one read is also kept in a file in the data directory, so
links on custom domains keep working when the server starts while the database is down. Another
process that changes the set (the background process's re-checks) rewrites that file, and the
refresher, which looks at it every second, reads the set again at once.

The instance's own names answer every account's links; a tracking domain answers its own
account's and unbound (version 1) ones, so nobody sends people through someone else's domain.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.domains.domains import served_domains
from pixeltrail.platform.domains.hostnames import is_local_name
from pixeltrail.tracking.tokens import ANY_ACCOUNT, account_tag

log = logging.getLogger("pixeltrail.hosts")

REFRESH_SECONDS = 30.0
# Host header values whose answer `allows` keeps (a few are real; the rest is noise).
_MAX_VERDICTS = 256
WATCH_SECONDS = 1.0
# Names a local client uses for the instance (tests, `make run`): the instance too.
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
# The account of a domain read from a cache file of an older version (hostnames only): a tag
# no token carries, so tokens bound to an account wait for the database there; unbound ones
# (every link sent before) are answered as they were.
UNKNOWN_ACCOUNT = b"?"


def host_name(value: str) -> str:
    """The host of a Host header (or a bare name): lowercase, without port or trailing dot."""
    value = value.strip().lower()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class AllowedHosts:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        cache_file: Path | None = None,
        interval: float = REFRESH_SECONDS,
    ) -> None:
        self.engine = engine
        self.cache_file = cache_file
        self.interval = interval
        self.instance_names = frozenset(
            {host_name(settings.instance_host), host_name(settings.cname_host)} - {""}
        )
        self.instance = LOOPBACK | self.instance_names
        self.own_certifiable = frozenset(
            n for n in self.instance_names if n not in LOOPBACK and not _is_ip(n)
        )
        self._cache_seen: tuple[int, int] | None = None
        # Served hostname -> its account's id (None: not known), and -> its token tag.
        self.accounts: Mapping[str, str | None] = self._read_cache()
        self.domains: Mapping[str, bytes] = _tags(self.accounts)
        self._verdicts: tuple[Mapping[str, bytes], dict[bytes | str, bytes | None]] = (
            self.domains,
            {},
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def allows(self, host: bytes | str | None) -> bool:
        """Whether tracking links on `host` (a Host header's value) are answered."""
        return self.served_for(host) is not None

    def served_for(self, host: bytes | str | None) -> bytes | None:
        """Whose tracking links `host` (a Host header's value) answers: None for nobody's,
        ANY_ACCOUNT for everyone's (the instance's own names), else the token tag of the
        account whose tracking domain it is (`LinkClaims.answered_on` takes it).

        A request without Host (HTTP/1.0) can only have been meant for the instance itself.
        """
        if host is None:
            return ANY_ACCOUNT
        # Every tracking request asks about the same few Host values: the answers are kept
        # until the served domains change (bounded: anyone can send any Host).
        domains, verdicts = self._verdicts
        if domains is not self.domains:
            domains, verdicts = self._verdicts = (self.domains, {})
        try:
            return verdicts[host]
        except KeyError:
            pass
        name = host_name(host.decode("latin-1") if isinstance(host, bytes) else host)
        verdict = ANY_ACCOUNT if name in self.instance else domains.get(name)
        if len(verdicts) < _MAX_VERDICTS:
            verdicts[host] = verdict
        return verdict

    def caddy_may_certify(self, query_string: bytes) -> bool:
        """Caddy's on-demand TLS question (`?domain=NAME`): may it get a certificate for NAME?

        Yes for served tracking domains and the instance's own hostname; never for loopback
        names (`.localhost` domains of a local trial included) or anything else, so nobody
        makes Caddy ask a CA for certificates at will.
        """
        asked = parse_qs(query_string.decode("latin-1")).get("domain", [""])[0]
        name = host_name(asked)
        served = name in self.domains and not is_local_name(name)
        return served or name in self.own_certifiable

    def reload(self, force_write: bool = False) -> bool:
        """Read the served tracking domains again; never raises: when the database fails, the
        last known set stays (and the failure is logged once). True when it was read.

        The cache file is written when the set changed, or always with `force_write` (another
        process watching the file then reads the set again)."""
        try:
            with self._lock:
                with self.engine.connect() as conn:
                    accounts = served_domains(conn)
                if accounts != self.accounts or force_write:
                    self.accounts = accounts
                    self.domains = _tags(accounts)
                    self._write_cache(accounts)
        except Exception as exc:
            if not self._failing:
                log.warning("tracking domains not refreshed, serving the last known: %s", exc)
            self._failing = True
            return False
        self._failing = False
        return True

    def start(self) -> None:
        """Refresh in the background, at once and then every `interval` seconds; until the
        first refresh, the set kept in the cache file is served."""
        self._thread = threading.Thread(target=self._run, name="pixeltrail-hosts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        self.reload()
        last = time.monotonic()
        while not self._stop.wait(min(self.interval, WATCH_SECONDS)):
            if time.monotonic() - last >= self.interval or self._cache_changed():
                self.reload()
                last = time.monotonic()

    def _cache_signature(self) -> tuple[int, int] | None:
        if self.cache_file is None:
            return None
        try:
            stat = self.cache_file.stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def _cache_changed(self) -> bool:
        """Whether another process rewrote the cache file since this one last read or wrote it."""
        seen = self._cache_signature()
        changed = seen != self._cache_seen
        self._cache_seen = seen
        return changed and seen is not None

    def _read_cache(self) -> dict[str, str | None]:
        if self.cache_file is None:
            return {}
        self._cache_seen = self._cache_signature()
        try:
            kept = json.loads(self.cache_file.read_text())
            names = kept["hostnames"]
            accounts = kept.get("accounts", {})  # absent in files of older versions
            return {str(n): _text_or_none(accounts.get(n)) for n in names}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.cache_file, exc)
            return {}

    def _write_cache(self, accounts: Mapping[str, str | None]) -> None:
        if self.cache_file is None:
            return
        folder = self.cache_file.parent
        tmp: str | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tracking-hosts-")
            with os.fdopen(fd, "w") as out:
                # "hostnames" as older versions read it; "accounts" beside it.
                json.dump({"hostnames": sorted(accounts), "accounts": dict(accounts)}, out)
            os.replace(tmp, self.cache_file)
            tmp = None
            self._cache_seen = self._cache_signature()
        except OSError as exc:
            log.warning("cannot keep the tracking domains in %s: %s", self.cache_file, exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _tags(accounts: Mapping[str, str | None]) -> dict[str, bytes]:
    return {
        name: UNKNOWN_ACCOUNT if account is None else account_tag(account)
        for name, account in accounts.items()
    }


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
