"""Server-side throttling and fault injection for the fake PostHog."""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ._errors import FakeAPIError

__all__ = ["WindowThrottle", "Faults", "PRODUCTION_LIMITS"]

#: PostHog's per-key limits: category -> ((requests, seconds), ...).
PRODUCTION_LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "crud": ((480, 60.0), (4800, 3600.0)),
    "analytics": ((240, 60.0), (1200, 3600.0)),
}


class WindowThrottle:
    """DRF's ``SimpleRateThrottle``: a log of request times per key, checked in every window."""

    def __init__(self, windows: Sequence[tuple[int, float]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.windows = tuple(windows)
        self.clock = clock
        self._history: dict[str, list[deque[float]]] = {}

    def check(self, key: str) -> None:
        """Record the request or raise a 429 with ``Retry-After``."""
        now = self.clock()
        logs = self._history.get(key)
        if logs is None:
            logs = self._history[key] = [deque() for _ in self.windows]
        wait = 0.0
        for (limit, period), log in zip(self.windows, logs):
            while log and log[0] <= now - period:
                log.popleft()
            if len(log) >= limit:
                wait = max(wait, log[len(log) - limit] + period - now)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise FakeAPIError(
                429, "throttled_error", "throttled",
                f"Request was throttled. Expected available in {seconds} seconds.",
                headers={"Retry-After": str(seconds)},
            )
        for log in logs:
            log.append(now)


@dataclass
class Faults:
    """Seeded random faults. ``error_rate`` of requests get one of ``error_statuses``;
    ``drop_rate`` have their connection closed without an answer; ``latency`` seconds
    are added to every request (plus up to ``jitter``)."""

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    drop_rate: float = 0.0
    latency: float = 0.0
    jitter: float = 0.0
    seed: int = 0
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def delay(self) -> float:
        return self.latency + (self.rng.random() * self.jitter if self.jitter else 0.0)

    def pick(self) -> str | int | None:
        """``"drop"``, an error status, or ``None`` for a normal answer."""
        if self.drop_rate and self.rng.random() < self.drop_rate:
            return "drop"
        if self.error_rate and self.rng.random() < self.error_rate:
            return self.rng.choice(self.error_statuses)
        return None
