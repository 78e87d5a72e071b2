"""``ph.reachable_projects()`` and the listing resources, against the fake PostHog on loopback.

The recipe (posthog-api-notes.md, "Which projects a key reaches"): the key's own record; with
``scoped_teams`` those projects and no organisation URL; else the organisations' project pages.
Whatever PostHog refuses or lacks is *not covered*, with PostHog's message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from posthog_async import (
    AsyncPostHog,
    LocalRateLimiter,
    NotCoveredProject,
    Organization,
    PermissionDeniedError,
    PersonalAPIKey,
    Project,
    RateLimits,
)
from posthog_async._ratelimit import Buckets, as_buckets
from posthog_async.testing import FakePostHog
from posthog_async.testing._projects import MEMBER

from .conftest import fast_retries

KEY = "phx_reach_tests_key_0123456789"
REFUSAL = ("Organization 'Legacy' does not allow using personal API keys. Contact an admin to "
           "enable personal API keys for this organization.")


class RecordingLimiter(LocalRateLimiter):
    """Paces nothing; remembers which bucket each request was counted in."""

    def __init__(self) -> None:
        super().__init__(RateLimits(persons=(), person_deletes=(), general=(), users=()))
        self.buckets: Counter[str] = Counter()

    def try_acquire(self, buckets: Buckets) -> bool:
        """The transport asks with a tuple of the call's buckets (one name without a client)."""
        self.buckets.update(as_buckets(buckets))
        return True

    async def acquire(self, buckets: Buckets) -> None:  # pragma: no cover - try_acquire wins
        self.buckets.update(as_buckets(buckets))


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakePostHog]:
    """Example: 1, 2 (pending deletion); Acme (member): 3, 4 (private); Legacy (member,
    refuses personal keys): 5."""
    async with FakePostHog(api_key=KEY, project_ids=(1, 2), rate_limits=None) as srv:
        acme = srv.add_organization("Acme", membership_level=MEMBER)
        legacy = srv.add_organization("Legacy", membership_level=MEMBER,
                                      members_can_use_personal_api_keys=False)
        srv.add_project(3, organization=acme, name="Acme web")
        srv.add_project(4, organization=acme, private=True)
        srv.add_project(5, organization=legacy)
        srv.project(2).is_pending_deletion = True
        yield srv


def client(server: FakePostHog, key: str = KEY, **kwargs: object) -> AsyncPostHog:
    if "rate_limiter" not in kwargs:
        kwargs.setdefault("rate_limits", None)
    return server.client(api_key=key, retry_policy=fast_retries(), **kwargs)  # type: ignore[arg-type]


async def test_discovery_walks_the_organisations(fake: FakePostHog) -> None:
    limiter = RecordingLimiter()
    async with client(fake, rate_limiter=limiter) as ph:
        reach = await ph.reachable_projects()
    assert reach.via == "organizations" and reach.key.scoped_teams is None
    assert reach.ids == [1, 2, 3]  # 4 is private to admins: PostHog never lists it
    assert reach.pending_deletion == [2]
    assert [(p.id, p.is_pending_deletion) for p in reach.projects] == [(1, False), (2, True), (3, False)]
    acme = fake.directory.organization_of(fake.project(3)).id
    assert reach.projects[2] == Project(id=3, uuid=reach.projects[2].uuid, organization=acme,
                                        name="Acme web", is_demo=False, timezone="UTC",
                                        is_pending_deletion=False, created_at=reach.projects[2].created_at)
    legacy = fake.directory.organization_of(fake.project(5)).id
    assert reach.not_covered == (NotCoveredProject(5, legacy, 403, REFUSAL),)
    assert not reach.complete
    assert set(limiter.buckets) == {"general"}  # PostHog's default burst/sustained throttles
    assert fake.stats.by_endpoint["GET personal_api_keys/:key_id/"] == 1


async def test_a_team_scoped_key_never_calls_organisation_urls(fake: FakePostHog) -> None:
    fake.add_key("phx_team", scopes=["person:write", "project:read"], projects=[3, 1, 99])
    async with client(fake, "phx_team") as ph:
        reach = await ph.reachable_projects()
    assert reach.via == "scoped_teams" and reach.key.team_scoped
    assert reach.ids == [1, 3]  # in the order of the key's record
    assert reach.not_covered == (NotCoveredProject(99, None, 404, "Not found."),)
    called = set(fake.stats.by_endpoint)
    assert "GET projects/:id/" in called
    assert not called & {"GET projects/", "GET environments/"}
    assert not any(name.startswith("GET organizations") for name in called)


async def test_named_projects_are_each_checked(fake: FakePostHog) -> None:
    fake.add_key("phx_team", projects=[1, 3])
    async with client(fake, "phx_team") as ph:
        reach = await ph.reachable_projects([3, "2", 3, 42])
    assert reach.via == "named" and reach.ids == [3]
    assert reach.not_covered == (
        NotCoveredProject(2, None, 403, "API key does not have access to the requested project: ID 2."),
        NotCoveredProject(42, None, 404, "Not found."))
    async with client(fake) as ph:
        with pytest.raises(ValueError, match="@current"):
            await ph.reachable_projects(["@current"])
        with pytest.raises(TypeError):
            await ph.reachable_projects(7)  # type: ignore[arg-type]
        reach = await ph.reachable_projects([5, 1])
    assert reach.ids == [1] and reach.not_covered[0].message == REFUSAL


async def test_an_organisation_scoped_key_sees_its_organisation(fake: FakePostHog) -> None:
    acme = fake.directory.organization_of(fake.project(3)).id
    fake.add_key("phx_acme", organizations=[acme])
    async with client(fake, "phx_acme") as ph:
        reach = await ph.reachable_projects()
        orgs = [o async for o in ph.organizations.list()]
    assert reach.ids == [3] and [o.id for o in orgs] == [acme]
    assert isinstance(orgs[0], Organization)
    # the user's other organisations (users/@me) are outside the key: not covered, not silent
    others = [o.id for o in fake.directory.organizations.values() if o.id != acme]
    assert not reach.complete and [(g.id, g.organization) for g in reach.not_covered] == [
        (None, org_id) for org_id in others]
    assert "outside this key's scoped organisations" in reach.not_covered[0].message


async def test_a_missing_scope_is_raised_not_reported_per_project(fake: FakePostHog) -> None:
    fake.add_key("phx_people", scopes=["person:write"])
    async with client(fake, "phx_people") as ph:
        key = await ph.personal_api_keys.current()  # needs no scope
        assert "phx_" not in repr(key) and "ople" not in repr(key)  # PostHog's mask is not kept
        assert key == PersonalAPIKey(id=key.id, label=key.label, user_id=1, scopes=["person:write"],
                                     created_at=key.created_at)
        with pytest.raises(PermissionDeniedError) as raised:
            await ph.reachable_projects()
        assert raised.value.missing_scope == "organization:read"
        with pytest.raises(PermissionDeniedError) as raised:
            await ph.reachable_projects([1])
        assert raised.value.missing_scope == "project:read"


async def test_the_listing_resources_page_with_async_for(fake: FakePostHog) -> None:
    for pid in range(6, 9):
        fake.add_project(pid)
    async with client(fake) as ph:
        first = await ph.projects.list(limit=2)
        assert [p.id for p in first.results] == [1, 2] and first.count == 7 and first.next
        assert [p.id async for p in ph.projects.list(limit=2)] == [1, 2, 3, 5, 6, 7, 8]
        envs = [p async for p in ph.projects.list_environments(limit=3)]
        assert all(p.project_id == p.id for p in envs) and len(envs) == 7
        org = fake.default_organization.id
        assert [p.id async for p in ph.organizations.projects(org, limit=2)] == [1, 2, 6, 7, 8]
        assert (await ph.organizations.project(org, 2)).is_pending_deletion is True
        assert (await ph.organizations.retrieve(org)).name == "Example"
        detail = await ph.projects.retrieve("2")
        assert detail.is_pending_deletion is True and detail.organization == org
        assert (await ph.project(detail.id).persons.list()).results == []  # views feed ph.project
        with pytest.raises(ValueError):
            await ph.projects.retrieve("@current")
        with pytest.raises(ValueError):
            await ph.organizations.retrieve("not-a-uuid")


async def test_an_older_posthog_that_refuses_the_keys_record(fake: FakePostHog) -> None:
    """Before PersonalApiKeySelfAccessPermission, the record went through APIScopePermission:
    a key with scoped_teams got 403 there (posthog/api/personal_api_key.py, index id
    27898808210). The recipe goes on without it."""
    from aiohttp import web

    def old_record(request: web.Request) -> web.StreamResponse | None:
        if request.path.startswith("/api/personal_api_keys/"):
            return web.json_response(status=403, data={
                "type": "authentication_error", "code": "permission_denied", "attr": None,
                "detail": "API keys with scoped projects are only supported on project-based endpoints."})
        return None

    fake.add_hook(old_record)
    fake.add_key("phx_team", projects=[1, 3])
    async with client(fake, "phx_team") as ph:
        reach = await ph.reachable_projects([3, 2])
        assert reach.key is None and reach.ids == [3] and reach.not_covered[0].id == 2
        with pytest.raises(PermissionDeniedError, match="project-based endpoints"):
            await ph.reachable_projects()  # discovery needs the record: name the projects
    async with client(fake) as ph:
        reach = await ph.reachable_projects()
    assert reach.key is None and reach.via == "organizations" and reach.ids == [1, 2, 3]
