"""The retry decision: what is safe to send again, and how long to wait first.

Kept apart from the transport so it can be tested (and replaced) as a plain object.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from . import _constants as C
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    RateLimitError,
)

__all__ = ["RetryEvent", "RetryHook", "RetryPolicy", "parse_retry_after"]

#: Statuses retried whatever the method: the request was not processed (a throttle, or
#: PostHog's 503 for a database that is briefly unavailable).
RETRY_ALWAYS = frozenset({429, 503})
#: Retried only for idempotent requests: the server, or the app behind a gateway that gave up
#: waiting (502, 504), may have done the work.
RETRY_IF_IDEMPOTENT = frozenset({500, 502, 504})
#: PostHog's 429 for too many queries running at once, sent without ``Retry-After``: no rate
#: window is full, so the bucket is not held back. Older servers show the limiter's own text
#: ("Exceeded maximum concurrency limit: N for key: api:query:per-team:..."), newer ones a
#: friendly one (``CONCURRENCY_LIMIT_USER_MESSAGE`` in ``posthog/api/query.py``).
_CONCURRENCY_LIMIT = re.compile(
    "|".join(map(re.escape, C.QUERY_CONCURRENCY_429_MARKERS)), re.IGNORECASE)


@dataclass(frozen=True)
class RetryEvent:
    """What a retry hook is told before the client sleeps and tries again."""

    method: str
    path: str
    attempt: int  # the attempt that failed, 1-based
    max_attempts: int
    delay: float
    error: APIError


RetryHook = Callable[[RetryEvent], None]
"""``AsyncPostHog(on_retry=...)``: called with a ``RetryEvent`` (what failed, the attempt, the
delay) each time a request is about to be retried."""


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date. ``None`` if absent/bad."""
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter; honours ``Retry-After`` up to ``max_retry_after``."""

    max_retries: int = C.DEFAULT_MAX_RETRIES
    initial: float = C.DEFAULT_BACKOFF_INITIAL
    factor: float = C.DEFAULT_BACKOFF_FACTOR
    max_backoff: float = C.DEFAULT_BACKOFF_MAX
    max_retry_after: float = C.DEFAULT_MAX_RETRY_AFTER
    rng: Callable[[], float] = random.random

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based) when the server gave no hint."""
        ceiling = min(self.max_backoff, self.initial * self.factor ** (attempt - 1))
        return ceiling / 2 + self.rng() * ceiling / 2

    def is_retryable(self, error: APIError, *, idempotent: bool) -> bool:
        if isinstance(error, APIConnectionError):
            # A timeout or a dropped connection may hide a processed request: re-sending a
            # create could duplicate it, so only idempotent calls get that benefit of the doubt.
            return idempotent or not error.maybe_processed
        if isinstance(error, APIStatusError):
            if error.status_code in RETRY_ALWAYS:
                return True
            return idempotent and error.status_code in RETRY_IF_IDEMPOTENT
        return False

    def holds_bucket(self, error: RateLimitError) -> bool:
        """Whether this 429 means a rate window of the call's buckets is full, so that every
        call sharing them must wait it out (the transport holds them back), or is a refusal of
        another kind (PostHog's query concurrency limit): then only this call backs off and
        retries. Override to classify other 429s."""
        return not (error.detail and _CONCURRENCY_LIMIT.search(error.detail))

    def decide(self, error: APIError, *, attempt: int, idempotent: bool,
               max_retries: int | None = None) -> float | None:
        """Seconds to wait before trying again, or ``None`` to raise ``error`` now.

        ``max_retries`` overrides the policy's for one call (``ph.with_options(max_retries=1)``).
        A ``Retry-After`` longer than ``max_retry_after`` is not slept through: the
        :class:`RateLimitError` goes to the caller, who can decide to wait that long.
        """
        budget = self.max_retries if max_retries is None else max_retries
        if attempt > budget or not self.is_retryable(error, idempotent=idempotent):
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            # A little jitter on top so a crowd of tasks does not return in lockstep.
            return error.retry_after + self.rng() * 0.25
        return self.backoff(attempt)
