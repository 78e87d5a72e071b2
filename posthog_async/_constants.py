"""Every default of the client in one place, so a reviewer can see them at a glance."""

from __future__ import annotations

ENV_API_KEY = "POSTHOG_PERSONAL_API_KEY"
ENV_HOST = "POSTHOG_HOST"
ENV_PROJECT_ID = "POSTHOG_PROJECT_ID"

DEFAULT_HOST = "https://us.posthog.com"

#: Total time for one HTTP attempt (connect + send + read), in seconds.
DEFAULT_TIMEOUT = 30.0
#: Open TCP connections kept in the pool.
DEFAULT_MAX_CONNECTIONS = 32
#: Requests in flight at once, across the client and all its scoped views.
DEFAULT_MAX_CONCURRENCY = 8
#: Retries after the first attempt.
DEFAULT_MAX_RETRIES = 5
#: Backoff: first delay, growth factor and ceiling (seconds); full jitter is applied.
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_FACTOR = 2.0
DEFAULT_BACKOFF_MAX = 30.0
#: The longest ``Retry-After`` we sleep through; a longer one is raised to the caller.
DEFAULT_MAX_RETRY_AFTER = 120.0

#: PostHog's per-key limits (``posthog/rate_limit.py``): (requests, seconds) windows per category.
CRUD_RATE_WINDOWS: tuple[tuple[int, float], ...] = ((480, 60.0), (4800, 3600.0))
ANALYTICS_RATE_WINDOWS: tuple[tuple[int, float], ...] = ((240, 60.0), (1200, 3600.0))
#: Added to every window's period so clock skew and latency jitter do not tip us over.
RATE_SAFETY_MARGIN = 0.02

#: Server-side caps on one call.
MAX_BULK_DELETE_IDS = 1000
MAX_BATCH_DISTINCT_IDS = 200
MAX_BATCH_UUIDS = 1000

DEFAULT_PAGE_LIMIT = 100
USER_AGENT = "posthog-async-client"
