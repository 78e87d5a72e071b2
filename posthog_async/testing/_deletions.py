"""Person deletion: ``DELETE persons/:id/`` and ``bulk_delete``, synchronous or queued, in the answer
shapes of the ``person.py`` versions PostHog has shipped.

``bulk_delete_version`` picks the shape: ``"P-D"`` (newest: errors carry ``step``), ``"P-C"``
(errors without ``step``), ``"P-B"`` (no ``persons_queued_for_deletion``), ``"P-A"`` (a bare 202).

P-A (``posthog/api/person.py`` at ``a8b2677e``) is another program, not only another shape: it
reads ``distinct_ids`` (else ``ids``) and ``delete_events`` only (no ``keep_person``, no
``delete_recordings``), and deletes the persons one by one inside the request, queueing each
one's events after it; nothing catches a failure, so a person it cannot delete ends the loop
with a 500, the persons before it deleted and those after it untouched.
``queue_person_deletions`` is ``settings.PERSON_BULK_DELETE_ASYNC`` (P-C/P-D only): persons are
counted as queued and deleted later, in chunks of 100, by a background task.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._errors import server_error, validation_error
from ._fields import FieldError, field_error, to_list
from ._persons import person_from_path
from ._request import Reply, Req, parse_uuid
from ._store import FakePerson, ProjectData

__all__ = ["Deletions", "BULK_DELETE_VERSIONS", "DELETION_STEPS", "BULK_DELETE_MAX", "CHUNK"]

BULK_DELETE_VERSIONS = ("P-A", "P-B", "P-C", "P-D")
"""The PostHog versions whose ``bulk_delete`` answers the offline server can give, oldest (P-A)
to newest (P-D): ``FakePostHog(bulk_delete_version=...)``."""
DELETION_STEPS = ("resolve_persons", "fetch_distinct_ids", "queue_training_deletion",
                  "queue_recording_deletion", "tombstone_clickhouse", "delete_postgres", "log_activity")
"""The failure steps of ``posthog/models/person/bulk_delete.py`` (P-D's ``deletion_errors[].step``)."""
BULK_DELETE_MAX = 1000
#: ``PERSONS_PER_DELETION_TASK``: the queued path deletes in Celery tasks of this many persons.
CHUNK = 100


class Deletions:
    def __init__(self, version: str = "P-D", queued: bool = False, delay: float = 0.2) -> None:
        if version not in BULK_DELETE_VERSIONS:
            raise ValueError(f"bulk_delete_version must be one of {', '.join(BULK_DELETE_VERSIONS)}")
        if queued and version in ("P-A", "P-B"):
            raise ValueError(f"queued person deletions exist only from P-C on, not in {version}")
        self.version = version
        self.queued = queued
        self.delay = delay
        self.ids_deleted = 0
        #: person uuid -> the step at which its deletion fails
        self.failing: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def fail_deletion_of(self, person_uuid: str, step: str = "delete_postgres") -> None:
        if step not in DELETION_STEPS:
            raise ValueError(f"step must be one of {', '.join(DELETION_STEPS)}")
        self.failing[str(person_uuid).lower()] = step

    # -- handlers ------------------------------------------------------------------------------

    def destroy(self, req: Req) -> Reply:
        """202, no body. A flag counts when its name is present, whatever its value."""
        person = person_from_path(req)
        self._delete(req, [person], delete_events="delete_events" in req.query,
                     delete_recordings="delete_recordings" in req.query,
                     keep_person="keep_person" in req.query)
        return 202, None

    def bulk_delete(self, req: Req) -> Reply:
        """JSON body only; flags are the truth value of the body field (``"false"`` is true)."""
        body = req.body()
        distinct_ids, ids = body.get("distinct_ids"), body.get("ids")
        if distinct_ids and ids and self.version != "P-A":
            raise validation_error("You must provide either distinct_ids or ids, not both")
        for name, value in (("distinct_ids", distinct_ids), ("ids", ids)):
            if value:
                try:
                    to_list(value)
                except FieldError as err:
                    raise field_error(name, err) from None
                if len(value) > BULK_DELETE_MAX:
                    raise validation_error(f"You can only pass {BULK_DELETE_MAX} {name} in one call")
        if not distinct_ids and not ids:
            raise validation_error("You need to specify either distinct_ids or ids")
        if self.version == "P-A":  # ``if distinct_ids := ...: ... elif ids := ...``
            persons = _resolve(req.project_data, [] if distinct_ids else ids or [], distinct_ids or [])
            self._delete_one_by_one(req, persons, delete_events=bool(body.get("delete_events")))
            return 202, None
        persons = _resolve(req.project_data, ids or [], distinct_ids or [])
        summary = self._delete(req, persons, delete_events=bool(body.get("delete_events")),
                               delete_recordings=bool(body.get("delete_recordings")),
                               keep_person=bool(body.get("keep_person")))
        return 202, summary

    def _delete_one_by_one(self, req: Req, persons: list[FakePerson], *,
                           delete_events: bool) -> None:
        """P-A's loop: delete, then queue the person's events; a failure is a 500 midway."""
        project = req.project_data
        for person in persons:
            if person.uuid in self.failing:
                raise server_error()
            project.delete_person(person)
            self.ids_deleted += 1
            if delete_events:
                project.queue_event_deletion(person.uuid, req.now)

    # -- the shared helper (``_bulk_delete_persons``) -----------------------------------------------

    def _delete(self, req: Req, persons: list[FakePerson], *, delete_events: bool,
                delete_recordings: bool, keep_person: bool) -> dict[str, Any]:
        project = req.project_data
        if delete_events:
            for person in persons:
                project.queue_event_deletion(person.uuid, req.now)
        if delete_recordings:
            project.recording_deletions.update(p.uuid for p in persons)
        deleted, queued, errors = 0, 0, []
        if self.queued:
            if not keep_person:
                queued = len(persons)
                doomed = list(persons)
                req.after_send.append(lambda: self._schedule(project, doomed))
        elif not keep_person:
            for person in persons:
                step = self.failing.get(person.uuid)
                if step is None:
                    project.delete_person(person)
                    deleted += 1
                else:
                    errors.append({"person_uuid": person.uuid, "step": step}
                                  if self.version == "P-D" else {"person_uuid": person.uuid})
            self.ids_deleted += deleted
        summary: dict[str, Any] = {"persons_found": len(persons), "persons_deleted": deleted}
        if self.version != "P-B":
            summary["persons_queued_for_deletion"] = queued
        summary.update(events_queued_for_deletion=delete_events and bool(persons),
                       recordings_queued_for_deletion=delete_recordings and bool(persons),
                       deletion_errors=errors)
        return summary

    # -- the queued path's background work ------------------------------------------------------

    def _schedule(self, project: ProjectData, persons: list[FakePerson]) -> None:
        loop = asyncio.get_running_loop()
        for start in range(0, len(persons), CHUNK):
            task = loop.create_task(self._delete_later(project, persons[start: start + CHUNK]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _delete_later(self, project: ProjectData, chunk: list[FakePerson]) -> None:
        await asyncio.sleep(self.delay)
        for person in chunk:
            if person.uuid not in self.failing and not person.deleted:  # failures are never reported
                project.delete_person(person)
                self.ids_deleted += 1

    async def settle(self) -> None:
        """Wait until every queued deletion has run."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()


def _resolve(project: ProjectData, ids: list[Any], distinct_ids: list[Any]) -> list[FakePerson]:
    """The persons the ids name, each once; ids that match nobody are simply not counted."""
    found: dict[str, FakePerson] = {}
    for value in ids:
        key = parse_uuid(value)
        person = project.persons.get(key) if key else None
        if person is not None:
            found.setdefault(person.uuid, person)
    for value in distinct_ids:
        person = project.by_distinct_id.get(value) if isinstance(value, str) else None
        if person is not None:
            found.setdefault(person.uuid, person)
    return list(found.values())
