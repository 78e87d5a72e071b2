"""``ph.persons``: single-call endpoints plus the chunking helpers for millions of ids."""

from __future__ import annotations

from typing import AsyncIterator

from .. import _constants as C
from .._bulk import (
    BulkDeleteReport, IdSource, LookupReport, ProgressCallback, bulk_delete_all, iter_lookup,
    lookup_all,
)
from .._models import Person
from ._person_insights import PersonInsights
from ._persons_core import PersonsCore

__all__ = ["Persons"]


class Persons(PersonsCore, PersonInsights):
    """Everything under ``persons/``. Methods ending in ``_all`` take any number of ids."""

    def _concurrency(self, concurrency: int | None) -> int:
        return concurrency or self._transport.config.max_concurrency

    async def bulk_delete_all(
        self,
        *,
        ids: IdSource | None = None,
        distinct_ids: IdSource | None = None,
        delete_events: bool = False,
        delete_recordings: bool = False,
        keep_person: bool = False,
        chunk_size: int = C.MAX_BULK_DELETE_IDS,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        stop_on_error: bool = False,
        report_not_found: bool = False,
        dedupe: bool = True,
        project_id: str | int | None = None,
    ) -> BulkDeleteReport:
        """Delete any number of persons in ``bulk_delete`` calls of at most ``chunk_size`` ids.

        ``ids`` (person UUIDs) or ``distinct_ids`` may be any iterable or async iterable; it is
        read lazily. Blank ids, duplicates and malformed UUIDs are dropped and counted in
        ``report.input``. Chunks run concurrently under the client's rate limits; a chunk that
        fails after the core's retries is listed in ``report.failed_chunks`` with its ids and
        the error, and the others go on (``stop_on_error=True`` stops sending new chunks).
        ``report_not_found=True`` first looks each chunk up with the batch endpoints so the
        report names the ids that matched no person (it costs extra analytics-rate calls).
        ``on_progress(done, total)`` is called after each chunk (``total`` is ``None`` for
        generators).

        Example::

            report = await ph.persons.bulk_delete_all(
                distinct_ids=(line.strip() for line in open("erase.txt")), delete_events=True,
            )
            assert report.ok, report.failed_ids
        """
        return await bulk_delete_all(
            self, ids=ids, distinct_ids=distinct_ids, delete_events=delete_events,
            delete_recordings=delete_recordings, keep_person=keep_person,
            chunk_size=chunk_size, concurrency=self._concurrency(concurrency),
            on_progress=on_progress, stop_on_error=stop_on_error,
            report_not_found=report_not_found, dedupe=dedupe, project_id=project_id,
        )

    async def batch_by_distinct_ids_all(
        self,
        distinct_ids: IdSource,
        *,
        concurrency: int | None = None,
        project_id: str | int | None = None,
    ) -> LookupReport:
        """Look up any number of distinct ids, 200 per call (the server's silent cap).

        Example::

            report = await ph.persons.batch_by_distinct_ids_all(ids)
            print(len(report.found), "found;", report.not_found[:5], "...")
        """

        async def lookup(chunk: list[str]) -> dict[str, Person]:
            return await self.batch_by_distinct_ids(chunk, project_id=project_id)

        return await lookup_all(
            distinct_ids, lookup, chunk_size=C.MAX_BATCH_DISTINCT_IDS,
            concurrency=self._concurrency(concurrency), uuids=False,
        )

    async def batch_by_uuids_all(
        self,
        uuids: IdSource,
        *,
        concurrency: int | None = None,
        project_id: str | int | None = None,
    ) -> LookupReport:
        """Look up any number of person UUIDs, 1000 per call; malformed ones are reported."""

        async def lookup(chunk: list[str]) -> dict[str, Person]:
            return await self.batch_by_uuids(chunk, project_id=project_id)

        return await lookup_all(
            uuids, lookup, chunk_size=C.MAX_BATCH_UUIDS,
            concurrency=self._concurrency(concurrency), uuids=True,
        )

    def iter_by_distinct_ids(
        self,
        distinct_ids: IdSource,
        *,
        concurrency: int | None = None,
        project_id: str | int | None = None,
    ) -> AsyncIterator[tuple[list[str], dict[str, Person], Exception | None]]:
        """Stream lookups: yields ``(chunk, found, error)`` as each 200-id call completes.

        Example::

            async for chunk, found, error in ph.persons.iter_by_distinct_ids(ids):
                ...
        """

        async def lookup(chunk: list[str]) -> dict[str, Person]:
            return await self.batch_by_distinct_ids(chunk, project_id=project_id)

        return iter_lookup(
            distinct_ids, lookup, chunk_size=C.MAX_BATCH_DISTINCT_IDS,
            concurrency=self._concurrency(concurrency), uuids=False,
        )
