"""When PostHog deletes a deleted person's events, and how to read its record of it cheaply.

**The batch.** PostHog does not delete events when a person is deleted with ``delete_events``:
it writes one ``AsyncDeletion`` row per person (``persons/deletion_status/``) and deletes the
events in a weekly batch, Sundays at 05:00 UTC (``CLEAR_CLICKHOUSE_REMOVED_DATA_SCHEDULE_CRON``
defaults to ``"0 5 * * SUN"``). Each run first marks verified (``delete_verified_at``, status
``completed``) the deletions whose events are gone, then starts the next deletions
(``AsyncDeletionProcess.mark_deletions_done`` then ``run``); so a row usually turns
``completed`` one batch after the one that deleted its events. :func:`next_event_deletion_batch`
says when the next run starts; its schedule is a parameter because PostHog has also run the
sweep from another scheduler at another time (see the module's tests and the README).

**Reading the rows.** ``deletion_status`` filters by one ``person_uuid`` a call, or pages every
row of the project (``limit`` has no maximum). Both cost calls in the ``persons`` bucket (240 a
minute). Asking per person costs one call per id; scanning costs one call per page of the
project's rows, however many ids are asked about. :func:`find_deletion_statuses` reads the first
page, learns the project's row ``count`` from it, and takes the cheaper road: for 10 ids in a
project with 50,000 rows, 10 filtered calls (not 50 pages); for 1,000,000 ids, the scan (a
project holding their rows has at least 1,000 pages of 1000: about 4 minutes at PostHog's
limit, against about 70 hours one id at a time).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

from . import _constants as C
from ._concurrency import bounded_map
from ._models import DeletionStatus, Page
from ._validation import require_uuid

__all__ = [
    "next_event_deletion_batch", "DeletionStatusLookup", "find_deletion_statuses",
    "FetchStatusPage", "FetchStatusRows",
]

#: ``page(offset, limit)``: one page of the project's ``deletion_status`` rows, newest first.
FetchStatusPage = Callable[[int, int], Awaitable[Page[DeletionStatus]]]
#: ``rows(person_uuid)``: the rows ``?person_uuid=`` finds (one, or none).
FetchStatusRows = Callable[[str], Awaitable[list[DeletionStatus]]]


def next_event_deletion_batch(
    after: datetime | None = None, *, weekday: int = C.EVENT_DELETION_WEEKDAY,
    hour: int = C.EVENT_DELETION_HOUR, minute: int = C.EVENT_DELETION_MINUTE,
) -> datetime:
    """The first start of PostHog's event-deletion batch strictly after ``after`` (default now),
    in UTC. A naive ``after`` is taken as UTC.

    Example::

        >>> next_event_deletion_batch(datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc))
        datetime.datetime(2026, 12, 6, 5, 0, tzinfo=datetime.timezone.utc)
    """
    if not (0 <= weekday <= 6 and 0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError("weekday must be 0-6 (Monday 0), hour 0-23, minute 0-59")
    moment = datetime.now(timezone.utc) if after is None else after
    moment = (moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None
              else moment.astimezone(timezone.utc))
    start = moment.replace(hour=hour, minute=minute, second=0, microsecond=0)
    start += timedelta(days=(weekday - start.weekday()) % 7)
    return start if start > moment else start + timedelta(days=7)


@dataclass
class DeletionStatusLookup:
    """What :func:`find_deletion_statuses` found: ``rows`` by canonical person UUID, the UUIDs
    with no row (``missing``), the calls it cost, and which road it took (``"scan"``: pages of
    every row; ``"filter"``: one ``person_uuid`` call per id)."""

    rows: dict[str, DeletionStatus] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    calls: int = 0
    strategy: Literal["scan", "filter"] = "filter"

    @property
    def completed(self) -> dict[str, DeletionStatus]:
        """Rows PostHog has verified (``status == "completed"``)."""
        return {u: r for u, r in self.rows.items() if r.status == "completed"}

    @property
    def pending(self) -> dict[str, DeletionStatus]:
        """Rows still waiting for a batch (anything but ``completed``)."""
        return {u: r for u, r in self.rows.items() if r.status != "completed"}


def _canonical(uuids: Iterable[str]) -> list[str]:
    if isinstance(uuids, (str, bytes)):
        raise TypeError("pass an iterable of person UUIDs, not a single string")
    return list(dict.fromkeys(require_uuid(u, "person_uuid") for u in uuids))


def _take(lookup: DeletionStatusLookup, wanted: set[str], page: Iterable[DeletionStatus]) -> None:
    for row in page:
        key = row.person_uuid.lower()
        if key in wanted and key not in lookup.rows:
            lookup.rows[key] = row


async def find_deletion_statuses(
    uuids: Iterable[str], *, page: FetchStatusPage, rows: FetchStatusRows,
    page_limit: int = C.DELETION_STATUS_PAGE_LIMIT, concurrency: int = 4,
) -> DeletionStatusLookup:
    """The ``deletion_status`` row of every person in ``uuids``, by the cheaper of a scan of all
    rows and one filtered call per id (see the module docstring). Malformed UUIDs raise
    ``ValueError`` before any call.

    A scan that does not find some ids checks them one by one when that costs no more than the
    scan did (rows written while it paged may have moved between pages).
    """
    if page_limit < 1 or concurrency < 1:
        raise ValueError("page_limit and concurrency must be positive")
    wanted_list = _canonical(uuids)
    wanted = set(wanted_list)
    lookup = DeletionStatusLookup()
    if not wanted:
        return lookup
    first = await page(0, page_limit)
    lookup.calls += 1
    _take(lookup, wanted, first.results)
    left = [u for u in wanted_list if u not in lookup.rows]
    if not left or not first.next:
        lookup.missing = left  # found them all, or the first page held every row there is
        return lookup
    more_pages = (None if first.count is None
                  else math.ceil(max(first.count - len(first.results), 0) / page_limit))
    if more_pages is None or more_pages < len(left):
        lookup.strategy = "scan"
        offset, current = len(first.results), first
        while current.next and len(lookup.rows) < len(wanted):
            current = await page(offset, page_limit)
            lookup.calls += 1
            if not current.results:
                break
            _take(lookup, wanted, current.results)
            offset += len(current.results)
        left = [u for u in wanted_list if u not in lookup.rows]
        if not left or len(left) > lookup.calls:
            lookup.missing = left
            return lookup
    results = bounded_map(left, rows, limit=concurrency)
    try:
        async for _uuid, found, error in results:
            if error is not None:
                raise error
            lookup.calls += 1
            _take(lookup, wanted, found or ())
    finally:
        await results.aclose()
    lookup.missing = [u for u in wanted_list if u not in lookup.rows]
    return lookup
