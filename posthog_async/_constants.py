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
#: ``bulk_delete_all``'s report names at most this many ids per list (not found, unresolved,
#: rejected) and counts the rest, so its memory stays flat whatever the input's size.
REPORT_NAMED_IDS = 1000

#: PostHog deletes the events of deleted persons in a weekly batch: Sundays at 05:00 UTC
#: (``CLEAR_CLICKHOUSE_REMOVED_DATA_SCHEDULE_CRON = "0 5 * * SUN"`` in PostHog's settings).
#: Weekday as ``datetime.weekday()`` counts (Monday 0, Sunday 6).
EVENT_DELETION_WEEKDAY = 6
EVENT_DELETION_HOUR = 5
EVENT_DELETION_MINUTE = 0
#: Rows asked for per page when scanning ``persons/deletion_status/`` (PostHog sets no maximum).
DELETION_STATUS_PAGE_LIMIT = 1000
#: How long a person whose deletion PostHog queued (``PERSON_BULK_DELETE_ASYNC``) may still be
#: found before ``verify`` calls it wrong: the queued task retries a failed person 3 times with
#: backoff up to 600 s (``delete_persons.py``), so an hour is well past its last attempt.
QUEUED_DELETION_GRACE = 3600.0
#: ``verify``: a ``deletion_status`` row created more than this many seconds before the job's
#: journal is an earlier erasure's, never this job's proof (allowance for the clocks' skew).
DELETION_ROW_SKEW = 60.0
#: ``verify --wait``: seconds between two checks of what is still pending at PostHog.
VERIFY_INTERVAL = 600.0

USER_AGENT = "posthog-async-client"

# -- the query API (``posthog-query-notes.md``) ----------------------------------------------
#: PostHog's ``HogQLQueryThrottle`` (``posthog/rate_limit.py``): 120 HogQL queries an hour per key.
HOGQL_RATE_WINDOWS: tuple[tuple[int, float], ...] = ((120, 3600.0),)
#: The "API queries" plan's ``APIQueriesBurstThrottle`` + ``APIQueriesSustainedThrottle``:
#: ``RateLimits(hogql=API_QUERIES_PLAN_RATE_WINDOWS)`` when your organisation has it.
API_QUERIES_PLAN_RATE_WINDOWS: tuple[tuple[int, float], ...] = ((240, 60.0), (2400, 3600.0))
#: ``ClickHouseSustainedRateThrottle``: the hourly window every other query kind (ActorsQuery,
#: insights), every status poll and every cancel counts in, besides the persons bucket's minute.
QUERIES_RATE_WINDOWS: tuple[tuple[int, float], ...] = ((1200, 3600.0),)
#: PostHog runs at most 3 queries at once per team (``api:query:per-team``) and answers a 4th
#: with a 429 after holding it up to 30 s; we keep at most this many in flight per project.
MAX_QUERIES_IN_FLIGHT = 3
#: Per-request timeout of a query: above the server's own (10 s for HogQL with a personal key,
#: 60 s for other kinds), so the server, not the client, decides when a query is too slow.
QUERY_TIMEOUT = 75.0
#: How long an asynchronous query is polled before it is cancelled (statuses live 20 minutes).
QUERY_DEADLINE = 600.0
#: Polling an asynchronous query: first wait, growth, ceiling (each poll costs budget).
QUERY_POLL_INITIAL = 0.25
QUERY_POLL_FACTOR = 1.5
QUERY_POLL_MAX = 10.0
#: Seconds a best-effort ``DELETE query/:id/`` may take after the awaiting task was cancelled.
QUERY_CANCEL_TIMEOUT = 5.0
#: HogQL's rows without a top-level LIMIT, and the most any LIMIT gets (``posthog/hogql/constants.py``).
HOGQL_DEFAULT_ROWS = 100
HOGQL_MAX_ROWS = 50_000
#: Rows per keyset page (persons export, ``ph.query.keyset``): 100 pages for a million persons,
#: under the 120-an-hour HogQL budget, and a page a HogQL query can build within its 10 s.
KEYSET_PAGE_SIZE = 10_000
#: Actors per ActorsQuery page when iterating (``limit``/``offset`` of the query itself).
ACTORS_PAGE_LIMIT = 1_000
#: Bodies of PostHog's query-concurrency 429 (old and new wording): not a rate window, so it
#: never holds a bucket back (``posthog/clickhouse/client/limit.py``, ``posthog/api/query.py``).
QUERY_CONCURRENCY_429_MARKERS = ("Exceeded maximum concurrency limit",
                                 "Too many queries are running right now")
