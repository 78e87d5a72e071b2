"""Fake-server handlers for property definitions, subscriptions, users, sharing, integrations."""

from __future__ import annotations

import json
import secrets
import uuid as uuidlib
from typing import Any

from ._errors import FakeAPIError, not_found, validation_error
from ._request import Reply, Req, flag, paginate

__all__ = ["OtherHandlers"]

PROPERTY_TYPES = {"event": 1, "person": 2, "group": 3, "session": 4}
SUBSCRIPTION_FIELDS = (
    "dashboard", "insight", "target_type", "target_value", "frequency", "interval", "byweekday",
    "bysetpos", "count", "start_date", "until_date", "deleted", "title", "invite_message",
)


class OtherHandlers:
    def __init__(self) -> None:
        self.users: list[dict[str, Any]] = [
            {"uuid": str(uuidlib.UUID(int=1, version=4)), "id": 1, "distinct_id": "owner",
             "first_name": "Owner", "last_name": "Example", "email": "owner@example.com",
             "is_email_verified": True, "is_staff": False, "date_joined": "2024-01-01T00:00:00Z"},
            {"uuid": str(uuidlib.UUID(int=2, version=4)), "id": 2, "distinct_id": "staff",
             "first_name": "Staff", "last_name": "Example", "email": "staff@example.com",
             "is_email_verified": True, "is_staff": True, "date_joined": "2024-02-01T00:00:00Z"},
        ]
        self._next_subscription = 1

    # -- property definitions ---------------------------------------------------------------

    def definitions_list(self, req: Req) -> Reply:
        q = req.query
        type_ = q.get("type", "event")
        if type_ not in PROPERTY_TYPES:
            raise validation_error(f'"{type_}" is not a valid choice.', attr="type")
        if type_ == "group" and "group_type_index" not in q:
            raise validation_error("group_type_index is required for type group",
                                   attr="group_type_index")
        defs = [d for d in req.project_data.property_definitions.values()
                if d["type"] == PROPERTY_TYPES[type_]]
        if q.get("search"):
            defs = [d for d in defs if q["search"].lower() in d["name"].lower()]
        if "is_numerical" in q:
            defs = [d for d in defs if d["is_numerical"] == flag(q["is_numerical"])]
        if flag(q.get("exclude_hidden", False)):
            defs = [d for d in defs if not d["hidden"]]
        if q.get("excluded_properties"):
            excluded = set(json.loads(q["excluded_properties"]))
            defs = [d for d in defs if d["name"] not in excluded]
        return paginate(req, defs, dict, with_count=True)

    def _definition(self, req: Req) -> dict[str, Any]:
        found = req.project_data.property_definitions.get(req.params["id"])
        if found is None:
            raise not_found()
        return found

    def definitions_retrieve(self, req: Req) -> Reply:
        return 200, self._definition(req)

    def definitions_update(self, req: Req) -> Reply:
        found = self._definition(req)
        body = req.json_body()
        for key in ("description", "tags", "verified", "hidden", "property_type"):
            if key in body:
                found[key] = body[key]
        found["updated_at"] = req.now
        return 200, found

    def definitions_destroy(self, req: Req) -> Reply:
        self._definition(req)
        del req.project_data.property_definitions[req.params["id"]]
        return 204, None

    def seen_together(self, req: Req) -> Reply:
        raw = req.query.get("event_names")
        name = req.query.get("property_name")
        if not raw or not name:
            raise validation_error("event_names and property_name are required")
        try:
            events = json.loads(raw)
        except ValueError:
            events = raw.split(",")
        known = {d["name"] for d in req.project_data.property_definitions.values()}
        return 200, {event: name in known for event in events}

    # -- subscriptions ----------------------------------------------------------------------

    def subscriptions_list(self, req: Req) -> Reply:
        subs = [s for s in req.project_data.subscriptions.values() if not s["deleted"]]
        for key in ("insight", "dashboard"):
            if req.query.get(key):
                subs = [s for s in subs if str(s.get(key)) == req.query[key]]
        if req.query.get("target_type"):
            subs = [s for s in subs if s["target_type"] == req.query["target_type"]]
        return paginate(req, subs, dict, with_count=True)

    def subscriptions_create(self, req: Req) -> Reply:
        body = req.json_body()
        for field in ("target_type", "target_value", "frequency", "start_date"):
            if not body.get(field):
                raise validation_error("This field is required.", attr=field, code="required")
        if not body.get("insight") and not body.get("dashboard"):
            raise validation_error("Either dashboard or insight is required.", attr="dashboard")
        sid = self._next_subscription
        self._next_subscription += 1
        sub = {k: body.get(k) for k in SUBSCRIPTION_FIELDS}
        sub.update(id=sid, deleted=False, interval=body.get("interval", 1), created_at=req.now,
                   created_by={"id": 1, "email": "owner@example.com"})
        req.project_data.subscriptions[sid] = sub
        return 201, sub

    def _subscription(self, req: Req) -> dict[str, Any]:
        key = req.params["id"]
        found = req.project_data.subscriptions.get(int(key)) if key.isdigit() else None
        if found is None or found["deleted"]:
            raise not_found()
        return found

    def subscriptions_retrieve(self, req: Req) -> Reply:
        return 200, self._subscription(req)

    def subscriptions_update(self, req: Req) -> Reply:
        found = self._subscription(req)
        for key, value in req.json_body().items():
            if key in SUBSCRIPTION_FIELDS:
                found[key] = value
        return 200, found

    def subscriptions_destroy(self, req: Req) -> Reply:
        raise FakeAPIError(405, "invalid_request", "method_not_allowed",
                           'Method "DELETE" not allowed.')

    # -- users -------------------------------------------------------------------------------

    def users_list(self, req: Req) -> Reply:
        users = self.users
        if req.query.get("email"):
            users = [u for u in users if u["email"] == req.query["email"]]
        if "is_staff" in req.query:
            users = [u for u in users if u["is_staff"] == flag(req.query["is_staff"])]
        return paginate(req, users, dict, with_count=True)

    def users_retrieve(self, req: Req) -> Reply:
        key = req.params["uuid"]
        if key == "@me":
            return 200, self.users[0]
        for user in self.users:
            if user["uuid"] == key:
                return 200, user
        raise not_found()

    # -- session recording sharing ------------------------------------------------------------

    def _sharing(self, req: Req) -> dict[str, Any]:
        rid = req.params["recording_id"]
        return req.project_data.sharing.setdefault(rid, {
            "created_at": req.now, "enabled": False, "access_token": secrets.token_urlsafe(16),
            "settings": None, "password_required": False, "share_passwords": [],
        })

    def sharing_get(self, req: Req) -> Reply:
        return 200, self._sharing(req)

    def sharing_password_create(self, req: Req) -> Reply:
        sharing = self._sharing(req)
        entry = {"id": secrets.token_hex(8), "note": req.json_body().get("note"),
                 "created_at": req.now, "created_by_email": "owner@example.com"}
        sharing["share_passwords"].append(entry)
        sharing["password_required"] = True
        return 200, {**entry, "password": secrets.token_urlsafe(12)}

    def sharing_password_delete(self, req: Req) -> Reply:
        sharing = self._sharing(req)
        before = len(sharing["share_passwords"])
        sharing["share_passwords"] = [
            p for p in sharing["share_passwords"] if p["id"] != req.params["password_id"]
        ]
        if len(sharing["share_passwords"]) == before:
            raise not_found()
        return 204, None

    def sharing_refresh(self, req: Req) -> Reply:
        sharing = self._sharing(req)
        sharing["access_token"] = secrets.token_urlsafe(16)
        return 200, sharing

    # -- integrations ----------------------------------------------------------------------

    def domain_connect_check(self, req: Req) -> Reply:
        domain = req.query.get("domain", "")
        return 200, {"domain": domain, "supported": False, "provider_name": None}
