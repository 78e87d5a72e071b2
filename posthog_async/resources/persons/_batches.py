"""Many persons a call: ``bulk_delete`` and the batch lookups, and the ``*_all`` helpers that
split any number of ids into calls PostHog accepts (1000 a delete, 200 a lookup).

The base of :class:`~posthog_async.resources.Persons` (``ph.persons``): these calls are the
ones a deletion is made of (``deletion_step`` builds the per-chunk step of ``bulk_delete_all``
and of ``DeletionJob``), kept apart from the one-person endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Literal

from ... import _constants as C
from ..._bulk import BulkDeleteReport, LookupReport, ProgressCallback, bulk_delete_all
from ..._bulk import iter_lookup, lookup_all
from ..._chunk_step import ChunkStep, WaitCallback
from ..._ids import IdSource
from ..._models import BatchPersons, BulkDeleteResult, Person, accepted_bulk_delete
from ..._ratelimit import Bucket
from ..._validation import exactly_one, require_id_list
from .._base import Resource

__all__ = ["PersonBatches", "IdKind", "Ids", "DELETES"]

IdKind = Literal["ids", "distinct_ids"]
#: ``list[str]``, named so the ``list`` method of ``Persons`` does not shadow it in annotations.
Ids = list[str]
DELETES: Bucket = "person_deletes"


def _by_key(batch: BatchPersons, kind: IdKind) -> dict[str, Person]:
    if isinstance(batch.results, dict):
        return batch.results
    if kind == "ids":
        return {p.uuid: p for p in batch.results}
    return {d: p for p in batch.results for d in p.distinct_ids}


class PersonBatches(Resource):
    """The calls on many persons at once under ``/api/projects/:project_id/persons/``."""

    bucket = "persons"

    def _persons(self, suffix: str = "") -> str:
        return f"{self._base()}/persons/{suffix}"

    # -- many persons in one call ---------------------------------------------------------

    async def bulk_delete(
        self, *, ids: Sequence[str] | None = None, distinct_ids: Sequence[str] | None = None,
        delete_events: bool = False, delete_recordings: bool = False, keep_person: bool = False,
    ) -> BulkDeleteResult:
        """``POST persons/bulk_delete/`` (scope ``person:write``): delete up to 1000 persons.

        Pass person UUIDs as ``ids`` *or* ``distinct_ids``. Ids that match nobody are just not
        counted. If the answer is lost (``APIConnectionError`` with ``maybe_processed``), the
        call is not re-sent for you: a re-send would find nobody for the persons already
        deleted. :meth:`bulk_delete_all` settles that case and names every id's outcome.

        Example::

            result = await ph.persons.bulk_delete(distinct_ids=["u1", "u2"], delete_events=True)
            print(result.persons_found, result.persons_deleted)
        """
        exactly_one(("ids", "distinct_ids"), (ids, distinct_ids))
        kind: IdKind = "ids" if ids is not None else "distinct_ids"
        checked = require_id_list(ids if ids is not None else distinct_ids or [], kind,
                                  maximum=C.MAX_BULK_DELETE_IDS, uuids=kind == "ids")
        return await self._bulk_delete(kind, checked, delete_events=delete_events,
                                       delete_recordings=delete_recordings,
                                       keep_person=keep_person)

    async def _bulk_delete(self, kind: IdKind, ids: Ids, **flags: bool) -> BulkDeleteResult:
        path = self._persons("bulk_delete/")  # a 2xx that is not PostHog's answer raises:
        return accepted_bulk_delete(await self._call(  # see accepted_bulk_delete
            "POST", path, cast_to=BulkDeleteResult, json={kind: ids, **flags}, bucket=DELETES,
            idempotent=False), what=f"POST {path}")

    async def batch_by_distinct_ids(self, distinct_ids: Sequence[str]) -> dict[str, Person]:
        """``POST persons/batch_by_distinct_ids/`` (scope ``person:read``): up to 200 ids.

        Returns ``{distinct_id: Person}`` (each person with at most 10 of its distinct ids);
        unknown ids are absent. More than 200 is refused here: PostHog would drop the rest.

        Example: ``found = await ph.persons.batch_by_distinct_ids(["u1", "u2"])``
        """
        ids = require_id_list(distinct_ids, "distinct_ids", maximum=C.MAX_BATCH_DISTINCT_IDS)
        return await self._batch("distinct_ids", ids)

    async def batch_by_uuids(self, uuids: Sequence[str]) -> dict[str, Person]:
        """``POST persons/batch_by_uuids/`` (scope ``person:read``): up to 200 UUIDs.

        Returns ``{uuid: Person}`` keyed by canonical lower-case UUID. Every UUID is checked
        first (one malformed UUID fails PostHog's whole call); more than 200 is refused here.

        Example: ``found = await ph.persons.batch_by_uuids([uuid1, uuid2])``
        """
        checked = require_id_list(uuids, "uuids", maximum=C.MAX_BATCH_UUIDS, uuids=True)
        return await self._batch("ids", checked)

    async def _batch(self, kind: IdKind, ids: Ids) -> dict[str, Person]:
        suffix, field = (("batch_by_uuids/", "uuids") if kind == "ids"
                         else ("batch_by_distinct_ids/", "distinct_ids"))
        batch = await self._call("POST", self._persons(suffix), cast_to=BatchPersons,
                                 json={field: ids}, idempotent=True, read=True)
        return _by_key(batch, kind)

    # -- any number of ids ------------------------------------------------------------------

    def _concurrency(self, concurrency: int | None) -> int:
        if concurrency is not None and concurrency <= 0:
            raise ValueError("concurrency must be positive")
        return concurrency or self._transport.config.max_concurrency

    def deletion_step(
        self, kind: IdKind, *, delete_events: bool = False, delete_recordings: bool = False,
        keep_person: bool = False, resolve: bool = False, dry_run: bool = False,
        patience: float = 600.0, on_wait: WaitCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ChunkStep:
        """The per-chunk step :meth:`bulk_delete_all` and ``DeletionJob`` run (ids already clean)."""

        async def delete(ids: Ids) -> BulkDeleteResult:
            return await self._bulk_delete(kind, ids, delete_events=delete_events,
                                           delete_recordings=delete_recordings,
                                           keep_person=keep_person)

        async def lookup(ids: Ids) -> dict[str, Person]:
            return await self._batch(kind, ids)

        return ChunkStep(delete=None if dry_run else delete, lookup=lookup,
                         lookup_size=C.MAX_BATCH_UUIDS if kind == "ids" else C.MAX_BATCH_DISTINCT_IDS,
                         resolve=resolve or dry_run, kind=kind, keep_person=keep_person,
                         delete_events=delete_events, delete_recordings=delete_recordings,
                         patience=patience, on_wait=on_wait, should_stop=should_stop)

    async def bulk_delete_all(
        self, *, ids: IdSource | None = None, distinct_ids: IdSource | None = None,
        delete_events: bool = False, delete_recordings: bool = False, keep_person: bool = False,
        resolve: bool = False, chunk_size: int = C.MAX_BULK_DELETE_IDS,
        concurrency: int | None = None, dedupe: bool = True,
        on_progress: ProgressCallback | None = None, stop_on_error: bool = False,
    ) -> BulkDeleteReport:
        """Delete any number of persons, ``chunk_size`` (≤ 1000) per ``bulk_delete`` call.

        ``ids`` (UUIDs) or ``distinct_ids`` may be any iterable or async iterable, read lazily.
        Blank ids, duplicates and invalid ids are dropped and counted in ``report.input``
        (``report.rejected`` says why). Chunks run concurrently under the client's limits. A
        chunk whose answer is lost is looked up again before it is re-sent, so nobody it
        deleted is reported "not found". ``resolve=True`` looks every chunk up first (batch
        lookups, in PostHog's persons bucket) so every id's outcome is exact. A bad key, a
        missing scope or project, or a refused connection stops the job at once.

        Example::

            report = await ph.persons.bulk_delete_all(
                distinct_ids=(line.strip() for line in open("erase.txt")), delete_events=True)
            assert report.ok, report.failed_ids
        """
        exactly_one(("ids", "distinct_ids"), (ids, distinct_ids))
        if not 1 <= chunk_size <= C.MAX_BULK_DELETE_IDS:
            raise ValueError(f"chunk_size must be between 1 and {C.MAX_BULK_DELETE_IDS}")
        kind: IdKind = "ids" if ids is not None else "distinct_ids"
        step = self.deletion_step(kind, delete_events=delete_events, keep_person=keep_person,
                                  delete_recordings=delete_recordings, resolve=resolve)
        return await bulk_delete_all(
            ids if ids is not None else distinct_ids or (), step=step, uuids=kind == "ids",
            chunk_size=chunk_size, concurrency=self._concurrency(concurrency), dedupe=dedupe,
            on_progress=on_progress, stop_on_error=stop_on_error)

    async def batch_by_distinct_ids_all(
        self, distinct_ids: IdSource, *, concurrency: int | None = None
    ) -> LookupReport:
        """Look up any number of distinct ids, 200 per call (PostHog's silent cap). A call that
        fails is listed in ``report.failed``; a bad key, scope or project raises at once.

        Example::

            report = await ph.persons.batch_by_distinct_ids_all(ids)
            print(len(report.found), "found;", report.not_found[:5])
        """
        return await lookup_all(
            distinct_ids, lambda chunk: self._batch("distinct_ids", chunk),
            chunk_size=C.MAX_BATCH_DISTINCT_IDS, concurrency=self._concurrency(concurrency),
            uuids=False)

    async def batch_by_uuids_all(
        self, uuids: IdSource, *, concurrency: int | None = None
    ) -> LookupReport:
        """Look up any number of person UUIDs, 200 per call; malformed ones are reported."""
        return await lookup_all(
            uuids, lambda chunk: self._batch("ids", chunk), chunk_size=C.MAX_BATCH_UUIDS,
            concurrency=self._concurrency(concurrency), uuids=True)

    def iter_by_distinct_ids(
        self, distinct_ids: IdSource, *, concurrency: int | None = None
    ) -> AsyncIterator[tuple[Ids, dict[str, Person], Exception | None]]:
        """Stream lookups: yields ``(chunk, found, error)`` as each 200-id call completes.

        Example::

            async for chunk, found, error in ph.persons.iter_by_distinct_ids(ids):
                ...
        """
        return iter_lookup(
            distinct_ids, lambda chunk: self._batch("distinct_ids", chunk),
            chunk_size=C.MAX_BATCH_DISTINCT_IDS, concurrency=self._concurrency(concurrency),
            uuids=False)
