"""Handlers that read many persons: the list, batch lookups, values, cohorts, properties at a time,
and the status of queued event deletions."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ._errors import error_body, not_found, server_error, validation_error
from ._fields import FieldError, field_error, to_choice, to_uuid
from ._pages import drf_page, persons_link, to_csv
from ._persons import find_pk_or_uuid
from ._request import Reply, Req, parse_int, parse_uuid
from ._store import FakePerson

__all__ = ["PersonQueries", "MAX_LIST_ROWS", "BATCH_SIZE"]

#: ``MAX_SELECT_RETURNED_ROWS``: the most rows the persons list's query returns (newest code).
MAX_LIST_ROWS = 50_000
#: ``MAX_BATCH_SIZE`` of both batch lookups.
BATCH_SIZE = 200
_DEFAULT_LIMIT = 100
_COMPLETE_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class PersonQueries:
    """``short_pages`` drops the last row of every full page while keeping ``next``, as the real
    server does when rows vanish between its id query and the hydration: clients must follow
    ``next``."""

    def __init__(self, short_pages: bool = False) -> None:
        self.short_pages = short_pages

    def list(self, req: Req) -> Reply:
        project = req.project_data
        limit = _count_param(req, "limit") or _DEFAULT_LIMIT  # 0 means the default, as in PostHog
        offset = _count_param(req, "offset")
        if req.wants_csv:
            limit, offset = MAX_LIST_ROWS, 0
        filters = _parse_properties(req.q("properties"))
        if req.q("email"):
            filters.append({"key": "email", "value": req.q("email"), "operator": "exact"})
        include_total = "include_total" in req.query
        search = (req.q("search") or "").strip()
        from_identifier = not filters and offset == 0
        candidates: list[FakePerson]
        distinct_id = req.q("distinct_id")
        if distinct_id:
            matched = project.by_distinct_id.get(distinct_id)
            if matched is None:
                return self._page(req, [], limit, offset, 0 if include_total else None)
            if from_identifier and not search:
                return self._page(req, [matched], limit, offset, 1 if include_total else None, False)
            candidates = [matched]
        else:
            if search and from_identifier:
                exact = _exact_identifier(project.persons, project.by_distinct_id, search)
                if exact:
                    return self._page(req, exact[:limit], limit, offset,
                                      len(exact) if include_total else None, len(exact) > limit)
            candidates = project.ordered()
        if search:
            candidates = [p for p in candidates if _fuzzy(p, search.lower())]
        candidates = _apply_filters(candidates, filters)
        found = candidates[offset: offset + min(limit, MAX_LIST_ROWS)]
        return self._page(req, found, limit, offset, len(candidates) if include_total else None)

    def _page(self, req: Req, found: Sequence[FakePerson], limit: int, offset: int,
              total: int | None, has_next: bool | None = None) -> Reply:
        """``_person_list_response``: ``next`` when the query found ``limit`` ids (or as told)."""
        more = len(found) >= limit if has_next is None else has_next
        if self.short_pages and more and found:
            found = found[:-1]
        rows = [p.to_json() for p in found]
        if req.wants_csv:
            return 200, to_csv(rows)
        body: dict[str, Any] = {
            "results": rows,
            "next": persons_link(req, offset + limit) if more else None,
            "previous": persons_link(req, offset - limit) if offset - limit >= 0 else None,
        }
        if total is not None:
            body["count"] = total
        return 200, body

    def values(self, req: Req) -> Reply:
        req.headers["Cache-Control"] = "max-age=10"
        key = req.q("key")
        if not key or key.startswith("$virt"):
            return 200, {"results": [], "refreshing": False}
        needle = (req.q("value") or "").lower()
        counts: dict[str, int] = {}
        shown: dict[str, Any] = {}
        for person in req.project_data.ordered()[:10_000]:
            if key in person.properties:
                value = person.properties[key]
                text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
                if needle in text.lower():
                    counts[text] = counts.get(text, 0) + 1
                    shown.setdefault(text, value)
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        return 200, {"results": [{"name": shown[t], "count": c} for t, c in ranked],
                     "refreshing": False}

    def cohorts(self, req: Req) -> Reply:
        """A missing ``person_id`` is a ``KeyError`` in PostHog, hence its 500."""
        if "person_id" not in req.query:
            raise server_error()
        if find_pk_or_uuid(req.project_data, req.q("person_id") or "") is None:
            raise not_found()
        return 200, {"results": []}

    def properties_at_time(self, req: Req) -> Reply:
        distinct_id, person_id = req.q("distinct_id"), req.q("person_id")
        stamp = req.q("timestamp")
        include_set_once = (req.q("include_set_once") or "false").lower() == "true"
        if distinct_id and person_id:
            raise error_body(400, "Cannot provide both distinct_id and person_id - choose one")
        if not distinct_id and not person_id:
            raise error_body(400, "Must provide either distinct_id or person_id parameter")
        if not stamp:
            raise error_body(400, "timestamp parameter is required (ISO format: 2023-06-15T14:30:00Z)")
        moment = _point_in_time(stamp)
        if moment is None:
            raise error_body(400, "Invalid timestamp format. Use ISO format like 2023-06-15T14:30:00Z")
        kind, identifier = ("distinct_id", distinct_id) if distinct_id else ("person_id", person_id)
        project = req.project_data
        if distinct_id:
            person = project.by_distinct_id.get(distinct_id)
        else:
            canonical = parse_uuid(person_id)
            if canonical is None:  # personhog refuses a non-UUID: PostHog's catch-all 500
                raise error_body(500, f"Failed to retrieve person properties for {kind} '{identifier}'")
            person = project.persons.get(canonical)
        if person is None:
            raise error_body(404, f"Person with {kind} '{identifier}' not found")
        body = person.to_json()
        body["point_in_time_metadata"] = {
            "queried_timestamp": moment.isoformat(), "include_set_once": include_set_once,
            "distinct_id_used": distinct_id, "person_id_used": person_id, "query_mode": kind,
            "distinct_ids_queried": list(person.distinct_ids),
            "distinct_ids_count": len(person.distinct_ids),
        }
        return 200, body

    def batch_by_distinct_ids(self, req: Req) -> Reply:
        ids = req.body().get("distinct_ids", [])
        if not isinstance(ids, list) or not ids:
            return 200, {"results": {}}
        by_distinct_id = req.project_data.by_distinct_id
        results: dict[str, Any] = {}
        for did in ids[:BATCH_SIZE]:  # the rest is dropped without a word
            person = by_distinct_id.get(did) if isinstance(did, str) else None
            if person is not None:
                results[did] = person.to_json(minimal=True)
        return 200, {"results": results}

    def batch_by_uuids(self, req: Req) -> Reply:
        uuids = req.body().get("uuids", [])
        if not isinstance(uuids, list) or not uuids:
            return 200, {"results": {}}
        canonical = [parse_uuid(u) for u in uuids[:BATCH_SIZE]]  # cut first, then validate
        if any(c is None for c in canonical):
            raise validation_error("One or more UUIDs are invalid.")
        persons = req.project_data.persons
        results: dict[str, Any] = {}
        for key in canonical:
            person = persons.get(key) if key else None
            if person is not None:
                results[person.uuid] = person.to_json(minimal=True)
        return 200, {"results": results}

    def deletion_status(self, req: Req) -> Reply:
        try:
            status = to_choice(req.q("status", "all"), ("pending", "completed", "all"))
        except FieldError as err:
            raise field_error("status", err) from None
        person_uuid = None
        if "person_uuid" in req.query:
            try:
                person_uuid = to_uuid(req.q("person_uuid"))
            except FieldError as err:
                raise field_error("person_uuid", err) from None
        project = req.project_data
        project.settle_event_deletions()  # rows whose (short) batch delay has passed are verified
        if person_uuid:
            row = project.deletion_rows.get(person_uuid)
            rows = [] if row is None else [row]
        else:
            rows = list(reversed(project.deletion_rows.values()))  # newest first
        if status != "all":
            rows = [r for r in rows if r["status"] == status]
        return drf_page(req, rows)


def _count_param(req: Req, name: str) -> int:
    """``Filter``'s ``int(value) if value else 0``; junk is a 400 here (PostHog would crash)."""
    raw = req.q(name)
    if not raw:
        return 0
    value = parse_int(raw)
    if value is None:
        raise validation_error("A valid integer is required.", attr=name)
    if value < 0:
        raise validation_error("Ensure this value is greater than or equal to 0.", attr=name)
    return value


def _point_in_time(stamp: str) -> datetime | None:
    """The view's own parsing: ``Z`` suffix, explicit offsets, or a naive time taken as UTC."""
    try:
        if stamp.endswith("Z"):
            return datetime.fromisoformat(stamp[:-1]).replace(tzinfo=timezone.utc)
        if "+" in stamp or stamp.count("-") > 2:
            return datetime.fromisoformat(stamp)
        return datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _exact_identifier(persons: dict[str, FakePerson], by_distinct_id: dict[str, FakePerson],
                      term: str) -> list[FakePerson]:
    """A complete email address or a canonical UUID names one person: by UUID, then by distinct id."""
    is_uuid = parse_uuid(term) == term.lower() and len(term) == 36
    if not is_uuid and not _COMPLETE_EMAIL.match(term):
        return []
    matches = []
    if is_uuid and term.lower() in persons:
        matches.append(persons[term.lower()])
    hit = by_distinct_id.get(term)
    if hit is not None and hit not in matches:
        matches.append(hit)
    return matches


def _fuzzy(person: FakePerson, term: str) -> bool:
    props = person.properties
    return (term in str(props.get("email", "")).lower() or term in str(props.get("name", "")).lower()
            or any(term in d.lower() for d in person.distinct_ids) or term == person.uuid
            or term == str(person.id))


def _parse_properties(raw: str | None) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        filters = json.loads(raw)
    except ValueError:
        raise validation_error("Properties are unparsable!", attr="properties") from None
    if isinstance(filters, dict) and isinstance(filters.get("values"), list):
        filters = filters["values"]
    if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
        raise validation_error("Properties are unparsable!", attr="properties")
    return list(filters)


def _apply_filters(persons: list[FakePerson], filters: list[dict[str, Any]]) -> list[FakePerson]:
    out = persons
    for f in filters:
        key, value, op = f.get("key"), f.get("value"), f.get("operator", "exact")
        if not isinstance(key, str):
            continue
        if op == "icontains":
            out = [p for p in out if str(value).lower() in str(p.properties.get(key, "")).lower()]
        elif op == "is_set":
            out = [p for p in out if key in p.properties]
        elif op == "is_not_set":
            out = [p for p in out if key not in p.properties]
        elif isinstance(value, list):
            out = [p for p in out if p.properties.get(key) in value]
        else:
            out = [p for p in out if p.properties.get(key) == value]
    return out
