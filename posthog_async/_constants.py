"""Every default of the client in one place, so a reviewer can see them at a glance."""

from __future__ import annotations

ENV_API_KEY = "POSTHOG_PERSONAL_API_KEY"
ENV_HOST = "POSTHOG_HOST"
ENV_PROJECT_ID = "POSTHOG_PROJECT_ID"
ENV_REDIS_URL = "POSTHOG_ASYNC_REDIS_URL"

DEFAULT_HOST = "https://us.posthog.com"

#: Total time for one HTTP attempt (connect + send + read), in seconds.
DEFAULT_TIMEOUT = 30.0
#: Bound on a whole call (slot, pacing, attempts, backoff), in seconds; ``None``: unbounded.
DEFAULT_DEADLINE: float | None = None
#: The longest wait for a rate-limit bucket before a call is refused at once
#: (``RateLimitWaitError``, for load shedding); ``None``: wait as long as pacing needs.
DEFAULT_MAX_WAIT: float | None = None
#: An attempt abandoned by its timeout, its deadline or a cancellation keeps its connection
#: and its concurrency slot until the server answers, so that the server never works on more
#: than ``max_concurrency`` of our requests; after this many seconds it is closed anyway.
ABANDONED_ATTEMPT_LIMIT = 60.0
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
#: The longest ``Retry-After`` we sleep through; a longer one is raised to the caller
#: (PostHog's hourly windows can ask for up to an hour; the deletion job waits those out).
DEFAULT_MAX_RETRY_AFTER = 120.0

#: PostHog's per-key throttles (``posthog/rate_limit.py``, ``PersonViewSet.get_throttles``), as
#: (requests, seconds) windows per bucket. Every persons call except deletes shares one
#: ``clickhouse_burst`` bucket with no hourly window; person deletes have their own pair; other
#: endpoints share ``burst`` + ``sustained``; ``/api/users/`` has no per-key throttle.
PERSONS_RATE_WINDOWS: tuple[tuple[int, float], ...] = ((240, 60.0),)
PERSON_DELETES_RATE_WINDOWS: tuple[tuple[int, float], ...] = ((480, 60.0), (4800, 3600.0))
GENERAL_RATE_WINDOWS: tuple[tuple[int, float], ...] = ((480, 60.0), (4800, 3600.0))
USERS_RATE_WINDOWS: tuple[tuple[int, float], ...] = ()
#: Added to every window's period so clock skew and latency jitter do not tip us over.
RATE_SAFETY_MARGIN = 0.02

#: Server-side caps on one call (``posthog/api/person.py``): bulk_delete refuses more than 1000
#: ids; both batch lookups silently keep only the first 200.
MAX_BULK_DELETE_IDS = 1000
MAX_BATCH_DISTINCT_IDS = 200
MAX_BATCH_UUIDS = 200
#: ``$unset`` in delete_property takes one key or a list of up to 1000.
MAX_UNSET_KEYS = 1000
#: The persons list silently ends pagination above its row cap; keep pages well below it.
MAX_PERSONS_PAGE_LIMIT = 1000
#: Page size ``async for`` asks for when the caller gave no ``limit`` (fewer calls of the budget).
ITERATION_PAGE_LIMIT = 1000
#: PostHog stores distinct ids in a ``CharField(max_length=400)``: longer ones cannot exist.
MAX_DISTINCT_ID_LENGTH = 400
#: Batch lookups show at most this many of a person's distinct ids (``MinimalPersonSerializer``):
#: a person showing this many may have more that no lookup names.
MAX_LOOKUP_DISTINCT_IDS = 10

USER_AGENT = "posthog-async-client"
