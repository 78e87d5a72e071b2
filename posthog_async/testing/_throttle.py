"""Per-key rate limits counted the way PostHog's DRF throttles count them.

Each ``(requests, seconds)`` window is its own DRF ``SimpleRateThrottle``: every window sees every
request, a window that allows a request records it even when another window refuses it, and a
refusal waits for the largest of the refusing windows' DRF waits (rounded up).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from ._errors import FakeAPIError

__all__ = ["WindowThrottle", "RateLimiter", "PRODUCTION_LIMITS", "BUCKETS", "parse_windows",
           "throttled"]

Windows = tuple[tuple[int, float], ...]

PRODUCTION_LIMITS: dict[str, Windows] = {
    "persons": ((240, 60.0),),
    "person_deletes": ((480, 60.0), (4800, 3600.0)),
    "general": ((480, 60.0), (4800, 3600.0)),
    # The query API: HogQL (``HogQLQueryThrottle``); other kinds' ``clickhouse_sustained`` hour.
    "hogql": ((120, 3600.0),),
    "queries": ((1200, 3600.0),),
}
"""PostHog's limits per personal API key (``posthog/rate_limit.py``, ``PersonViewSet.get_throttles``):
``persons`` = ``clickhouse_burst`` for every persons call but deletes; ``person_deletes`` =
``persons_delete_burst``/``_sustained``; ``general`` = the default ``burst``/``sustained``
(property definitions, subscriptions, sharing, integrations). ``/api/users/`` is not throttled."""
BUCKETS = frozenset(PRODUCTION_LIMITS)
"""The bucket names the offline server throttles (the keys of ``rate_limits``)."""


class WindowThrottle:
    """One DRF ``SimpleRateThrottle``: a log of request times per key, for one window."""

    def __init__(self, limit: int, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or period <= 0:
            raise ValueError(f"a rate limit window needs requests >= 1 and seconds > 0, got "
                             f"{limit}/{period}")
        self.limit = limit
        self.period = period
        self.clock = clock
        self._history: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float) -> bool:
        log = self._history.setdefault(key, deque())
        while log and log[0] <= now - self.period:
            log.popleft()
        if len(log) >= self.limit:
            return False
        log.append(now)
        return True

    def wait(self, key: str, now: float) -> float | None:
        """DRF's ``wait()``: the oldest request's remaining time, shared among the free slots + 1."""
        log = self._history.get(key) or deque()
        remaining = self.period - (now - log[0]) if log else self.period
        available = self.limit - len(log) + 1
        return remaining / available if available > 0 else None


class RateLimiter:
    """Every bucket's windows; a bucket not configured is not throttled."""

    def __init__(self, limits: Mapping[str, Iterable[tuple[int, float]]] | None, *,
                 retry_after_header: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after_header = retry_after_header
        self.clock = clock
        self.buckets: dict[str, list[WindowThrottle]] = {}
        for name, windows in (limits or {}).items():
            if name not in BUCKETS:
                raise ValueError(f"unknown rate-limit bucket {name!r}; the buckets are "
                                 f"{', '.join(sorted(BUCKETS))} (the old 'crud'/'analytics' are gone)")
            self.buckets[name] = [WindowThrottle(int(n), float(s), clock) for n, s in windows]

    def check(self, bucket: str | None, key: str) -> None:
        """Record the request in every window of ``bucket`` or raise DRF's 429."""
        throttles = self.buckets.get(bucket) if bucket else None
        if not throttles:
            return
        now = self.clock()
        waits = [w.wait(key, now) for w in throttles if not w.allow(key, now)]
        if waits:
            known = [w for w in waits if w is not None]
            raise throttled(math.ceil(max(known)) if known else None, self.retry_after_header)


def throttled(seconds: int | None, retry_after_header: bool = True) -> FakeAPIError:
    """DRF's ``Throttled`` through drf-exceptions-hog 0.4.0 (``Retry-After`` when a wait is known)."""
    detail = "Request was throttled."
    if seconds is not None:
        detail += f" Expected available in {seconds} second{'' if seconds == 1 else 's'}."
    headers = {"Retry-After": str(seconds)} if seconds and retry_after_header else None
    return FakeAPIError(429, "throttled_error", "throttled", detail, headers=headers)


def parse_windows(spec: str) -> Windows:
    """``"60/10,600/3600"`` -> ``((60, 10.0), (600, 3600.0))`` (requests/seconds, comma-separated)."""
    windows = []
    for part in spec.split(","):
        requests, sep, seconds = part.strip().partition("/")
        if not sep:
            raise ValueError(f"rate limit window {part!r} is not REQUESTS/SECONDS")
        windows.append((int(requests), float(seconds)))
    return tuple(windows)
