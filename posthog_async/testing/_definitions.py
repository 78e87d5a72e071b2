"""Handlers for ``property_definitions/`` (projects family only), after PostHog's
``PropertyDefinitionViewSet`` with the enterprise serializer and without the paid taxonomy feature."""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from ._errors import FakeAPIError, not_found, validation_error
from ._fields import FieldError, field_error, to_bool, to_char, to_choice, to_int, to_list
from ._pages import drf_limit_offset, drf_page
from ._request import Reply, Req, parse_uuid
from ._store import ProjectData
from ._users import OWNER_BASIC

__all__ = ["DefinitionHandlers", "seed_definitions"]

TYPES = {"event": 1, "person": 2, "group": 3, "session": 4}
PROPERTY_TYPES = ("DateTime", "String", "Numeric", "Boolean", "Duration")
GROUP_TYPES_LIMIT = 5
#: Event properties PostHog never lists (``ALWAYS_EXCLUDED_EVENT_PROPERTIES``, abridged).
ALWAYS_EXCLUDED = {"distinct_id", "$set", "$set_once", "$initial_referrer", "$initial_referring_domain",
                   "$groups", "$group_type", "$group_key", "$group_set"}
#: Virtual properties from PostHog's taxonomy, added to the last page of person/group lists.
VIRTUAL = {
    "person": (("$virt_initial_channel_type", "String"), ("$virt_initial_referring_domain_type", "String"),
               ("$virt_revenue", "Numeric"), ("$virt_revenue_last_30_days", "Numeric")),
    "group": (("$virt_revenue", "Numeric"), ("$virt_revenue_last_30_days", "Numeric")),
}
_SEED = (("$browser", "event", "String"), ("$current_url", "event", "String"),
         ("revenue", "event", "Numeric"), ("distinct_id", "event", "String"),
         ("email", "person", "String"), ("plan", "person", "String"),
         ("industry", "group", "String"), ("$session_duration", "session", "Duration"))
#: (event, property) pairs the project has seen, for ``seen_together`` and ``event_names``.
SEEN = {("$pageview", "$browser"), ("$pageview", "$current_url"), ("purchase", "revenue"),
        ("purchase", "$browser")}
_PAYMENT_REQUIRED = ("This feature is part of the premium PostHog offering. To use it, subscribe to "
                     "PostHog Cloud with a generous free tier.")
_INTERNAL = ("type", "group_type_index")


def seed_definitions(project: ProjectData) -> None:
    for i, (name, kind, ptype) in enumerate(_SEED):
        did = str(uuidlib.UUID(int=project.id * 1000 + i, version=4))
        project.property_definitions[did] = {
            "id": did, "name": name, "description": None, "tags": [],
            "is_numerical": ptype == "Numeric", "updated_at": "2024-01-01T00:00:00Z",
            "updated_by": OWNER_BASIC, "is_seen_on_filtered_events": None, "property_type": ptype,
            "verified": False, "verified_at": None, "verified_by": OWNER_BASIC, "hidden": False,
            "type": TYPES[kind], "group_type_index": 0 if kind == "group" else None,
        }


def _public(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in definition.items() if k not in _INTERNAL}


def _query(req: Req) -> dict[str, Any]:
    """``PropertyDefinitionQuerySerializer``: field errors in field order, then ``validate()``."""
    q: dict[str, Any] = {}
    checks: tuple[tuple[str, Callable[[Any], Any]], ...] = (
        ("search", lambda v: to_char(v, allow_blank=True)),
        ("type", lambda v: to_choice(v, TYPES)),
        ("group_type_index", lambda v: to_int(v, minimum=None, maximum=None)),
        ("properties", to_char), ("is_numerical", lambda v: to_bool(v, allow_null=True)),
        ("is_feature_flag", lambda v: to_bool(v, allow_null=True)), ("event_names", to_char),
        ("filter_by_event_names", lambda v: to_bool(v, allow_null=True)),
        ("excluded_properties", to_char), ("exclude_core_properties", to_bool),
        ("exclude_hidden", to_bool),
    )
    for name, check in checks:
        if name in req.query:
            try:
                q[name] = check(req.q(name))
            except FieldError as err:
                raise field_error(name, err) from None
    kind, gti = q.setdefault("type", "event"), q.get("group_type_index")
    if kind == "group" and gti is None:
        raise validation_error("`group_type_index` must be set for `group` type")
    if kind != "group" and gti is not None:
        raise validation_error("`group_type_index` can only set for `group` type")
    if gti and not 0 <= gti < GROUP_TYPES_LIMIT:
        raise validation_error("Invalid value for `group_type_index`")
    if kind != "event" and q.get("event_names"):
        raise validation_error("`event_names` can only be set for `event` type")
    for name in ("event_names", "excluded_properties"):  # PostHog would crash on bad JSON here
        if q.get(name):
            try:
                q[name] = [str(v) for v in to_list(json.loads(q[name]))]
            except (ValueError, FieldError):
                raise validation_error(f"`{name}` must be a JSON-encoded list", attr=name) from None
    return q


def _matches(d: dict[str, Any], q: dict[str, Any]) -> bool:
    name = d["name"]
    if q.get("properties") and name not in q["properties"].split(","):
        return False
    if q.get("is_numerical") and (not d["is_numerical"] or name in ("distinct_id", "timestamp")):
        return False
    flag = q.get("is_feature_flag")
    if flag is not None and name.startswith("$feature/") != flag:
        return False
    words = (q.get("search") or "").lower().split()
    if any(w not in name.lower() for w in words):
        return False
    if name in (q.get("excluded_properties") or ()):
        return False
    if q["type"] == "event":
        if name in ALWAYS_EXCLUDED or (q.get("exclude_core_properties") and name.startswith("$")):
            return False
    return not (q.get("exclude_hidden") and d.get("hidden"))


class DefinitionHandlers:
    def list(self, req: Req) -> Reply:
        q = _query(req)
        events = q.get("event_names") or []
        rows = []
        for d in req.project_data.property_definitions.values():
            if d["type"] != TYPES[q["type"]] or (q["type"] == "group"
                                                 and d["group_type_index"] != q["group_type_index"]):
                continue
            if not _matches(d, q):
                continue
            seen = any((e, d["name"]) in SEEN for e in events) if events else None
            if q.get("filter_by_event_names") and events and not seen:
                continue
            rows.append({**_public(d), "is_seen_on_filtered_events": seen})
        rows.sort(key=lambda r: (not r["is_seen_on_filtered_events"], not r["verified"], r["name"]))
        status, body = drf_page(req, rows)
        if q["type"] in VIRTUAL:
            virtual = [v for v in (_virtual(n, t) for n, t in VIRTUAL[q["type"]]) if _matches(v, q)]
            if drf_limit_offset(req)[1] + len(body["results"]) >= body["count"]:  # the last page
                body["results"].extend(virtual)
            body["count"] += len(virtual)
        return status, body

    def _find(self, req: Req) -> dict[str, Any]:
        key = parse_uuid(req.params["id"])
        found = req.project_data.property_definitions.get(key) if key else None
        if found is None:  # PostHog crashes (500) on a malformed id; the fake says 404
            raise not_found()
        return found

    def retrieve(self, req: Req) -> Reply:
        return 200, _public(self._find(req))

    def update(self, req: Req) -> Reply:
        """Only a change of ``property_type`` is free; any other change (or none) needs the paid
        ingestion-taxonomy feature: 402."""
        found = self._find(req)
        body = req.body()
        changes = _writable(body)
        if changes.get("hidden") and changes.get("verified"):
            raise validation_error("A property cannot be both hidden and verified")
        changed = {k: v for k, v in changes.items() if found.get(k) != v}
        if set(changed) != {"property_type"}:
            raise FakeAPIError(402, "server_error", "payment_required", _PAYMENT_REQUIRED)
        found["property_type"] = changed["property_type"]
        found["is_numerical"] = changed["property_type"] == "Numeric"
        found["updated_at"] = req.now
        return 200, _public(found)

    def destroy(self, req: Req) -> Reply:
        found = self._find(req)
        del req.project_data.property_definitions[found["id"]]
        return 204, None

    def seen_together(self, req: Req) -> Reply:
        events = req.query.getall("event_names", [])
        name = req.q("property_name")
        if not events:
            raise validation_error("This field is required.", attr="event_names", code="required")
        for i, event in enumerate(events):
            if not event.strip():
                raise validation_error("This field may not be blank.", attr=f"event_names__{i}",
                                       code="blank")
        if name is None:
            raise validation_error("This field is required.", attr="property_name", code="required")
        if not name.strip():
            raise validation_error("This field may not be blank.", attr="property_name", code="blank")
        return 200, {event.strip(): (event.strip(), name.strip()) in SEEN for event in events}


def _virtual(name: str, ptype: str) -> dict[str, Any]:
    return {"id": f"$builtin_{name}", "name": name, "is_numerical": ptype == "Numeric",
            "property_type": ptype, "tags": [], "virtual": True}


def _writable(body: dict[str, Any]) -> dict[str, Any]:
    """The enterprise serializer's writable fields, validated."""
    out: dict[str, Any] = {}
    checks: tuple[tuple[str, Callable[[Any], Any]], ...] = (
        ("description", lambda v: to_char(v, allow_blank=True, allow_null=True)),
        ("tags", to_list),
        ("property_type", lambda v: "" if v == "" else to_choice(v, PROPERTY_TYPES, allow_null=True)),
        ("verified", to_bool), ("hidden", lambda v: to_bool(v, allow_null=True)),
    )
    for name, check in checks:
        if name in body:
            try:
                out[name] = check(body[name])
            except FieldError as err:
                raise field_error(name, err) from None
    return out
