"""Sign-in attempts, limited per client address and per email address (in this process)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

WINDOW_S = 15 * 60
PER_ADDRESS = 20
PER_EMAIL = 8


class SignInThrottle:
    """Failed attempts in the last 15 minutes; too many and sign-in answers 429 for a while."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        return times

    def retry_after(self, address: str, email: str) -> int:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in ((f"ip:{address}", PER_ADDRESS), (f"email:{email}", PER_EMAIL)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(int(times[0] + WINDOW_S - now) + 1)
            return max(waits, default=0)

    def failed(self, address: str, email: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"ip:{address}", f"email:{email}"):
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray of addresses
                self._failures.clear()

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._failures.pop(f"email:{email}", None)
