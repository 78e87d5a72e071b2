"""``ph.persons``: every ``persons/`` endpoint, one call per method (the calls on many persons
and the ``*_all`` helpers are in ``_batches``).

Rate limits: PostHog counts every persons call except deletes in one bucket (240 a minute per
key); ``DELETE persons/:id/`` and ``bulk_delete`` have their own (480 a minute, 4800 an hour).
Person ids in paths may be a UUID or the numeric ``id``; distinct ids go in queries and bodies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from functools import cached_property
from typing import Any, Literal

from ... import _constants as C
from ..._exceptions import PersonalAPIKeyNotAllowedError
from ..._chunk_step import WaitCallback
from ..._models import JSON, DeletionStatus, Person, PersonAtTime
from ..._models import PropertyValues
from ..._pagination import AsyncPaginator
from ..._validation import (
    exactly_one, require_choice, require_id_list, require_person_id, require_text, require_uuid,
)
from .._base import Format
from ..query import Query
from ._actors import PersonActors
from ._batches import DELETES, PersonBatches
from ._export import PersonsExport
from ._verification import PersonVerification

__all__ = ["Persons"]

DELETION_STATUSES = ("pending", "completed", "all")


class Persons(PersonBatches):
    """Everything under ``/api/projects/:project_id/persons/`` (the calls on many persons at
    once, and the helpers for any number of ids, come from :class:`PersonBatches`)."""

    def _person(self, id: str | int, suffix: str = "") -> str:
        return self._persons(f"{require_person_id(id)}/{suffix}")

    @cached_property
    def actors(self) -> PersonActors:
        """The persons behind insight points (trends, lifecycle, stickiness, funnels), through
        the query API: PostHog refuses its legacy ``persons/trends/``... to personal keys."""
        return PersonActors(self._transport, self._scope)

    @cached_property
    def verification(self) -> PersonVerification:
        """Reads that prove deletions happened: lookups that no longer find persons, and
        event-deletion rows that turned ``completed``."""
        return PersonVerification(self._transport, self._scope,
                                  batch_by_uuids=self.batch_by_uuids,
                                  deletion_status=self.deletion_status)

    def export(self, *, page_size: int = C.KEYSET_PAGE_SIZE, after: str | None = None,
               on_wait: WaitCallback | None = None) -> PersonsExport:
        """Every person once, with distinct ids and properties, keyset-paged over HogQL
        (scope ``query:read``; ``page_size`` persons a HogQL query, at most 50,000).

        HogQL reads PostHog's ClickHouse copy, which lags its database: an export is not proof
        of a deletion. ``after`` resumes after a person id (``export.last_key``). PostHog
        allows 120 HogQL queries an hour: the export waits out the hour-long wait a big
        project meets, telling ``on_wait(seconds, error)`` first (cancel the task to stop).

        Example::

            async for person in ph.persons.export():
                print(person.id, person.distinct_ids, person.properties.get("email"))
        """
        return PersonsExport(Query(self._transport, self._scope), page_size=page_size,
                             after=after, on_wait=on_wait)

    # -- listing -------------------------------------------------------------------------

    def list(
        self, *, distinct_id: str | None = None, email: str | None = None,
        search: str | None = None, properties: Sequence[Mapping[str, Any]] | None = None,
        include_total: bool = False, limit: int | None = None, offset: int | None = None,
    ) -> AsyncPaginator[Person]:
        """``GET persons/`` (scope ``person:read``): every person matching the filters.

        ``properties`` is a list of filters such as ``[{"key": "email", "value": "@acme.com",
        "operator": "icontains", "type": "person"}]``. ``limit`` is at most 1000: PostHog ends
        pagination silently above its row cap. ``async for`` asks for 1000 a page by default.

        Example::

            async for person in ph.persons.list(search="alice@"):
                print(person.uuid, person.distinct_ids)
            first_page = await ph.persons.list(limit=50)
        """
        if limit is not None and not 1 <= limit <= C.MAX_PERSONS_PAGE_LIMIT:
            raise ValueError(f"limit must be between 1 and {C.MAX_PERSONS_PAGE_LIMIT}")
        for index, item in enumerate(properties or ()):
            # PostHog silently drops a filter it cannot parse and then matches everyone.
            if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
                raise ValueError(f"properties[{index}] must be a filter with a 'key', got {item!r}")
        params = dict(
            distinct_id=distinct_id, email=email, search=search,
            properties=list(properties) if properties is not None else None,
            include_total=True if include_total else None,  # PostHog counts it when present
            limit=limit, offset=offset,
        )
        return self._paginate(self._persons(), Person, params)

    async def list_csv(self, **filters: Any) -> str:
        """``GET persons/?format=csv``: one page of persons as CSV text (filters as ``list``)."""
        content = await self._raw("GET", self._persons(), params={**filters, "format": "csv"})
        return content.decode("utf-8")

    def stream_csv(self, **filters: Any) -> AsyncIterator[bytes]:
        """``GET persons/?format=csv`` streamed in chunks, for exports too large to hold."""
        return self._stream(self._persons(), params={**filters, "format": "csv"})

    # -- one person ----------------------------------------------------------------------

    async def retrieve(self, id: str | int) -> Person:
        """``GET persons/:id/`` (scope ``person:read``); ``id`` is the UUID or numeric id.

        Example: ``person = await ph.persons.retrieve("0190...")``
        """
        return await self._call("GET", self._person(id), cast_to=Person)

    async def update(self, id: str | int, *, properties: Mapping[str, Any]) -> None:
        """``PATCH persons/:id/`` (scope ``person:write``): set properties.

        PostHog answers 202 and applies the change later (through a ``$set`` event), so a read
        straight after may not show it yet.

        Example: ``await ph.persons.update(uuid, properties={"plan": "pro"})``
        """
        if not isinstance(properties, Mapping) or not properties:
            raise ValueError("update needs a non-empty properties mapping")
        await self._call("PATCH", self._person(id), cast_to=None,
                         json={"properties": dict(properties)})

    async def delete(self, id: str | int, *, delete_events: bool = False,
                     delete_recordings: bool = False, keep_person: bool = False) -> None:
        """``DELETE persons/:id/`` (scope ``person:write``); PostHog answers 202.

        ``delete_events``/``delete_recordings`` queue those deletions too; ``keep_person``
        keeps the person and deletes only what the other flags ask for. PostHog treats a flag
        as set when it is present at all, so only true flags are sent.

        Example: ``await ph.persons.delete(uuid, delete_events=True)``
        """
        flags = dict(delete_events=delete_events, delete_recordings=delete_recordings,
                     keep_person=keep_person)
        params = {name: "true" for name, on in flags.items() if on}
        await self._call("DELETE", self._person(id), cast_to=None, params=params, bucket=DELETES)

    async def update_property(self, id: str | int, *, key: str, value: Any) -> None:
        """``POST persons/:id/update_property/`` (scope ``person:write``): set one property (202).

        Example: ``await ph.persons.update_property(uuid, key="plan", value="pro")``
        """
        body = {"key": require_text(key, "key"), "value": value}
        await self._call("POST", self._person(id, "update_property/"), cast_to=None, json=body)

    async def delete_property(self, id: str | int, *, key: str | Sequence[str]) -> None:
        """``POST persons/:id/delete_property/`` (scope ``person:write``): ``$unset`` properties.

        ``key`` is one property or (newer servers) a list of up to 1000. PostHog answers 201.
        It answers 500 for an unknown person, which is therefore not retried.

        Example: ``await ph.persons.delete_property(uuid, key="phone")``
        """
        unset: str | list[str] = (
            require_text(key, "key") if isinstance(key, str)
            else require_id_list(key, "key", maximum=C.MAX_UNSET_KEYS))
        await self._call("POST", self._person(id, "delete_property/"), cast_to=None,
                         json={"$unset": unset}, idempotent=False)

    async def split(self, id: str | int, *, main_distinct_id: str | None = None,
                    distinct_ids_to_split: Sequence[str] | None = None) -> None:
        """``POST persons/:id/split/`` (scope ``person:write``): split a merged person.

        Pass ``main_distinct_id`` (the id that keeps the person) *or* ``distinct_ids_to_split``.
        PostHog answers 201 and splits later.

        Example: ``await ph.persons.split(uuid, main_distinct_id="user-1")``
        """
        exactly_one(("main_distinct_id", "distinct_ids_to_split"),
                    (main_distinct_id, distinct_ids_to_split))
        body: dict[str, Any] = (
            {"main_distinct_id": require_text(main_distinct_id, "main_distinct_id")}
            if main_distinct_id is not None else
            {"distinct_ids_to_split": require_id_list(
                distinct_ids_to_split or [], "distinct_ids_to_split",
                maximum=C.MAX_BULK_DELETE_IDS)})
        await self._call("POST", self._person(id, "split/"), cast_to=None, json=body)

    async def activity(self, id: str | int, *, format: Format = "json") -> JSON:
        """``GET persons/:id/activity/`` (scopes ``person:read``, ``activity_log:read``)."""
        return await self._json_or_csv("GET", self._person(id, "activity/"), format)

    async def all_activity(self, *, format: Format = "json") -> JSON:
        """``GET persons/activity/`` (scope ``activity_log:read``): activity of all persons."""
        return await self._json_or_csv("GET", self._persons("activity/"), format)

    async def properties_timeline(self, id: str | int, *, format: Format = "json",
                                  **filters: Any) -> JSON:
        """``GET persons/:id/properties_timeline/``: how the person's properties changed.

        PostHog refuses this endpoint to personal API keys (403, raised as
        :class:`~posthog_async.PersonalAPIKeyNotAllowedError`, never retried), and no query
        kind replaces it: :meth:`properties_at_time` (a person's properties at a moment) is the
        call that works.
        """
        try:
            return await self._json_or_csv("GET", self._person(id, "properties_timeline/"),
                                           format, params=filters)
        except PersonalAPIKeyNotAllowedError as error:
            error.message += ("; ph.persons.properties_at_time(timestamp=..., person_id=...) "
                              "gives a person's properties at a moment and works with a key")
            error.args = (error.message,)
            raise

    # -- other person endpoints ------------------------------------------------------------

    async def cohorts(self, *, person_id: str | int, format: Format = "json") -> JSON:
        """``GET persons/cohorts/?person_id=`` (scopes ``person:read``, ``cohort:read``)."""
        return await self._json_or_csv("GET", self._persons("cohorts/"), format,
                                       params={"person_id": require_person_id(person_id, "person_id")})

    async def values(self, *, key: str, value: str | None = None) -> PropertyValues:
        """``GET persons/values/?key=&value=`` (scope ``person:read``): values seen for a property.

        Example: ``vals = await ph.persons.values(key="plan")``
        """
        params = {"key": require_text(key, "key"), "value": value}
        return await self._call("GET", self._persons("values/"), cast_to=PropertyValues,
                                params=params)

    def deletion_status(
        self, *, status: Literal["pending", "completed", "all"] | None = None,
        person_uuid: str | None = None, limit: int | None = None, offset: int | None = None,
    ) -> AsyncPaginator[DeletionStatus]:
        """``GET persons/deletion_status/`` (scope ``person:read``): queued event deletions,
        newest first.

        Example: ``async for s in ph.persons.deletion_status(person_uuid=uuid): ...``
        """
        if status is not None:
            require_choice(status, "status", DELETION_STATUSES)
        params = dict(
            status=status, limit=limit, offset=offset,
            person_uuid=None if person_uuid is None else require_uuid(person_uuid, "person_uuid"),
        )
        return self._paginate(self._persons("deletion_status/"), DeletionStatus, params)

    async def reset_person_distinct_id(self, distinct_id: str) -> None:
        """``POST persons/reset_person_distinct_id/`` (scope ``person:write``): 202.

        Frees a *deleted* person's distinct id for reuse. PostHog does not check that nobody
        holds it, so pass only ids of persons you deleted.
        """
        body = {"distinct_id": require_text(distinct_id, "distinct_id")}
        await self._call("POST", self._persons("reset_person_distinct_id/"), cast_to=None,
                         json=body, idempotent=True)

    async def properties_at_time(
        self, *, timestamp: str, distinct_id: str | None = None,
        person_id: str | int | None = None, include_set_once: bool = False,
    ) -> PersonAtTime:
        """``GET persons/properties_at_time/`` (scope ``person:read``): properties as of a time.

        Pass ``distinct_id`` *or* ``person_id``, and an ISO ``timestamp``.
        """
        exactly_one(("distinct_id", "person_id"), (distinct_id, person_id))
        params = dict(
            timestamp=require_text(timestamp, "timestamp"),
            distinct_id=None if distinct_id is None else require_text(distinct_id, "distinct_id"),
            person_id=None if person_id is None else require_person_id(person_id, "person_id"),
            include_set_once="true" if include_set_once else None,
        )
        return await self._call("GET", self._persons("properties_at_time/"),
                                cast_to=PersonAtTime, params=params)
