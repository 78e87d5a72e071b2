"""The fake server's route table: for each path, the methods it answers, with their handler, the API
key scopes they need and the rate-limit bucket they count against.

Paths are matched in table order and the first match wins, as Django resolves URLs (so
``DELETE persons/values/`` is a 405, not a delete of person "values"). The trailing slash is
optional, as in PostHog's ``DefaultRouterPlusPlus``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from ._definitions import DefinitionHandlers
from ._deletions import Deletions
from ._organizations import OrganizationHandlers
from ._person_queries import PersonQueries
from ._persons import PersonHandlers
from ._query import QueryHandlers
from ._request import Reply, Req
from ._sharing import SharingHandlers
from ._subscriptions import SubscriptionHandlers
from ._users import UserHandlers

__all__ = ["Route", "PathRoutes", "Handlers", "build_routes", "ACTOR_PATHS", "Handler", "options_answer"]

Handler = Callable[[Req], "Reply | Awaitable[Reply]"]
#: ``guard(key, path params)``: the team/organisation checks PostHog makes before the scopes.
Guard = Callable[[str, "dict[str, str]"], None]
_PROJECT = r"^/api/(?P<family>projects|environments)/(?P<project>[^/.]+)/"
_ID = r"(?P<id>[^/.]+)"
_RECORDING = r"session_recordings/(?P<recording_id>[^/.]+)/sharing"

#: The legacy person-actor endpoints ("actors"): declared without scopes, so refused to API keys.
ACTOR_PATHS = ("persons/funnel", "persons/funnel/correlation", "persons/trends", "persons/lifecycle",
               "persons/stickiness")


@dataclass(frozen=True)
class Route:
    method: str
    handler: Handler
    #: Scopes a key needs; ``None``: the action declares none, so personal API keys are refused.
    scopes: tuple[str, ...] | None
    #: The rate-limit bucket (``None``: not throttled per key).
    bucket: str | None
    #: Whether the view parses form bodies too (PostHog's persons views take JSON only).
    forms: bool = True


@dataclass
class PathRoutes:
    name: str
    pattern: re.Pattern[str]
    methods: dict[str, Route] = field(default_factory=dict)
    project: bool = True
    #: ``?format=`` values the view renders (DRF answers 404 for any other).
    formats: tuple[str, ...] = ("json",)
    #: Checks of the key's team/organisation limits, run before its scopes are checked.
    guard: Guard | None = None


@dataclass
class Handlers:
    """Every handler the table routes to, by resource."""

    persons: PersonHandlers
    queries: PersonQueries
    deletions: Deletions
    definitions: DefinitionHandlers
    subscriptions: SubscriptionHandlers
    sharing: SharingHandlers
    users: UserHandlers
    organizations: OrganizationHandlers
    #: The query API (``query/``); its handlers throttle by query kind themselves.
    query_api: QueryHandlers | None = None


def build_routes(h: Handlers) -> list[PathRoutes]:
    p, q, d = h.persons, h.queries, h.deletions
    defs, subs, share, users = h.definitions, h.subscriptions, h.sharing, h.users
    read, write = ("person:read",), ("person:write",)
    table: list[PathRoutes] = []

    def add(path: str, *methods: tuple[str, Handler | None, tuple[str, ...] | None, str | None],
            families: str = "projects|environments", forms: bool = True, project: bool = True,
            guard: Guard | None = None) -> None:
        regex = (_PROJECT.replace("projects|environments", families) if project else "^/api/")
        name = re.sub(r"\(\?P<(\w+)>\[\^/\.\]\+\)", r":\1", path) + "/"
        entry = PathRoutes(name, re.compile(regex + path + "/?$"), project=project,
                           formats=("json",) if forms else ("json", "csv"), guard=guard)
        for method, handler, scopes, bucket in methods:
            entry.methods[method] = Route(method, handler or _refused, scopes, bucket, forms)
        table.append(entry)

    def persons(path: str, *methods: tuple[str, Handler | None, tuple[str, ...] | None, str | None]) -> None:
        add(path, *methods, forms=False)

    persons("persons", ("GET", q.list, read, "persons"),
            ("POST", p.create, write, "persons"))
    persons("persons/activity", ("GET", p.activity, ("activity_log:read",), "persons"))
    persons("persons/bulk_delete", ("POST", d.bulk_delete, write, "person_deletes"))
    persons("persons/batch_by_distinct_ids",
            ("POST", q.batch_by_distinct_ids, read, "persons"))
    persons("persons/batch_by_uuids", ("POST", q.batch_by_uuids, read, "persons"))
    persons("persons/cohorts", ("GET", q.cohorts, ("person:read", "cohort:read"), "persons"))
    persons("persons/values", ("GET", q.values, read, "persons"))
    persons("persons/deletion_status", ("GET", q.deletion_status, read, "persons"))
    persons("persons/reset_person_distinct_id",
            ("POST", p.reset_person_distinct_id, write, "persons"))
    persons("persons/properties_at_time", ("GET", q.properties_at_time, read, "persons"))
    persons("persons/funnel/correlation", ("GET", None, None, None), ("POST", None, None, None))
    persons("persons/funnel", ("GET", None, None, None), ("POST", None, None, None))
    for actor in ("persons/trends", "persons/lifecycle", "persons/stickiness"):
        persons(actor, ("GET", None, None, None))
    persons(f"persons/{_ID}", ("GET", p.retrieve, read, "persons"),
            ("PATCH", p.update, write, "persons"),
            ("PUT", p.update, write, "persons"),
            ("DELETE", d.destroy, write, "person_deletes"))
    persons(f"persons/{_ID}/activity", ("GET", p.activity, ("activity_log:read",), "persons"))
    persons(f"persons/{_ID}/update_property", ("POST", p.update_property, write, "persons"))
    persons(f"persons/{_ID}/delete_property", ("POST", p.delete_property, write, "persons"))
    persons(f"persons/{_ID}/split", ("POST", p.split, write, "persons"))
    persons(f"persons/{_ID}/delete_events", ("POST", p.delete_events, write, "person_deletes"))
    persons(f"persons/{_ID}/delete_recordings",
            ("POST", p.delete_recordings, write, "person_deletes"))
    persons(f"persons/{_ID}/properties_timeline", ("GET", None, None, None))

    dread, dwrite = ("property_definition:read",), ("property_definition:write",)
    add("property_definitions", ("GET", defs.list, dread, "general"), families="projects")
    add("property_definitions/seen_together", ("GET", defs.seen_together, dread, "general"),
        families="projects")
    add(f"property_definitions/{_ID}", ("GET", defs.retrieve, dread, "general"),
        ("PATCH", defs.update, dwrite, "general"),
        ("PUT", defs.update, dwrite, "general"),
        ("DELETE", defs.destroy, dwrite, "general"), families="projects")

    sread, swrite = ("subscription:read",), ("subscription:write",)
    add("subscriptions", ("GET", subs.list, sread, "general"),
        ("POST", subs.create, swrite, "general"))
    add(f"subscriptions/{_ID}", ("GET", subs.retrieve, sread, "general"),
        ("PATCH", subs.update, swrite, "general"),
        ("PUT", subs.update, swrite, "general"),
        ("DELETE", subs.destroy, swrite, "general"))

    cread, cwrite = ("sharing_configuration:read",), ("sharing_configuration:write",)
    add(_RECORDING, ("GET", share.get, cread, "general"),
        ("PATCH", share.patch, cwrite, "general"))
    add(f"{_RECORDING}/passwords", ("POST", share.create_password, cwrite, "general"))
    add(f"{_RECORDING}/passwords/(?P<password_id>[^/.]+)",
        ("DELETE", share.delete_password, cwrite, "general"))
    add(f"{_RECORDING}/refresh", ("POST", share.refresh, cwrite, "general"))

    add("integrations/domain-connect/check", ("GET", None, None, None))

    if h.query_api is not None:  # every action needs only query:read (QueryViewSet)
        qa, qread = h.query_api, ("query:read",)
        add("query", ("POST", qa.create, qread, None))
        add("query/(?P<kind>[A-Z][A-Za-z]*)", ("POST", qa.create_with_kind, qread, None))
        add(f"query/{_ID}", ("GET", qa.retrieve, qread, None), ("DELETE", qa.destroy, qread, None))

    add("users", ("GET", users.list, ("user:read",), None), project=False)
    add("users/(?P<uuid>[^/.]+)", ("GET", users.retrieve, ("user:read",), None),
        ("PATCH", users.update, ("user:write",), None),
        ("PUT", users.update, ("user:write",), None),
        ("DELETE", users.destroy, ("user:write",), None), project=False)
    _organization_routes(add, h.organizations)
    return table


def _organization_routes(add: Callable[..., None], o: OrganizationHandlers) -> None:
    """The key's record, organisations and project listings: PostHog's default ``burst`` and
    ``sustained`` throttles (the ``general`` bucket); the key's record needs no scope."""
    refused = [(m, o.key_refused, (), "general") for m in ("PATCH", "PUT", "DELETE")]
    add("personal_api_keys", ("GET", o.key_refused, (), "general"),
        ("POST", o.key_refused, (), "general"), project=False)
    add("personal_api_keys/(?P<key_id>[^/.]+)", ("GET", o.key_retrieve, (), "general"), *refused,
        project=False)
    org, proj = ("organization:read",), ("project:read",)
    add("organizations", ("GET", o.organizations, org, "general"), project=False,
        guard=o.guard_listing)
    add("organizations/(?P<organization>[^/.]+)/projects",
        ("GET", o.organization_projects, proj, "general"), project=False,
        guard=o.guard_organization)
    add("organizations/(?P<organization>[^/.]+)/projects/(?P<id>[^/.]+)",
        ("GET", o.organization_project, proj, "general"), project=False,
        guard=o.guard_organization)
    add(f"organizations/{_ID}", ("GET", o.organization, org, "general"), project=False,
        guard=o.guard_listing)
    add("projects", ("GET", o.projects, proj, "general"), project=False, guard=o.guard_listing)
    add(f"projects/{_ID}", ("GET", o.project, proj, "general"), project=False,
        guard=o.guard_project)
    add("environments", ("GET", o.environments, proj, "general"), project=False,
        guard=o.guard_listing)


def _refused(req: Req) -> Reply:  # pragma: no cover - the server refuses before calling it
    raise AssertionError("a route without scopes is refused before its handler runs")


def options_answer(request: web.Request, entry: PathRoutes) -> tuple[Req, Reply]:
    """DRF's ``SimpleMetadata`` answer to OPTIONS."""
    allowed = [*entry.methods, *(["HEAD"] if "GET" in entry.methods else []), "OPTIONS"]
    req = Req(request.method, request.url, request.query, {}, None, "", "")
    req.headers["Allow"] = ", ".join(allowed)
    renders = ["application/json"] + (["text/csv"] if "csv" in entry.formats else [])
    parses = ["application/json"] + ([] if "csv" in entry.formats else
                                     ["application/x-www-form-urlencoded", "multipart/form-data"])
    return req, (200, {"name": entry.name, "description": "", "renders": renders, "parses": parses})
