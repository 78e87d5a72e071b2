"""``FakePostHog``: an in-process PostHog API on 127.0.0.1 for tests, examples and benchmarks."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import msgspec
from aiohttp import web

from ._errors import FakeAPIError
from ._limits import PRODUCTION_LIMITS, Faults, WindowThrottle
from ._others import OtherHandlers
from ._persons import PersonHandlers
from ._request import Reply, Req
from ._store import FakePerson, ProjectData

if TYPE_CHECKING:
    from .._client import AsyncPostHog

__all__ = ["FakePostHog", "ServerStats", "ALL_SCOPES"]

ALL_SCOPES = frozenset({
    "person:read", "person:write", "cohort:read", "activity_log:read",
    "property_definition:read", "property_definition:write", "subscription:read",
    "subscription:write", "user:read", "sharing_configuration:read",
    "sharing_configuration:write",
})
_PROJECT = r"^/api/(?P<family>projects|environments)/(?P<project>[^/]+)"
_ID = r"(?P<id>[^/]+)"
Hook = Callable[[web.Request], "web.StreamResponse | str | None"]


@dataclass
class ServerStats:
    """Counters a test can read."""

    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0
    throttled: int = 0
    errors_injected: int = 0
    dropped: int = 0
    bodies: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class _Key:
    scopes: frozenset[str]
    projects: frozenset[int] | None


@dataclass
class _Failure:
    status: int | None
    times: int
    method: str | None
    path_contains: str | None
    retry_after: int | None
    drop: bool

    def matches(self, request: web.Request) -> bool:
        return (self.method is None or request.method == self.method) and (
            self.path_contains is None or self.path_contains in request.path
        )


class FakePostHog:
    """An aiohttp server that answers like PostHog's private API, from memory.

    Example::

        async with FakePostHog() as server:
            server.seed_persons(1000)
            async with server.client() as ph:
                page = await ph.persons.list()

    Rate limits follow production by default (``rate_limits=`` maps ``"crud"`` and
    ``"analytics"`` to ``(requests, seconds)`` windows; ``None`` disables them).
    """

    def __init__(
        self,
        *,
        api_key: str = "phx_fake_personal_api_key",
        project_ids: Iterable[int] = (1,),
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: Mapping[str, Iterable[tuple[int, float]]] | None = PRODUCTION_LIMITS,
        faults: Faults | None = None,
        short_pages: bool = False,
        queue_person_deletions: bool = False,
        record_bodies: bool = False,
        seed: int = 0,
    ) -> None:
        self.api_key = api_key
        self.projects: dict[int, ProjectData] = {
            pid: ProjectData(pid, seed=seed + pid) for pid in project_ids
        }
        self.default_project = next(iter(self.projects))
        self.keys: dict[str, _Key] = {api_key: _Key(ALL_SCOPES, None)}
        self.host = host
        self._port = port
        self.faults = faults or Faults()
        self.stats = ServerStats()
        self.record_bodies = record_bodies
        self.persons_handlers = PersonHandlers()
        self.persons_handlers.short_pages = short_pages
        self.persons_handlers.queue_person_deletions = queue_person_deletions
        self.others = OtherHandlers()
        self._failures: list[_Failure] = []
        self._hooks: list[Hook] = []
        self._throttles: dict[str, WindowThrottle] = {}
        self.set_rate_limits(rate_limits)
        self._routes = self._build_routes()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- configuration --------------------------------------------------------------------

    def set_rate_limits(self, limits: Mapping[str, Iterable[tuple[int, float]]] | None) -> None:
        """Replace the windows (e.g. ``{"crud": [(60, 10)]}``); ``None`` turns throttling off."""
        self._throttles = {
            category: WindowThrottle(list(windows)) for category, windows in (limits or {}).items()
        }

    def add_key(self, key: str, *, scopes: Iterable[str] = ALL_SCOPES,
                projects: Iterable[int] | None = None) -> None:
        """Accept another personal API key, with only ``scopes`` and (optionally) ``projects``."""
        self.keys[key] = _Key(frozenset(scopes), None if projects is None else frozenset(projects))

    def fail_next(self, status: int | None = 503, *, times: int = 1, method: str | None = None,
                  path_contains: str | None = None, retry_after: int | None = None,
                  drop: bool = False) -> None:
        """Answer the next ``times`` matching requests with ``status`` (or drop the connection)."""
        self._failures.append(_Failure(status, times, method, path_contains, retry_after, drop))

    def add_hook(self, hook: Hook) -> None:
        """``hook(request)`` runs first on every request; a response it returns is sent as is,
        ``"drop"`` closes the connection, ``None`` lets the request through."""
        self._hooks.append(hook)

    # -- data -----------------------------------------------------------------------------

    def project(self, project_id: int | None = None) -> ProjectData:
        return self.projects[self.default_project if project_id is None else project_id]

    def seed_persons(self, n: int, *, project_id: int | None = None, prefix: str = "user-") -> range:
        """Create ``n`` persons; their distinct ids are ``f"{prefix}{i}"`` for ``i`` in the range."""
        return self.project(project_id).seed_persons(n, prefix=prefix)

    def add_person(self, distinct_ids: Iterable[str], properties: dict[str, Any] | None = None,
                   *, project_id: int | None = None) -> FakePerson:
        return self.project(project_id).add_person(distinct_ids, properties)

    @property
    def ids_deleted(self) -> int:
        return self.persons_handlers.ids_deleted

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakePostHog:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def client(self, **kwargs: Any) -> AsyncPostHog:
        """An :class:`AsyncPostHog` pointed at this server (its key, its default project)."""
        from .._client import AsyncPostHog

        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("project_id", self.default_project)
        return AsyncPostHog(host=self.url, **kwargs)

    # -- request handling -------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            delay = self.faults.delay()
            if delay:
                await asyncio.sleep(delay)
            injected = self._injected(request)
            if injected is not None:
                return injected
            status, body = await self._dispatch(request)
        except FakeAPIError as err:
            if err.status == 429:
                stats.throttled += 1
            status, body = err.status, err.body
            return _respond(status, body, err.headers)
        finally:
            stats.in_flight -= 1
        return _respond(status, body)

    def _injected(self, request: web.Request) -> web.StreamResponse | None:
        for hook in self._hooks:
            outcome = hook(request)
            if outcome == "drop":
                return self._drop(request)
            if isinstance(outcome, web.StreamResponse):
                return outcome
        for failure in self._failures:
            if failure.times > 0 and failure.matches(request):
                failure.times -= 1
                self.stats.errors_injected += 1
                if failure.drop:
                    return self._drop(request)
                assert failure.status is not None
                headers = {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
                kind = "throttled_error" if failure.status == 429 else "server_error"
                return _respond(failure.status, {"type": kind, "code": "injected",
                                                 "detail": "Injected failure.", "attr": None}, headers)
        self._failures = [f for f in self._failures if f.times > 0]
        pick = self.faults.pick()
        if pick == "drop":
            return self._drop(request)
        if isinstance(pick, int):
            self.stats.errors_injected += 1
            return _respond(pick, {"type": "server_error", "code": "error",
                                   "detail": "A server error occurred.", "attr": None})
        return None

    def _drop(self, request: web.Request) -> web.StreamResponse:
        self.stats.dropped += 1
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    async def _dispatch(self, request: web.Request) -> Reply:
        path = request.path
        allowed: list[str] = []
        for method, pattern, handler, scopes, category in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            self.stats.by_endpoint[f"{method} {_endpoint_name(pattern.pattern)}"] += 1
            key = self._authenticate(request)
            params = match.groupdict()
            project = self._project_for(params, key) if "project" in params else None
            missing = [s for s in scopes if s not in self.keys[key].scopes]
            if missing:
                raise FakeAPIError(403, "authentication_error", "permission_denied",
                                   f"API key missing required scope '{missing[0]}'")
            throttle = self._throttles.get(category)
            if throttle is not None:
                throttle.check(key)
            body = await _read_json(request)
            if self.record_bodies:
                self.stats.bodies.setdefault(f"{method} {path}", []).append(body)
            req = Req(request.method, request.url, request.query, body, params, project, key,
                      datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"))
            return handler(req)
        if allowed:
            raise FakeAPIError(405, "invalid_request", "method_not_allowed",
                               f'Method "{request.method}" not allowed.')
        raise FakeAPIError(404, "invalid_request", "not_found", "Not found.")

    def _authenticate(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        if not header:
            raise FakeAPIError(401, "authentication_error", "not_authenticated",
                               "Authentication credentials were not provided.")
        token = header[7:] if header.startswith("Bearer ") else ""
        if token not in self.keys:
            raise FakeAPIError(401, "authentication_error", "authentication_failed",
                               "Personal API key found in request Authorization header is invalid.")
        return token

    def _project_for(self, params: dict[str, str], key: str) -> ProjectData:
        raw = params["project"]
        allowed = self.keys[key].projects
        if raw == "@current":
            pid = min(allowed) if allowed else self.default_project
        elif raw.isdigit():
            pid = int(raw)
        else:
            raise FakeAPIError(404, "invalid_request", "not_found", "Project not found.")
        if pid not in self.projects:
            raise FakeAPIError(404, "invalid_request", "not_found", "Project not found.")
        if allowed is not None and pid not in allowed:
            raise FakeAPIError(403, "authentication_error", "permission_denied",
                               "You don't have access to the project.")
        return self.projects[pid]

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Callable[[Req], Reply], tuple[str, ...], str]]:
        p, o = self.persons_handlers, self.others
        read, write = ("person:read",), ("person:write",)
        analytics, crud = "analytics", "crud"
        table: list[tuple[str, str, Callable[[Req], Reply], tuple[str, ...], str]] = [
            ("GET", "/persons/", p.list, read, analytics),
            ("GET", "/persons/activity/", p.activity, ("activity_log:read",), crud),
            ("POST", "/persons/bulk_delete/", p.bulk_delete, write, crud),
            ("POST", "/persons/batch_by_distinct_ids/", p.batch_by_distinct_ids, read, analytics),
            ("POST", "/persons/batch_by_uuids/", p.batch_by_uuids, read, analytics),
            ("GET", "/persons/cohorts/", p.cohorts, ("person:read", "cohort:read"), crud),
            ("GET", "/persons/values/", p.values, read, analytics),
            ("GET", "/persons/deletion_status/", p.deletion_status, read, crud),
            ("POST", "/persons/reset_person_distinct_id/", p.reset_person_distinct_id, write, crud),
            ("GET", "/persons/properties_at_time/", p.properties_at_time, read, analytics),
            ("GET", "/persons/funnel/", p.actors, read, analytics),
            ("POST", "/persons/funnel/", p.actors, read, analytics),
            ("GET", "/persons/funnel/correlation/", p.actors, read, analytics),
            ("POST", "/persons/funnel/correlation/", p.actors, read, analytics),
            ("GET", "/persons/trends/", p.actors, read, analytics),
            ("GET", "/persons/stickiness/", p.actors, read, analytics),
            ("GET", "/persons/lifecycle/", p.lifecycle, read, analytics),
            ("GET", f"/persons/{_ID}/", p.retrieve, read, crud),
            ("PATCH", f"/persons/{_ID}/", p.update, write, crud),
            ("DELETE", f"/persons/{_ID}/", p.destroy, write, crud),
            ("GET", f"/persons/{_ID}/activity/", p.activity, ("activity_log:read",), crud),
            ("POST", f"/persons/{_ID}/update_property/", p.update_property, write, crud),
            ("POST", f"/persons/{_ID}/delete_property/", p.delete_property, write, crud),
            ("POST", f"/persons/{_ID}/split/", p.split, write, crud),
            ("GET", f"/persons/{_ID}/properties_timeline/", p.properties_timeline, read, crud),
            ("GET", "/property_definitions/", o.definitions_list, ("property_definition:read",), crud),
            ("GET", "/property_definitions/seen_together/", o.seen_together,
             ("property_definition:read",), crud),
            ("GET", f"/property_definitions/{_ID}/", o.definitions_retrieve,
             ("property_definition:read",), crud),
            ("PATCH", f"/property_definitions/{_ID}/", o.definitions_update,
             ("property_definition:write",), crud),
            ("DELETE", f"/property_definitions/{_ID}/", o.definitions_destroy,
             ("property_definition:write",), crud),
            ("GET", "/subscriptions/", o.subscriptions_list, ("subscription:read",), crud),
            ("POST", "/subscriptions/", o.subscriptions_create, ("subscription:write",), crud),
            ("GET", f"/subscriptions/{_ID}/", o.subscriptions_retrieve, ("subscription:read",), crud),
            ("PATCH", f"/subscriptions/{_ID}/", o.subscriptions_update, ("subscription:write",), crud),
            ("DELETE", f"/subscriptions/{_ID}/", o.subscriptions_destroy, ("subscription:write",), crud),
            ("GET", "/session_recordings/(?P<recording_id>[^/]+)/sharing/", o.sharing_get,
             ("sharing_configuration:read",), crud),
            ("POST", "/session_recordings/(?P<recording_id>[^/]+)/sharing/passwords/",
             o.sharing_password_create, ("sharing_configuration:write",), crud),
            ("DELETE", "/session_recordings/(?P<recording_id>[^/]+)/sharing/passwords/(?P<password_id>[^/]+)/",
             o.sharing_password_delete, ("sharing_configuration:write",), crud),
            ("POST", "/session_recordings/(?P<recording_id>[^/]+)/sharing/refresh/",
             o.sharing_refresh, ("sharing_configuration:write",), crud),
            ("GET", "/integrations/domain-connect/check/", o.domain_connect_check, (), crud),
        ]
        routes = [(m, re.compile(_PROJECT + path + "$"), h, s, c) for m, path, h, s, c in table]
        routes += [
            ("GET", re.compile(r"^/api/users/$"), o.users_list, ("user:read",), crud),
            ("GET", re.compile(r"^/api/users/(?P<uuid>[^/]+)/$"), o.users_retrieve, ("user:read",), crud),
        ]
        return routes


def _endpoint_name(pattern: str) -> str:
    """``^/api/(?P<family>...)/(?P<project>...)/persons/(?P<id>[^/]+)/$`` -> ``persons/:id/``."""
    name = pattern.removeprefix(_PROJECT).removeprefix("^/api/").removesuffix("$")
    return re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r":\1", name).lstrip("/")


async def _read_json(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise FakeAPIError(400, "validation_error", "parse_error", "Malformed JSON.") from None


def _respond(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    if body is None:
        return web.Response(status=status, headers=headers)
    if isinstance(body, str):
        return web.Response(status=status, text=body, content_type="text/csv", headers=headers)
    return web.Response(status=status, body=msgspec.json.encode(body),
                        content_type="application/json", headers=headers)
