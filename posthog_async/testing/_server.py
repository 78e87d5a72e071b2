"""``FakePostHog``: an in-process PostHog API on 127.0.0.1, with its lifecycle, dispatch and auth.

Requests go through the same stages, in the same order, as in PostHog's DRF views: URL
resolution, format, authentication, project, method, scopes, throttling, then the handler (which
parses the body only if it reads it).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._definitions import DefinitionHandlers
from ._deletions import Deletions
from ._errors import (
    NO_PERSONAL_KEYS,
    FakeAPIError,
    method_not_allowed,
    not_found,
    parse_error,
    permission_denied,
    server_error,
)
from ._faults import FaultInjector, Faults, Hook
from ._keys import FakeKey, authenticate
from ._org_knobs import OrganizationKnobs
from ._organizations import OrganizationHandlers
from ._person_queries import PersonQueries
from ._query import QueryHandlers, QueryOptions
from ._persons import PersonHandlers
from ._projects import Directory, FakeOrganization
from ._request import Reply, Req, media_type, peek_body, qget, replay_body, respond
from ._routes import Handlers, PathRoutes, build_routes, options_answer
from ._sharing import SharingHandlers
from ._stats import ServerStats
from ._store import FakePerson, ProjectData, now_iso
from ._subscriptions import SubscriptionHandlers
from ._throttle import PRODUCTION_LIMITS, RateLimiter
from ._users import _ORG_ID, UserHandlers

if TYPE_CHECKING:
    from .._client import AsyncPostHog

__all__ = ["FakePostHog", "ALL_SCOPES"]

ALL_SCOPES = frozenset({
    "person:read", "person:write", "cohort:read", "activity_log:read",
    "property_definition:read", "property_definition:write", "subscription:read",
    "subscription:write", "user:read", "user:write", "sharing_configuration:read",
    "sharing_configuration:write", "organization:read", "project:read", "query:read",
})
"""The scopes the offline server knows; its default key has all of them (``add_key`` narrows)."""
_log = logging.getLogger(__name__)


class FakePostHog(OrganizationKnobs):
    """An aiohttp server that answers like PostHog's private API, from memory.

    Example::

        async with FakePostHog() as server:
            server.seed_persons(1000)
            async with server.client() as ph:
                page = await ph.persons.list()

    Knobs: ``rate_limits`` is the whole throttling configuration, a mapping of bucket
    (``"persons"``, ``"person_deletes"``, ``"general"``) to ``(requests, seconds)`` windows; buckets
    left out are not throttled, an unknown one is a ``ValueError``, ``None`` turns throttling off
    (default ``PRODUCTION_LIMITS``). ``retry_after_header=False`` sends 429s without
    ``Retry-After``, as older servers do. ``bulk_delete_version`` (``"P-D"``, ``"P-C"``, ``"P-B"``,
    ``"P-A"``) picks bulk_delete's answer shape; ``queue_person_deletions`` deletes later, after
    ``queued_deletion_delay`` seconds; ``event_deletion_delay`` completes ``deletion_status``
    rows that many seconds after their request (PostHog's Sunday batch, made short; ``None``:
    only :meth:`verify_event_deletions`). ``apply_delay`` is how long accepted writes (PATCH,
    update/delete_property, split) take to show. ``advanced_permissions=False`` removes the paid
    feature sharing passwords need. ``short_pages`` makes persons pages lose a row but keep
    ``next``; ``faults`` injects seeded errors, drops and latency; ``record_bodies`` keeps every
    parsed request body in ``stats.bodies``.
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
        bulk_delete_version: str = "P-D",
        queued_deletion_delay: float = 0.2,
        apply_delay: float = 0.05,
        retry_after_header: bool = True,
        advanced_permissions: bool = True,
        event_deletion_delay: float | None = None,
        query_options: QueryOptions | None = None,
    ) -> None:
        self.api_key = api_key
        self._seed = seed
        self._event_deletion_delay = event_deletion_delay
        self.projects: dict[int, ProjectData] = {}
        self.directory = Directory(self.projects)
        self.default_organization = self.directory.add(FakeOrganization(_ORG_ID, "Example"))
        for pid in project_ids:
            self.add_project(pid)
        self.default_project = next(iter(self.projects))
        self.keys: dict[str, FakeKey] = {api_key: FakeKey(ALL_SCOPES)}
        self.host = host
        self._port = port
        self.stats = ServerStats()
        self.injector = FaultInjector(faults or Faults(), self.stats)
        self.record_bodies = record_bodies
        #: Seconds after the answer before an accepted write (PATCH, split, ...) takes effect.
        self.apply_delay = apply_delay
        self.deletions = Deletions(bulk_delete_version, queue_person_deletions, queued_deletion_delay)
        #: The query API (``query/``): its knobs (``queries.options``), the hook for other
        #: kinds (``queries.on_query``), what it ran (``queries.log``, ``queries.cancelled``).
        self.queries = QueryHandlers(lambda bucket, key: self.limiter.check(bucket, key),
                                     options=query_options or QueryOptions())
        self.handlers = Handlers(
            persons=PersonHandlers(), queries=PersonQueries(short_pages), deletions=self.deletions,
            definitions=DefinitionHandlers(), subscriptions=SubscriptionHandlers(),
            sharing=SharingHandlers(advanced_permissions),
            users=UserHandlers(self.directory.memberships),
            organizations=OrganizationHandlers(self.directory, self.keys),
            query_api=self.queries,
        )
        self._routes: list[PathRoutes] = build_routes(self.handlers)
        self._retry_after_header = retry_after_header
        self.limiter = RateLimiter(rate_limits, retry_after_header=retry_after_header)
        self._pending: set[asyncio.TimerHandle] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- configuration --------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self.injector.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.injector.faults = faults

    def set_rate_limits(self, limits: Mapping[str, Iterable[tuple[int, float]]] | None) -> None:
        """Replace the whole configuration (e.g. ``{"person_deletes": [(60, 10)]}``); ``None`` turns
        throttling off. Request history starts afresh."""
        self.limiter = RateLimiter(limits, retry_after_header=self._retry_after_header)

    def add_key(self, key: str, *, scopes: Iterable[str] = ALL_SCOPES,
                projects: Iterable[int] | None = None,
                organizations: Iterable[str] | None = None) -> FakeKey:
        """Accept another personal API key, with only ``scopes`` (``"*"`` for all) and,
        optionally, only ``projects`` (its ``scoped_teams``) or ``organizations`` (UUIDs, its
        ``scoped_organizations``). Each key has its own rate-limit buckets."""
        fake = FakeKey(frozenset(scopes), None if projects is None else frozenset(projects),
                       None if organizations is None else frozenset(map(str, organizations)))
        self.keys[key] = fake
        return fake

    def fail_next(self, status: int | None = 503, *, times: int = 1, method: str | None = None,
                  path_contains: str | None = None, retry_after: int | None = None,
                  drop: bool = False, lose_answer: bool = False) -> None:
        """Answer the next ``times`` matching requests with ``status`` and PostHog's body for it,
        or drop the connection before doing anything (``drop``), or do the work and then drop
        the connection (``lose_answer``). ``fail_next(503, retry_after=1)`` is a transient
        database error."""
        self.injector.fail_next(None if lose_answer else status, times, method, path_contains,
                                retry_after, drop, lose_answer)

    def add_hook(self, hook: Hook) -> None:
        """``hook(request)`` runs first on every request; a response it returns is sent as is,
        ``"drop"`` closes the connection, ``None`` lets the request through."""
        self.injector.hooks.append(hook)

    def fail_deletion_of(self, person_uuid: str, step: str = "delete_postgres") -> None:
        """Make the deletion of this person fail at ``step``: a synchronous bulk_delete lists it
        in ``deletion_errors`` (P-A answers 500 on reaching it, those before it deleted)."""
        self.deletions.fail_deletion_of(person_uuid, step)

    # -- data -----------------------------------------------------------------------------

    def project(self, project_id: int | None = None) -> ProjectData:
        return self.projects[self.default_project if project_id is None else project_id]

    def seed_persons(self, n: int, *, project_id: int | None = None, prefix: str = "user-") -> range:
        """Create ``n`` persons; their distinct ids are ``f"{prefix}{i}"`` for ``i`` in the range."""
        return self.project(project_id).seed_persons(n, prefix=prefix)

    def add_person(self, distinct_ids: Iterable[str], properties: dict[str, Any] | None = None,
                   *, project_id: int | None = None, uuid: str | None = None) -> FakePerson:
        return self.project(project_id).add_person(distinct_ids, properties, uuid=uuid)

    @property
    def ids_deleted(self) -> int:
        """Persons actually deleted so far (queued deletions count once they have run)."""
        return self.deletions.ids_deleted

    async def wait_for_deletions(self) -> None:
        """Wait until every queued person deletion has run."""
        await self.deletions.settle()

    async def wait_for_writes(self) -> None:
        """Wait until every accepted write (PATCH, update_property, split...) has been applied."""
        while self._pending:
            await asyncio.sleep(self.apply_delay / 4 or 0.001)

    def verify_event_deletions(self, project_id: int | None = None) -> int:
        """Mark the project's pending event deletions completed, as PostHog's weekly job does."""
        return self.project(project_id).verify_event_deletions()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)  # any path, even with a newline
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{port}"
        return self.url

    async def stop(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        await self.deletions.close()
        await self.queries.close()
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
            try:  # the body first, as a real server behind its proxy has it before any work
                raw = await request.read() if request.body_exists else b""
            except ConnectionError:  # the client left before its body was in: nothing to do
                stats.disconnects += 1
                _log.debug("client went away before its body arrived: %s %s", request.method,
                           request.path)
                return web.Response(status=400)
            delay = self.faults.delay()
            if delay:  # the server's work takes time; a client that leaves meanwhile does not stop it
                await asyncio.sleep(delay)
            injected = self.injector.intercept(request)
            if injected is not None:
                return injected
            try:
                req, (status, body) = await self._dispatch(request, raw)
            except (FakeAPIError, asyncio.CancelledError):
                raise
            except Exception:  # a bug in the fake: answer as Django would, and say so in the log
                _log.exception("fake PostHog crashed on %s %s", request.method, request.path)
                raise server_error() from None
        except FakeAPIError as err:
            if err.status == 429:
                stats.throttled += 1
            headers = dict(err.headers)
            if err.status == 401:
                headers["WWW-Authenticate"] = (
                    f'Bearer resource_metadata="{self.url}/.well-known/oauth-protected-resource"')
            return self._answer(request, respond(err.status, err.body, headers))
        finally:
            stats.in_flight -= 1
        if self.injector.answer_lost(request):  # the work is done; the answer never arrives
            for action in req.after_send:
                action()
            if req.later:
                self._run_later(req)
            return self.injector.drop(request)
        response = respond(status, body, req.headers)
        if req.later or req.after_send:  # send the answer first: no write may be visible before it
            try:
                await response.prepare(request)
                await response.write_eof()
            except ConnectionError:  # the client went away: the work stands, as on PostHog
                stats.disconnects += 1
            for action in req.after_send:
                action()
            if req.later:
                self._run_later(req)
            return response
        return self._answer(request, response)

    def _answer(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """``response``, counting a client that is gone already (aiohttp drops the answer)."""
        transport = request.transport
        if transport is None or transport.is_closing():
            self.stats.disconnects += 1
        return response

    def _run_later(self, req: Req) -> None:
        loop = asyncio.get_running_loop()

        def run() -> None:
            self._pending.discard(handle)
            for action in req.later:
                action()

        handle = loop.call_later(self.apply_delay, run)
        self._pending.add(handle)

    async def _dispatch(self, request: web.Request, raw: bytes) -> tuple[Req, Reply]:
        entry, params = self._resolve(request.path)
        fmt = qget(request.query, "format")
        if fmt is not None and fmt not in entry.formats:
            raise not_found()  # DRF: no renderer for this format
        key = authenticate(request, self.keys)
        project = self._project_for(params["project"], key) if entry.project else None
        method = "GET" if request.method == "HEAD" else request.method  # Django serves HEAD as GET
        if method == "OPTIONS":
            return options_answer(request, entry)
        route = entry.methods.get(method)
        if route is None:
            raise method_not_allowed(request.method)
        self.stats.by_endpoint[f"{request.method} {entry.name}"] += 1
        if route.scopes is None:
            raise permission_denied(NO_PERSONAL_KEYS)
        if entry.guard is not None:
            entry.guard(key, params)
        for scope in route.scopes:
            if not self.keys[key].grants(scope):
                raise permission_denied(f"API key missing required scope '{scope}'")
        self.limiter.check(route.bucket, key)
        content_type = request.headers.get("Content-Type", "")
        form: dict[str, Any] | None = None
        form_error: FakeAPIError | None = None
        if route.forms and media_type(content_type) == "multipart/form-data":
            request._payload = replay_body(raw, request)  # read once already (see _handle)
            try:
                form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
            except Exception as exc:  # DRF: MultiPartParserError -> ParseError
                form_error = parse_error(f"Multipart form parse error - {exc}")
            raw = b""
        req = Req(request.method, request.url, request.query, params, project, key, now_iso(),
                  absolute=f"{request.scheme}://{request.host}{request.raw_path}", raw=raw,
                  content_type=content_type, form=form, form_error=form_error,
                  accepts_forms=route.forms)
        if self.record_bodies:
            self.stats.bodies.setdefault(f"{request.method} {request.path}", []).append(peek_body(req))
        reply = route.handler(req)
        if inspect.isawaitable(reply):  # the query API waits for slots and runs queries
            reply = await reply
        return req, reply

    def _resolve(self, path: str) -> tuple[PathRoutes, dict[str, str]]:
        """The first path pattern that matches wins, whatever the method (Django URL resolution)."""
        for entry in self._routes:
            match = entry.pattern.fullmatch(path)
            if match is not None:
                return entry, match.groupdict()
        raise not_found()

    def _project_for(self, raw: str, key: str) -> ProjectData:
        """PostHog reads the project id with ``int()``: anything it refuses is "Project not found."."""
        allowed = self.keys[key].projects
        if raw == "@current":
            pid: int | None = min(allowed) if allowed else self.default_project
        else:
            try:
                pid = int(raw)
            except ValueError:
                pid = None
        if pid is None or pid not in self.projects:
            raise not_found("Project not found.")
        self.directory.check_team(self.keys[key], self.projects[pid])
        return self.projects[pid]
