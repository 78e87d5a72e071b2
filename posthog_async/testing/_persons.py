"""Handlers for one person (``persons/:id/...``), following PostHog's ``PersonViewSet``.

Writes answer at once and apply later (``req.later``), because PostHog turns them into ``$set``,
``$delete_person_property`` events or a Celery ``split_person`` task: a read right after a write
may not see it.
"""

from __future__ import annotations

from typing import Any

from ._errors import method_not_allowed, not_found, server_error, swapped_required, validation_error
from ._pages import to_csv
from ._request import Reply, Req, parse_int, parse_uuid
from ._store import FakePerson, ProjectData

__all__ = ["PersonHandlers", "person_from_path", "find_pk_or_uuid"]

#: ``MAX_UNSET_KEYS_PER_REQUEST`` in ``posthog/api/person.py``.
MAX_UNSET_KEYS = 1000
_UNSET_INVALID = "Provide '$unset' as a property key or a non-empty list of property keys."


def find_pk_or_uuid(project: ProjectData, key: str) -> FakePerson | None:
    """``get_person_by_pk_or_uuid``: a UUID, else an integer id, else nobody (never an error)."""
    canonical = parse_uuid(key)
    if canonical is not None:
        return project.persons.get(canonical)
    number = parse_int(key)
    return project.by_id.get(number) if number is not None else None


def person_from_path(req: Req) -> FakePerson:
    """``safely_get_object`` + ``get_object``: 400 for an id that is neither a UUID nor an integer,
    404 for one that matches nobody."""
    key = req.params["id"]
    if parse_uuid(key) is None and parse_int(key) is None:
        raise validation_error(
            "The ID provided does not look like a personID. If you are using a distinctId, please "
            f"use /persons?distinct_id={key} instead.")
    person = find_pk_or_uuid(req.project_data, key)
    if person is None:
        raise not_found()
    return person


def _one(req: Req, body: dict[str, Any]) -> Reply:
    """A single object: PostHog's ``PaginatedCSVRenderer`` renders its missing ``results`` as an
    empty CSV."""
    return (200, to_csv([])) if req.wants_csv else (200, body)


class PersonHandlers:
    """Retrieve and the per-person write actions."""

    def retrieve(self, req: Req) -> Reply:
        return _one(req, person_from_path(req).to_json())

    def create(self, req: Req) -> Reply:
        raise method_not_allowed("POST", (
            "Creating persons via this API is not allowed. Please create persons by sending an "
            "$identify event. See https://posthog.com/docs/product-analytics/identify for details."))

    def update(self, req: Req) -> Reply:
        """PATCH/PUT: 202, no body; the ``$set`` lands later. The body is checked before the id."""
        properties = req.body().get("properties")
        if properties is None:
            raise swapped_required("properties")
        person = person_from_path(req)
        if isinstance(properties, dict):  # anything else makes capture fail, which PostHog ignores
            updates = dict(properties)
            req.later.append(lambda: _set(person, updates))
        return 202, None

    def update_property(self, req: Req) -> Reply:
        body = req.body()
        if "value" not in body:
            raise swapped_required("value")
        key = body.get("key")
        if key is None:
            raise swapped_required("key")
        if isinstance(key, (dict, list)):
            raise validation_error("Not a valid string.", attr="key")
        person = person_from_path(req)
        updates = {str(key) if not isinstance(key, str) else key: body["value"]}
        req.later.append(lambda: _set(person, updates))
        return 202, None

    def delete_property(self, req: Req) -> Reply:
        """201 ``{"success": true}``. The body is validated first; then an unknown or malformed id is
        a 500, because PostHog raises ``Person.DoesNotExist`` itself, outside DRF."""
        body = req.body()
        if "$unset" not in body:
            raise validation_error("This field is required.", attr="$unset", code="required")
        keys = _unset_keys(body["$unset"])
        person = find_pk_or_uuid(req.project_data, req.params["id"])
        if person is None:
            raise server_error()
        req.later.append(lambda: _unset(person, keys))
        return 201, {"success": True}

    def split(self, req: Req) -> Reply:
        person = person_from_path(req)
        body = req.body()
        main = body.get("main_distinct_id")
        to_split = body.get("distinct_ids_to_split")
        if to_split is not None:
            if not isinstance(to_split, list) or not all(isinstance(d, str) for d in to_split):
                raise validation_error("must be a list of strings", attr="distinct_ids_to_split")
            if not to_split:
                raise validation_error("must not be empty", attr="distinct_ids_to_split")
            if main is not None:
                raise validation_error("main_distinct_id cannot be combined with distinct_ids_to_split")
            unknown = set(to_split) - set(person.distinct_ids)
            if unknown:
                raise validation_error(f"not on this person: {sorted(unknown)}",
                                       attr="distinct_ids_to_split")
        project = req.project_data
        split_off = list(to_split) if to_split is not None else None
        req.later.append(lambda: project.split(person, main, split_off))
        return 201, {"success": True}

    def reset_person_distinct_id(self, req: Req) -> Reply:
        """202; PostHog does not check that no live person still holds the id."""
        distinct_id = req.body().get("distinct_id")
        if not distinct_id or not isinstance(distinct_id, str):
            raise validation_error("distinct_id is required")
        req.project_data.released_distinct_ids.add(distinct_id)
        return 202, None

    def activity(self, req: Req) -> Reply:
        if "id" in req.params:
            person_from_path(req)
        return 200, {"results": [], "next": None, "previous": None, "total_count": 0}

    def delete_events(self, req: Req) -> Reply:
        """Deprecated ``POST persons/:id/delete_events/``: queue the event deletion only."""
        person = person_from_path(req)
        req.project_data.queue_event_deletion(person.uuid, req.now)
        return 202, None

    def delete_recordings(self, req: Req) -> Reply:
        person = person_from_path(req)
        req.project_data.recording_deletions.add(person.uuid)
        return 202, None


def _unset_keys(value: Any) -> list[str]:
    """``UnsetPropertyKeysField``: one non-empty key, or a list of 1 to 1000 of them."""
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and len(value) > MAX_UNSET_KEYS:
        raise validation_error(f"Ensure this field has no more than {MAX_UNSET_KEYS} elements.",
                               attr="$unset", code="max_length")
    if isinstance(value, list) and value and all(isinstance(k, str) and k for k in value):
        return list(value)
    raise validation_error(_UNSET_INVALID, attr="$unset")


def _set(person: FakePerson, updates: dict[str, Any]) -> None:
    if not person.deleted:
        person.mutable_properties().update(updates)


def _unset(person: FakePerson, keys: list[str]) -> None:
    if not person.deleted:
        props = person.mutable_properties()
        for key in keys:
            props.pop(key, None)
