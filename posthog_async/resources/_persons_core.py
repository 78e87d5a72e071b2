"""``ph.persons``: reading, updating and deleting persons (one call per method)."""

from __future__ import annotations

from typing import Any, AsyncIterator, Literal, Mapping, Sequence

from .. import _constants as C
from .._models import (
    JSON, BatchPersons, BulkDeleteResult, DeletionStatus, Person, PersonAtTime,
    PropertyValues, SplitResult,
)
from .._pagination import AsyncPaginator
from .._validation import (
    exactly_one, require_choice, require_id_list, require_text, require_uuid,
)
from ._base import FORMATS, Resource

__all__ = ["PersonsCore"]

Format = Literal["json", "csv"]
ANALYTICS = "analytics"
DELETION_STATUSES = ("pending", "completed", "all")


def _by_key(batch: BatchPersons | None, key: str) -> dict[str, Person]:
    if batch is None:
        return {}
    if isinstance(batch.results, dict):
        return batch.results
    if key == "uuid":
        return {p.uuid: p for p in batch.results}
    return {d: p for p in batch.results for d in p.distinct_ids}


class PersonsCore(Resource):
    """Person endpoints under ``/api/projects/:project_id/persons/`` (or ``environments``)."""

    def _persons(self, project_id: str | int | None, suffix: str = "") -> str:
        return f"{self._base(project_id)}/persons/{suffix}"

    def _person(self, id: str, project_id: str | int | None, suffix: str = "") -> str:
        return self._persons(project_id, f"{require_uuid(id)}/{suffix}")

    # -- listing -------------------------------------------------------------------------

    def list(
        self,
        *,
        distinct_id: str | None = None,
        email: str | None = None,
        search: str | None = None,
        properties: Sequence[Mapping[str, Any]] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        project_id: str | int | None = None,
    ) -> AsyncPaginator[Person]:
        """``GET persons/`` (scope ``person:read``): every person matching the filters.

        ``properties`` is a list of property filters such as
        ``[{"key": "email", "value": "@acme.com", "operator": "icontains", "type": "person"}]``.

        Example::

            async for person in ph.persons.list(search="alice@"):
                print(person.uuid, person.distinct_ids)
            first_page = await ph.persons.list(limit=50)
        """
        if limit is not None and limit <= 0:
            raise ValueError("limit must be a positive number")
        params = dict(
            distinct_id=distinct_id, email=email, search=search,
            properties=list(properties) if properties is not None else None,
            limit=limit, offset=offset,
        )
        return self._paginate(self._persons(project_id), Person, params, ANALYTICS)

    async def list_csv(self, *, project_id: str | int | None = None, **filters: Any) -> str:
        """``GET persons/?format=csv``: one page of persons as CSV text (same filters as ``list``)."""
        return await self._text(
            self._persons(project_id), params={**filters, "format": "csv"}, category=ANALYTICS
        )

    def stream_csv(
        self, *, project_id: str | int | None = None, **filters: Any
    ) -> AsyncIterator[bytes]:
        """``GET persons/?format=csv`` streamed in chunks, for exports too large to hold."""
        return self._stream(
            self._persons(project_id), params={**filters, "format": "csv"}, category=ANALYTICS
        )

    # -- one person ----------------------------------------------------------------------

    async def retrieve(self, id: str, *, project_id: str | int | None = None) -> Person:
        """``GET persons/:id/`` (scope ``person:read``). ``id`` is the person's UUID.

        Example: ``person = await ph.persons.retrieve("0190...")``
        """
        person: Person = await self._call("GET", self._person(id, project_id), Person)
        return person

    async def update(
        self,
        id: str,
        *,
        properties: Mapping[str, Any] | None = None,
        name: str | None = None,
        project_id: str | int | None = None,
    ) -> Person:
        """``PATCH persons/:id/`` (scope ``person:write``).

        Example: ``await ph.persons.update(uuid, properties={"plan": "pro"})``
        """
        body: dict[str, Any] = {}
        if properties is not None:
            body["properties"] = dict(properties)
        if name is not None:
            body["name"] = name
        if not body:
            raise ValueError("update needs properties= or name=")
        person: Person = await self._call("PATCH", self._person(id, project_id), Person, json=body)
        return person

    async def delete(
        self,
        id: str,
        *,
        delete_events: bool = False,
        delete_recordings: bool = False,
        keep_person: bool = False,
        project_id: str | int | None = None,
    ) -> None:
        """``DELETE persons/:id/`` (scope ``person:write``); the server answers 202.

        ``delete_events``/``delete_recordings`` queue those deletions (they run in a batch later);
        ``keep_person`` keeps the person and deletes only what the other flags ask for.

        Example: ``await ph.persons.delete(uuid, delete_events=True)``
        """
        params = dict(
            delete_events=delete_events, delete_recordings=delete_recordings, keep_person=keep_person
        )
        await self._call("DELETE", self._person(id, project_id), JSON, params=params)

    async def update_property(
        self, id: str, *, key: str, value: Any, project_id: str | int | None = None
    ) -> JSON:
        """``POST persons/:id/update_property/`` (scope ``person:write``): set one property.

        Example: ``await ph.persons.update_property(uuid, key="plan", value="pro")``
        """
        body = {"key": require_text(key, "key"), "value": value}
        return await self._call(
            "POST", self._person(id, project_id, "update_property/"), JSON, json=body
        )

    async def delete_property(
        self, id: str, *, key: str, project_id: str | int | None = None
    ) -> JSON:
        """``POST persons/:id/delete_property/`` (scope ``person:write``): ``$unset`` one property.

        Example: ``await ph.persons.delete_property(uuid, key="phone")``
        """
        body = {"$unset": require_text(key, "key")}
        return await self._call(
            "POST", self._person(id, project_id, "delete_property/"), JSON, json=body,
            idempotent=True,
        )

    async def split(
        self,
        id: str,
        *,
        main_distinct_id: str | None = None,
        distinct_ids_to_split: Sequence[str] | None = None,
        project_id: str | int | None = None,
    ) -> SplitResult:
        """``POST persons/:id/split/`` (scope ``person:write``): split a merged person.

        Pass ``main_distinct_id`` (the id that keeps the person) *or* ``distinct_ids_to_split``.
        The split runs asynchronously on the server.

        Example: ``await ph.persons.split(uuid, main_distinct_id="user-1")``
        """
        exactly_one(
            ("main_distinct_id", "distinct_ids_to_split"), (main_distinct_id, distinct_ids_to_split)
        )
        body: dict[str, Any] = {}
        if main_distinct_id is not None:
            body["main_distinct_id"] = require_text(main_distinct_id, "main_distinct_id")
        else:
            assert distinct_ids_to_split is not None
            body["distinct_ids_to_split"] = require_id_list(
                distinct_ids_to_split, "distinct_ids_to_split", maximum=C.MAX_BULK_DELETE_IDS
            )
        result: SplitResult = await self._call(
            "POST", self._person(id, project_id, "split/"), SplitResult, json=body
        )
        return result

    async def activity(
        self, id: str, *, format: Format = "json", project_id: str | int | None = None
    ) -> JSON:
        """``GET persons/:id/activity/`` (scope ``activity_log:read``): one person's activity log."""
        return await self._get_json(self._person(id, project_id, "activity/"), format, {})

    async def all_activity(
        self, *, format: Format = "json", project_id: str | int | None = None
    ) -> JSON:
        """``GET persons/activity/`` (scope ``activity_log:read``): activity of all persons."""
        return await self._get_json(self._persons(project_id, "activity/"), format, {})

    async def properties_timeline(
        self, id: str, *, format: Format = "json", project_id: str | int | None = None,
        **filters: Any,
    ) -> JSON:
        """``GET persons/:id/properties_timeline/``: how the person's properties changed."""
        return await self._get_json(
            self._person(id, project_id, "properties_timeline/"), format, filters
        )

    async def _get_json(
        self, path: str, format: Format, params: Mapping[str, Any], category: str = "crud"
    ) -> JSON:
        if format == "csv":
            return await self._text(path, params={**params, "format": "csv"}, category=category)
        require_choice(format, "format", FORMATS)
        return await self._call("GET", path, JSON, params=params, category=category)

    # -- many persons in one call ---------------------------------------------------------

    async def bulk_delete(
        self,
        *,
        ids: Sequence[str] | None = None,
        distinct_ids: Sequence[str] | None = None,
        delete_events: bool = False,
        delete_recordings: bool = False,
        keep_person: bool = False,
        project_id: str | int | None = None,
    ) -> BulkDeleteResult:
        """``POST persons/bulk_delete/`` (scope ``person:write``): delete up to 1000 persons.

        Pass person UUIDs as ``ids`` *or* ``distinct_ids``, never both. Ids that match no person
        are simply not counted in ``persons_found``. Safe to re-send: deleting twice is a no-op,
        so the client retries it like an idempotent call. For more than 1000 ids use
        :meth:`bulk_delete_all`.

        Example::

            result = await ph.persons.bulk_delete(distinct_ids=["u1", "u2"], delete_events=True)
            print(result.persons_deleted)
        """
        exactly_one(("ids", "distinct_ids"), (ids, distinct_ids))
        body: dict[str, Any] = dict(
            delete_events=delete_events, delete_recordings=delete_recordings, keep_person=keep_person
        )
        if ids is not None:
            body["ids"] = require_id_list(ids, "ids", maximum=C.MAX_BULK_DELETE_IDS, uuids=True)
        else:
            assert distinct_ids is not None
            body["distinct_ids"] = require_id_list(
                distinct_ids, "distinct_ids", maximum=C.MAX_BULK_DELETE_IDS
            )
        result: BulkDeleteResult = await self._call(
            "POST", self._persons(project_id, "bulk_delete/"), BulkDeleteResult, json=body,
            idempotent=True,
        )
        return result

    async def batch_by_distinct_ids(
        self, distinct_ids: Sequence[str], *, project_id: str | int | None = None
    ) -> dict[str, Person]:
        """``POST persons/batch_by_distinct_ids/``: persons for up to 200 distinct ids.

        Returns ``{distinct_id: Person}``; unknown ids are absent. More than 200 is refused
        here because the server would silently drop the rest (see ``batch_by_distinct_ids_all``).

        Example: ``found = await ph.persons.batch_by_distinct_ids(["u1", "u2"])``
        """
        body = {
            "distinct_ids": require_id_list(
                distinct_ids, "distinct_ids", maximum=C.MAX_BATCH_DISTINCT_IDS
            )
        }
        batch = await self._call(
            "POST", self._persons(project_id, "batch_by_distinct_ids/"), BatchPersons,
            json=body, category=ANALYTICS, idempotent=True,
        )
        return _by_key(batch, "distinct_id")

    async def batch_by_uuids(
        self, uuids: Sequence[str], *, project_id: str | int | None = None
    ) -> dict[str, Person]:
        """``POST persons/batch_by_uuids/``: persons for up to 1000 UUIDs, as ``{uuid: Person}``.

        Every UUID is validated first: one malformed UUID would fail the whole call.

        Example: ``found = await ph.persons.batch_by_uuids([uuid1, uuid2])``
        """
        body = {"uuids": require_id_list(uuids, "uuids", maximum=C.MAX_BATCH_UUIDS, uuids=True)}
        batch = await self._call(
            "POST", self._persons(project_id, "batch_by_uuids/"), BatchPersons,
            json=body, category=ANALYTICS, idempotent=True,
        )
        return _by_key(batch, "uuid")

    # -- other person endpoints ------------------------------------------------------------

    async def cohorts(
        self, *, person_id: str, format: Format = "json", project_id: str | int | None = None
    ) -> JSON:
        """``GET persons/cohorts/?person_id=`` (scopes ``person:read``, ``cohort:read``)."""
        params = {"person_id": require_text(person_id, "person_id")}
        return await self._get_json(self._persons(project_id, "cohorts/"), format, params)

    async def values(
        self, *, key: str, value: str | None = None, project_id: str | int | None = None
    ) -> PropertyValues:
        """``GET persons/values/?key=&value=`` (scope ``person:read``): values seen for a property.

        Example: ``vals = await ph.persons.values(key="plan")``
        """
        params = {"key": require_text(key, "key"), "value": value}
        result: PropertyValues = await self._call(
            "GET", self._persons(project_id, "values/"), PropertyValues, params=params,
            category=ANALYTICS,
        )
        return result

    def deletion_status(
        self,
        *,
        status: Literal["pending", "completed", "all"] | None = None,
        person_uuid: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        project_id: str | int | None = None,
    ) -> AsyncPaginator[DeletionStatus]:
        """``GET persons/deletion_status/`` (scope ``person:read``): queued event deletions.

        Example: ``async for s in ph.persons.deletion_status(status="pending"): ...``
        """
        if status is not None:
            require_choice(status, "status", DELETION_STATUSES)
        params = dict(
            status=status,
            person_uuid=None if person_uuid is None else require_uuid(person_uuid, "person_uuid"),
            limit=limit, offset=offset,
        )
        return self._paginate(self._persons(project_id, "deletion_status/"), DeletionStatus, params)

    async def reset_person_distinct_id(
        self, distinct_id: str, *, project_id: str | int | None = None
    ) -> JSON:
        """``POST persons/reset_person_distinct_id/`` (scope ``person:write``).

        Frees the distinct id of a deleted person so it can be used again.
        """
        body = {"distinct_id": require_text(distinct_id, "distinct_id")}
        return await self._call(
            "POST", self._persons(project_id, "reset_person_distinct_id/"), JSON, json=body,
            idempotent=True,
        )

    async def properties_at_time(
        self,
        *,
        timestamp: str,
        distinct_id: str | None = None,
        person_id: str | None = None,
        include_set_once: bool | None = None,
        debug: bool | None = None,
        project_id: str | int | None = None,
    ) -> PersonAtTime:
        """``GET persons/properties_at_time/`` (scope ``person:read``): properties as of a time.

        Pass ``distinct_id`` *or* ``person_id`` (a UUID), and an ISO ``timestamp``.
        """
        exactly_one(("distinct_id", "person_id"), (distinct_id, person_id))
        params = dict(
            timestamp=require_text(timestamp, "timestamp"),
            distinct_id=distinct_id,
            person_id=None if person_id is None else require_uuid(person_id, "person_id"),
            include_set_once=include_set_once, debug=debug,
        )
        result: PersonAtTime = await self._call(
            "GET", self._persons(project_id, "properties_at_time/"), PersonAtTime,
            params=params, category=ANALYTICS,
        )
        return result
