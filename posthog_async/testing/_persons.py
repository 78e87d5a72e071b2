"""Fake-server handlers for ``persons/``, following the rules in PostHog's ``PersonViewSet``."""

from __future__ import annotations

import json
from typing import Any

from ._errors import FakeAPIError, not_found, validation_error
from ._request import Reply, Req, flag, is_uuid, paginate, to_csv
from ._store import FakePerson

__all__ = ["PersonHandlers"]

BULK_DELETE_MAX = 1000
BATCH_DISTINCT_IDS_KEEP = 200


def _person(req: Req) -> FakePerson:
    key = req.params["id"]
    person = req.project_data.persons.get(key.lower()) if is_uuid(key) else None
    if person is None:
        raise not_found()
    return person


def _one(req: Req, body: Any) -> Reply:
    return (200, to_csv([body])) if req.wants_csv and isinstance(body, dict) else (200, body)


class PersonHandlers:
    """Handlers are methods so the server can hand them options (queued deletes, short pages)."""

    def __init__(self) -> None:
        self.short_pages = False
        self.queue_person_deletions = False
        self.ids_deleted = 0

    # -- list / retrieve / update / delete ---------------------------------------------------

    def list(self, req: Req) -> Reply:
        project = req.project_data
        q = req.query
        persons: list[FakePerson]
        if "distinct_id" in q:
            hit = project.by_distinct_id.get(q["distinct_id"])
            persons = [hit] if hit else []
        else:
            persons = project.ordered()
            if "email" in q:
                persons = [p for p in persons if p.properties.get("email") == q["email"]]
            if q.get("search"):
                term = q["search"].lower()
                persons = [
                    p for p in persons
                    if term in str(p.properties.get("email", "")).lower() or term in p.distinct_ids
                ]
            if q.get("properties"):
                persons = _filter_properties(persons, q["properties"])
        return paginate(req, persons, FakePerson.to_json, short_pages=self.short_pages)

    def retrieve(self, req: Req) -> Reply:
        return _one(req, _person(req).to_json())

    def update(self, req: Req) -> Reply:
        person = _person(req)
        body = req.json_body()
        if "properties" in body:
            if not isinstance(body["properties"], dict):
                raise validation_error("Expected a dictionary of items.", attr="properties")
            person.mutable_properties().update(body["properties"])
        if "name" in body:
            person.name = str(body["name"])
        return 200, person.to_json()

    def destroy(self, req: Req) -> Reply:
        person = _person(req)
        q = req.query
        if flag(q.get("keep_person", False)):
            if flag(q.get("delete_events", False)):
                req.project_data.queue_event_deletion(person.uuid, req.now)
        else:
            req.project_data.delete_person(person, delete_events=flag(q.get("delete_events", False)),
                                        now=req.now)
            self.ids_deleted += 1
        return 202, None

    def update_property(self, req: Req) -> Reply:
        person = _person(req)
        body = req.json_body()
        for field in ("key", "value"):
            if field not in body:
                raise validation_error("This field is required.", attr=field, code="required")
        person.mutable_properties()[str(body["key"])] = body["value"]
        return 202, None

    def delete_property(self, req: Req) -> Reply:
        person = _person(req)
        key = req.json_body().get("$unset")
        if not key:
            raise validation_error("This field is required.", attr="$unset", code="required")
        person.mutable_properties().pop(str(key), None)
        return 202, None

    def split(self, req: Req) -> Reply:
        person = _person(req)
        body = req.json_body()
        main, to_split = body.get("main_distinct_id"), body.get("distinct_ids_to_split")
        if main is not None and to_split is not None:
            raise validation_error("Pass main_distinct_id or distinct_ids_to_split, not both.")
        if to_split is not None and not isinstance(to_split, list):
            raise validation_error("Expected a list of items.", attr="distinct_ids_to_split")
        req.project_data.split(person, main, list(to_split or []))
        return 201, {"success": True}

    def activity(self, req: Req) -> Reply:
        if "id" in req.params:
            _person(req)
        return 200, {"results": [], "next": None, "previous": None, "total_count": 0}

    def properties_timeline(self, req: Req) -> Reply:
        person = _person(req)
        point = {"timestamp": person.created_at(), "properties": person.properties,
                 "relevant_event_count": 1}
        return 200, {"points": [point], "crucial_property_keys": [],
                     "effective_date_from": person.created_at(), "effective_date_to": req.now}

    # -- many persons -------------------------------------------------------------------------

    def bulk_delete(self, req: Req) -> Reply:
        project = req.project_data
        body = {**dict(req.query), **req.json_body()}
        ids, distinct_ids = body.get("ids"), body.get("distinct_ids")
        if ids and distinct_ids:
            raise validation_error("You must pass either ids or distinct_ids, not both")
        if not ids and not distinct_ids:
            raise validation_error("You must pass either ids or distinct_ids")
        given = ids or distinct_ids
        if isinstance(given, str):
            given = json.loads(given) if given.startswith("[") else given.split(",")
        if not isinstance(given, list):
            raise validation_error("Expected a list of items.", attr="ids" if ids else "distinct_ids")
        if len(given) > BULK_DELETE_MAX:
            raise validation_error(f"You can only pass {BULK_DELETE_MAX} ids in one call")
        found: dict[str, FakePerson] = {}
        for value in given:
            if ids:
                person = project.persons.get(str(value).lower()) if is_uuid(value) else None
            else:
                person = project.by_distinct_id.get(str(value))
            if person is not None:
                found[person.uuid] = person
        delete_events = flag(body.get("delete_events", False))
        delete_recordings = flag(body.get("delete_recordings", False))
        keep = flag(body.get("keep_person", False))
        for person in found.values():
            if keep:
                if delete_events:
                    project.queue_event_deletion(person.uuid, req.now)
            else:
                project.delete_person(person, delete_events=delete_events, now=req.now)
        deleted = 0 if keep else len(found)
        self.ids_deleted += deleted
        queued = self.queue_person_deletions and not keep
        return 202, {
            "persons_found": len(found),
            "persons_deleted": 0 if queued else deleted,
            **({"persons_queued_for_deletion": deleted} if queued else {}),
            "events_queued_for_deletion": len(found) if delete_events else 0,
            "recordings_queued_for_deletion": len(found) if delete_recordings else 0,
            "deletion_errors": [],
        }

    def batch_by_distinct_ids(self, req: Req) -> Reply:
        project = req.project_data
        ids = req.json_body().get("distinct_ids") or []
        if not isinstance(ids, list):
            raise validation_error("Expected a list of items.", attr="distinct_ids")
        results: dict[str, Any] = {}
        for did in ids[:BATCH_DISTINCT_IDS_KEEP]:  # the real server silently drops the rest
            person = project.by_distinct_id.get(str(did))
            if person is not None:
                results[str(did)] = person.to_json()
        return 200, {"results": results}

    def batch_by_uuids(self, req: Req) -> Reply:
        project = req.project_data
        uuids = req.json_body().get("uuids") or []
        if not isinstance(uuids, list):
            raise validation_error("Expected a list of items.", attr="uuids")
        bad = [u for u in uuids if not is_uuid(u)]
        if bad:
            raise validation_error(f"'{bad[0]}' is not a valid UUID.", attr="uuids")
        results = {}
        for u in uuids:
            person = project.persons.get(str(u).lower())
            if person is not None:
                results[person.uuid] = person.to_json()
        return 200, {"results": results}

    # -- other endpoints ----------------------------------------------------------------------

    def cohorts(self, req: Req) -> Reply:
        person_id = req.query.get("person_id")
        if not person_id:
            raise validation_error("person_id is required", attr="person_id")
        return 200, {"results": []}

    def values(self, req: Req) -> Reply:
        key = req.query.get("key")
        if not key:
            raise validation_error("key is required", attr="key")
        counts: dict[Any, int] = {}
        for person in req.project_data.ordered()[:10000]:
            if key in person.properties:
                value = person.properties[key]
                if not req.query.get("value") or str(req.query["value"]).lower() in str(value).lower():
                    counts[value] = counts.get(value, 0) + 1
        results = [{"name": v, "count": c} for v, c in sorted(counts.items(), key=lambda x: -x[1])]
        return 200, {"results": results, "refreshing": False}

    def deletion_status(self, req: Req) -> Reply:
        status = req.query.get("status", "all")
        if status not in ("pending", "completed", "all"):
            raise validation_error(f'"{status}" is not a valid choice.', attr="status")
        rows = req.project_data.deletion_status
        if status != "all":
            rows = [r for r in rows if r["status"] == status]
        if req.query.get("person_uuid"):
            rows = [r for r in rows if r["person_uuid"] == req.query["person_uuid"]]
        return paginate(req, rows, dict, with_count=True)

    def reset_person_distinct_id(self, req: Req) -> Reply:
        did = req.json_body().get("distinct_id")
        if not did:
            raise validation_error("This field is required.", attr="distinct_id", code="required")
        if str(did) in req.project_data.by_distinct_id:
            raise validation_error("The distinct_id still belongs to a person.", attr="distinct_id")
        req.project_data.released_distinct_ids.add(str(did))
        return 202, None

    def properties_at_time(self, req: Req) -> Reply:
        q = req.query
        if not q.get("timestamp"):
            raise validation_error("timestamp is required", attr="timestamp")
        if bool(q.get("distinct_id")) == bool(q.get("person_id")):
            raise validation_error("Provide either distinct_id or person_id, not both.")
        project = req.project_data
        person = (project.by_distinct_id.get(q["distinct_id"]) if q.get("distinct_id")
                  else project.persons.get(q["person_id"].lower()))
        if person is None:
            raise not_found("Person not found.")
        body = person.to_json()
        body["point_in_time_metadata"] = {
            "queried_timestamp": q["timestamp"], "include_set_once": flag(q.get("include_set_once", False)),
            "distinct_id_used": q.get("distinct_id"), "person_id_used": q.get("person_id"),
            "query_mode": "distinct_id" if q.get("distinct_id") else "person_id",
            "distinct_ids_queried": person.distinct_ids, "distinct_ids_count": len(person.distinct_ids),
        }
        return 200, body

    def actors(self, req: Req) -> Reply:
        """funnel, funnel/correlation, trends, stickiness: the persons of the (fake) insight."""
        people = [p.to_json() for p in req.project_data.ordered()[:20]]
        if req.wants_csv:
            return 200, to_csv(people)
        return 200, {"results": [{"people": people, "count": len(people)}], "next": None,
                     "missing_persons": 0}

    def lifecycle(self, req: Req) -> Reply:
        for field in ("target_date", "lifecycle_type"):
            if not req.query.get(field):
                raise validation_error(f"{field} is required", attr=field)
        return self.actors(req)


def _filter_properties(persons: list[FakePerson], raw: str) -> list[FakePerson]:
    try:
        filters = json.loads(raw)
    except ValueError:
        raise validation_error("Properties are unparsable!", attr="properties") from None
    if not isinstance(filters, list):
        raise FakeAPIError(400, "validation_error", "invalid_input", "Properties must be a list")
    out = persons
    for f in filters:
        key, value, op = f.get("key"), f.get("value"), f.get("operator", "exact")
        if op == "icontains":
            out = [p for p in out if str(value).lower() in str(p.properties.get(key, "")).lower()]
        elif op == "is_set":
            out = [p for p in out if key in p.properties]
        else:
            out = [p for p in out if p.properties.get(key) == value]
    return out
