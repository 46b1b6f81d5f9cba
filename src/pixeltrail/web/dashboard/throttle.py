"""Failed sign-ins, counted per client, per email and client, and per email (in this process)."""

from __future__ import annotations

import bisect
import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    failures: int
    window_s: float


# One client guessing one email is stopped soon; its owner, elsewhere, is not stopped with it.
PER_EMAIL_AND_CLIENT = Limit(8, 15 * 60)
# One client trying many emails.
PER_CLIENT = Limit(20, 15 * 60)
# Many clients guessing one email: at most 2,400 guesses a day, and it takes at least 13
# clients (8 failures each) to reach, which a person mistyping never does.
PER_EMAIL = Limit(100, 60 * 60)
# Counters kept below their limit, and counters at it, each at most this many.
SIZE = 100_000

Key = tuple[str, ...]


def client_of(address: str) -> str:
    """Whom failures are counted for: an IPv4 address, or an IPv6 address's /64 (what one
    customer usually holds; counting each of its addresses would give it 2^64 fresh starts)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), 64), strict=False))
    return str(ip)


class SignInThrottle:
    """Failed attempts within each limit's window; at a limit, sign-in answers 429 for a while.

    Memory is bounded: past `size` counters, the least recently failed counter is forgotten.
    A counter at its limit (a lock) is kept in a table of its own, which a spray of fresh
    addresses or emails does not touch; only `size` newer locks push the oldest one out.
    """

    def __init__(self, size: int = SIZE, clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._clock = clock
        # Failure times, oldest first. Below the limit: least recently failed first.
        self._counting: OrderedDict[Key, list[float]] = OrderedDict()
        # At the limit: the oldest lock first.
        self._locked: OrderedDict[Key, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._counting) + len(self._locked)

    @staticmethod
    def _limits(address: str, email: str) -> list[tuple[Key, Limit]]:
        client = client_of(address)
        return [
            (("email+client", email, client), PER_EMAIL_AND_CLIENT),
            (("client", client), PER_CLIENT),
            (("email", email), PER_EMAIL),
        ]

    def _recent(self, key: Key, limit: Limit, now: float) -> list[float] | None:
        """The key's failures within its window; None (and the key forgotten) if none is."""
        table = self._locked if key in self._locked else self._counting
        times = table.get(key)
        if times is None:
            return None
        del times[: bisect.bisect_right(times, now - limit.window_s)]
        if not times:
            del table[key]
            return None
        if table is self._locked and len(times) < limit.failures:  # the lock is over
            del self._locked[key]
            self._counting[key] = times
        return times

    def _trim(self) -> None:
        for table in (self._counting, self._locked):
            while len(table) > self._size:
                table.popitem(last=False)

    def retry_after(self, address: str, email: str) -> int:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        now = self._clock()
        with self._lock:
            wait = self._wait(address, email, now)
            self._trim()
            return wait

    def admit(self, address: str, email: str) -> tuple[int, float]:
        """(seconds to wait, 0) when an attempt is not allowed now; else (0, its time), the
        attempt already counted as a failure until `succeeded` forgives it. Checking and
        counting at once means attempts sent in parallel cannot all pass the check before
        any of them is counted: at most a limit's number of passwords are ever tried."""
        now = self._clock()
        with self._lock:
            wait = self._wait(address, email, now)
            if not wait:
                self._record(address, email, now)
            self._trim()
            return wait, now

    def failed(self, address: str, email: str) -> None:
        now = self._clock()
        with self._lock:
            self._record(address, email, now)
            self._trim()

    def succeeded(self, address: str, email: str, admitted_at: float | None = None) -> None:
        """The email's failures from this client are forgiven; those from elsewhere are not.
        The attempt admitted at `admitted_at` no longer counts against the client or the email."""
        client = client_of(address)
        key = ("email+client", email, client)
        with self._lock:
            self._counting.pop(key, None)
            self._locked.pop(key, None)
            if admitted_at is None:
                return
            for other in (("client", client), ("email", email)):
                times = self._counting.get(other) or self._locked.get(other)
                if times and admitted_at in times:
                    times.remove(admitted_at)

    def _wait(self, address: str, email: str, now: float) -> int:
        waits = [0]
        for key, limit in self._limits(address, email):
            times = self._recent(key, limit, now)
            if times is not None and len(times) >= limit.failures:
                # Allowed again once fewer than `failures` are within the window.
                waits.append(int(times[-limit.failures] + limit.window_s - now) + 1)
        return max(waits)

    def _record(self, address: str, email: str, now: float) -> None:
        for key, limit in self._limits(address, email):
            times = self._recent(key, limit, now)
            if times is None:
                times = self._counting[key] = []
            times.append(now)
            del times[: -limit.failures]  # attempts racing past a lock add nothing
            if len(times) < limit.failures:
                self._counting.move_to_end(key)
            elif key not in self._locked:
                del self._counting[key]
                self._locked[key] = times
