"""``ph.persons.verification``: proof, after the fact, that a deletion happened.

A queued person deletion is proven only by a later lookup that no longer finds the person, and
a deletion of events only by its ``deletion_status`` row turning ``completed``
(``posthog-api-notes.md``, Persons). These two reads are what a verification step is made of;
both are in PostHog's ``persons`` bucket (240 calls a minute per key).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from ... import _constants as C
from ..._bulk import iter_lookup
from ..._chunk_step import LookupChunk, is_fatal
from ..._event_deletions import DeletionStatusLookup, find_deletion_statuses
from ..._ids import IdSource
from ..._models import DeletionStatus, Page, Person
from ..._pagination import AsyncPaginator
from ..._transport import Transport
from .._base import Resource, Scope

#: ``persons.deletion_status``: the paginator of ``GET persons/deletion_status/``.
DeletionStatusPages = Callable[..., AsyncPaginator[DeletionStatus]]

__all__ = ["PersonVerification", "GoneCheck"]


@dataclass
class GoneCheck:
    """One lookup of at most 200 person UUIDs: ``gone`` are not found any more, ``found`` still
    exist (by canonical UUID). When ``error`` is set the lookup failed and nothing is known
    about ``ids``: neither list says anything then."""

    ids: list[str]
    gone: list[str] = field(default_factory=list)
    found: dict[str, Person] = field(default_factory=dict)
    error: Exception | None = None


class PersonVerification(Resource):
    """Reads that verify deletions, for ``/api/projects/:id/persons/``: built on two calls of
    ``ph.persons`` (``batch_by_uuids``, ``deletion_status``), passed in as plain callables."""

    bucket = "persons"

    def __init__(self, transport: Transport, scope: Scope, *, batch_by_uuids: LookupChunk,
                 deletion_status: DeletionStatusPages) -> None:
        super().__init__(transport, scope)
        self._batch_by_uuids = batch_by_uuids
        self._deletion_status = deletion_status

    async def check_gone(
        self, uuids: IdSource, *, concurrency: int | None = None
    ) -> AsyncIterator[GoneCheck]:
        """Look persons up by UUID, 200 a call (``batch_by_uuids``), yielding a
        :class:`GoneCheck` as each call completes. A bad key, a missing scope or project
        raises at once; other failures are reported per chunk. Malformed UUIDs are skipped
        (they cannot name a person).

        Example::

            async for check in ph.project(2).persons.verification.check_gone(uuids):
                journal.record(check.gone, check.found, check.error)
        """
        lookups = iter_lookup(uuids, self._batch_by_uuids, chunk_size=C.MAX_BATCH_UUIDS,
                              concurrency=concurrency or self._transport.config.max_concurrency,
                              uuids=True)
        try:
            async for chunk, found, error in lookups:
                if error is not None:
                    if is_fatal(error):
                        raise error
                    yield GoneCheck(chunk, error=error)
                else:
                    yield GoneCheck(chunk, [u for u in chunk if u not in found], dict(found))
        finally:
            await lookups.aclose()

    async def deletion_statuses(self, uuids: Iterable[str], *,
                                page_limit: int = C.DELETION_STATUS_PAGE_LIMIT) -> DeletionStatusLookup:
        """The ``deletion_status`` row (``status``, ``delete_verified_at``) of each person in
        ``uuids``, reading all rows or one per person, whichever costs fewer calls (see
        :func:`~posthog_async._event_deletions.find_deletion_statuses`).

        Example::

            found = await ph.persons.verification.deletion_statuses(uuids)
            done = {u: row.delete_verified_at for u, row in found.completed.items()}
        """
        paginator = self._deletion_status

        async def page(offset: int, limit: int) -> Page[DeletionStatus]:
            result: Page[DeletionStatus] = await paginator(limit=limit, offset=offset).first_page()
            return result

        async def rows(person_uuid: str) -> list[DeletionStatus]:
            found: list[DeletionStatus] = await paginator(person_uuid=person_uuid).to_list()
            return found

        return await find_deletion_statuses(uuids, page=page, rows=rows, page_limit=page_limit)
