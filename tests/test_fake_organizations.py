"""The fake's organisations, projects and the key's own record, over raw HTTP, as
posthog-api-notes.md ("Which projects a key reaches") and PostHog's code describe them; the
listing answers are checked against PostHog's published schema (tests/data)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
import requests
import schemathesis
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from posthog_async.testing import FakePostHog
from posthog_async.testing._projects import MEMBER

from .test_fake_server import call, error

KEY = "phx_org_tests_key_0123456789"
TEAM_SCOPED = "API keys with scoped projects are only supported on project-based endpoints."
SELF_ONLY = "This action does not support Personal API Key access"
SCHEMA = Path(__file__).parent / "data" / "posthog-openapi-organizations.json"


@pytest_asyncio.fixture
async def org_server() -> AsyncIterator[FakePostHog]:
    """Projects 1, 2 (Example), 3 (Acme), 4 (Acme, private to admins), 5 (Legacy: refuses a
    member's personal keys); the user is a member of Acme and Legacy."""
    async with FakePostHog(api_key=KEY, project_ids=(1, 2), rate_limits=None) as srv:
        acme = srv.add_organization("Acme", membership_level=MEMBER)
        legacy = srv.add_organization("Legacy", membership_level=MEMBER,
                                      members_can_use_personal_api_keys=False)
        srv.add_project(3, organization=acme, name="Acme web", is_demo=True)
        srv.add_project(4, organization=acme, private=True)
        srv.add_project(5, organization=legacy, pending_deletion=True)
        srv.project(2).is_pending_deletion = True
        yield srv


def ids(body: Any) -> list[int]:
    return [row["id"] for row in body["results"]]


async def test_the_keys_own_record(org_server: FakePostHog) -> None:
    org_server.add_key("phx_team", scopes=["person:read"], projects=[3])
    status, body, _ = await call(org_server, "GET", "/api/personal_api_keys/@current/", key="phx_team")
    fake = org_server.keys["phx_team"]
    assert status == 200 and body == {
        "id": fake.id, "label": fake.label, "value": None, "mask_value": "phx_...team",
        "created_at": "2024-01-01T00:00:00Z", "last_used_at": None, "user_id": 1,
        "scopes": ["person:read"], "scoped_teams": [3], "scoped_organizations": None,
        "last_rolled_at": None}
    assert (await call(org_server, "GET", f"/api/personal_api_keys/{fake.id}/", key="phx_team"))[0] == 200
    other = org_server.keys[KEY].id  # the user's other key: refused, not found
    for method, path in (("GET", "/api/personal_api_keys/"), ("GET", f"/api/personal_api_keys/{other}/"),
                         ("PATCH", "/api/personal_api_keys/@current/"),
                         ("DELETE", "/api/personal_api_keys/@current/")):
        status, body, _ = await call(org_server, method, path, key="phx_team")
        assert status == 403 and error(body, "authentication_error", "permission_denied", SELF_ONLY), path
    status, body, _ = await call(org_server, "GET", "/api/personal_api_keys/nope/", key="phx_team")
    assert status == 404
    _, body, _ = await call(org_server, "GET", "/api/personal_api_keys/@current/", key=KEY)
    assert body["scoped_teams"] is None and "organization:read" in body["scopes"]


async def test_listings_hide_private_projects_and_page_like_drf(org_server: FakePostHog) -> None:
    status, body, _ = await call(org_server, "GET", "/api/organizations/", key=KEY)
    assert status == 200 and body["count"] == 3 and body["next"] is None
    acme = next(o for o in body["results"] if o["name"] == "Acme")
    assert [p["id"] for p in acme["projects"]] == [3] and [t["id"] for t in acme["teams"]] == [3]
    status, body, _ = await call(org_server, "GET", "/api/projects/", key=KEY, params={"limit": 2})
    assert status == 200 and body["count"] == 4 and ids(body) == [1, 2]  # 4 is private
    assert body["next"].endswith("/api/projects/?limit=2&offset=2") and body["previous"] is None
    status, body, _ = await call(org_server, "GET", "/api/projects/", key=KEY,
                                 params={"limit": 2, "offset": 2})
    assert ids(body) == [3, 5] and body["next"] is None
    assert "project_id" not in body["results"][0] and body["results"][0]["is_demo"] is True
    _, body, _ = await call(org_server, "GET", "/api/environments/", key=KEY)
    assert ids(body) == [1, 2, 3, 5] and all(r["project_id"] == r["id"] for r in body["results"])
    _, body, _ = await call(org_server, "GET", f"/api/organizations/{org_server.default_organization.id}/projects/",
                            key=KEY, params={"search": "DEFAULT"})
    assert ids(body) == [1]


async def test_a_projects_detail_carries_is_pending_deletion(org_server: FakePostHog) -> None:
    status, body, _ = await call(org_server, "GET", "/api/projects/2/", key=KEY)
    assert status == 200 and body["is_pending_deletion"] is True and body["organization"]
    org = org_server.default_organization.id
    _, body, _ = await call(org_server, "GET", f"/api/organizations/{org}/projects/1/", key=KEY)
    assert body["is_pending_deletion"] is False
    for path in ("/api/projects/99/", "/api/projects/4/", f"/api/organizations/{org}/projects/3/"):
        status, body, _ = await call(org_server, "GET", path, key=KEY)
        assert status == 404 and body["detail"] == "Not found.", path  # missing, private, elsewhere


async def test_private_project_is_refused_and_an_admin_sees_it(org_server: FakePostHog) -> None:
    status, body, _ = await call(org_server, "GET", "/api/projects/4/persons/", key=KEY)
    assert status == 403 and body["detail"] == "You don't have access to the project."
    org_server.project(4).private = False
    assert (await call(org_server, "GET", "/api/projects/4/persons/", key=KEY))[0] == 200
    org_server.project(4).private = True
    org_server.directory.organization_of(org_server.project(4)).membership_level = 8
    _, body, _ = await call(org_server, "GET", "/api/projects/", key=KEY)
    assert 4 in ids(body)


async def test_an_organisation_that_refuses_personal_keys(org_server: FakePostHog) -> None:
    legacy = org_server.directory.organization_of(org_server.project(5))
    refusal = ("Organization 'Legacy' does not allow using personal API keys. Contact an admin to "
               "enable personal API keys for this organization.")
    for path in (f"/api/organizations/{legacy.id}/projects/", "/api/projects/5/persons/",
                 "/api/projects/5/", f"/api/organizations/{legacy.id}/"):
        status, body, _ = await call(org_server, "GET", path, key=KEY)
        assert status == 403 and body["detail"] == refusal, path
    _, body, _ = await call(org_server, "GET", "/api/organizations/", key=KEY)
    assert legacy.id in [o["id"] for o in body["results"]]  # still listed


async def test_a_team_scoped_key_reaches_its_projects_only(org_server: FakePostHog) -> None:
    org_server.add_key("phx_team", scopes=["person:read"], projects=[1, 3])
    org = org_server.default_organization.id
    for path in ("/api/organizations/", f"/api/organizations/{org}/", f"/api/organizations/{org}/projects/",
                 "/api/projects/", "/api/environments/"):
        status, body, _ = await call(org_server, "GET", path, key="phx_team")
        # before the scope check: this key also lacks organization:read and project:read
        assert status == 403 and body["detail"] == TEAM_SCOPED, path
    status, body, _ = await call(org_server, "GET", "/api/projects/2/", key="phx_team")
    assert status == 403 and body["detail"] == "API key does not have access to the requested project: ID 2."
    status, body, _ = await call(org_server, "GET", "/api/projects/3/", key="phx_team")
    assert status == 403 and body["detail"] == "API key missing required scope 'project:read'"
    status, body, _ = await call(org_server, "GET", "/api/projects/2/persons/", key="phx_team")
    assert status == 403 and body["detail"] == "API key does not have access to the requested project: ID 2."
    assert (await call(org_server, "GET", "/api/projects/3/persons/", key="phx_team"))[0] == 200
    assert (await call(org_server, "GET", "/api/projects/99/persons/", key="phx_team"))[0] == 404


async def test_an_organisation_scoped_key(org_server: FakePostHog) -> None:
    acme = next(o for o in org_server.directory.organizations.values() if o.name == "Acme")
    org_server.add_key("phx_acme", organizations=[acme.id])
    _, body, _ = await call(org_server, "GET", "/api/organizations/", key="phx_acme")
    assert [o["id"] for o in body["results"]] == [acme.id]
    _, body, _ = await call(org_server, "GET", "/api/projects/", key="phx_acme")
    assert ids(body) == [3]
    other = org_server.default_organization.id
    status, body, _ = await call(org_server, "GET", f"/api/organizations/{other}/", key="phx_acme")
    assert status == 404  # the queryset leaves it out
    refused = f"API key does not have access to the requested organization: ID {other}."
    for path in (f"/api/organizations/{other}/projects/", "/api/projects/1/persons/"):
        status, body, _ = await call(org_server, "GET", path, key="phx_acme")
        assert status == 403 and body["detail"] == refused, path


async def test_scopes_and_the_general_bucket() -> None:
    async with FakePostHog(api_key=KEY, rate_limits={"general": [(3, 60)]}) as srv:
        srv.add_key("phx_people", scopes=["person:read"])
        status, body, _ = await call(srv, "GET", "/api/organizations/", key="phx_people")
        assert status == 403 and body["detail"] == "API key missing required scope 'organization:read'"
        for path in ("/api/personal_api_keys/@current/", "/api/organizations/", "/api/projects/1/"):
            assert (await call(srv, "GET", path, key=KEY))[0] == 200
        status, body, _ = await call(srv, "GET", "/api/projects/", key=KEY)
        assert status == 429  # the fourth call of the general bucket in a minute


async def test_listings_conform_to_posthogs_schema(org_server: FakePostHog) -> None:
    schema = schemathesis.openapi.from_dict(json.loads(SCHEMA.read_text()))
    org = org_server.default_organization.id
    checked = 0
    for path in ("/api/organizations/", f"/api/organizations/{org}/",
                 f"/api/organizations/{org}/projects/"):
        status, body, headers = await call(org_server, "GET", path, key=KEY, params={"limit": 1})
        op = schema.find_operation_by_path("GET", path)
        assert op is not None, path
        response = schemathesis.Response(
            status_code=status, headers={k.lower(): [v] for k, v in headers.items()},
            content=json.dumps(body).encode(),
            request=requests.Request("GET", f"http://127.0.0.1{path}").prepare(),
            elapsed=0.0, verify=True)
        params = {"organization_id": org} if "{organization_id}" in op.path else (
            {"id": org} if "{id}" in op.path else {})
        op.Case(path_parameters=params).validate_response(
            response, checks=[status_code_conformance, content_type_conformance,
                              response_schema_conformance])
        checked += 1
    assert checked == 3


async def test_standalone_server_serves_organisations_overlap_and_delays() -> None:
    """``python -m posthog_async.testing`` with the multi-project knobs, used by the client."""
    import asyncio
    import socket
    import subprocess
    import sys

    from posthog_async import AsyncPostHog

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "posthog_async.testing", "--port", str(port), "--persons", "30",
         "--projects", "1,2,3", "--overlap", "0.5", "--organization", "Acme=3,4:member",
         "--organization", "Legacy=5:no-personal-keys", "--private-project", "4",
         "--pending-deletion-project", "2", "--scoped-key", "phx_team=2,3",
         "--event-deletion-delay", "0.3", "--api-key", KEY, "--no-rate-limits"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        async with AsyncPostHog(KEY, host=url, rate_limits=None) as ph:
            reach = await ph.reachable_projects()
            assert reach.ids == [1, 2, 3] and reach.pending_deletion == [2]
            assert [(n.id, n.status_code) for n in reach.not_covered] == [(5, 403)]
            found = {pid: await ph.project(pid).persons.batch_by_distinct_ids(["user-15", "user-16"])
                     for pid in (1, 2, 3)}
            assert all(sorted(f) == ["user-15"] for f in found.values())  # 15 shared, 16 not
            assert len({f["user-15"].uuid for f in found.values()}) == 3
            await ph.project(3).persons.bulk_delete(distinct_ids=["user-15"], delete_events=True)
            uuid = found[3]["user-15"].uuid
            rows = await ph.project(3).persons.verification.deletion_statuses([uuid])
            assert list(rows.pending) == [uuid]
            await asyncio.sleep(0.35)
            rows = await ph.project(3).persons.verification.deletion_statuses([uuid])
            assert list(rows.completed) == [uuid]
        async with AsyncPostHog("phx_team", host=url, rate_limits=None) as ph:
            reach = await ph.reachable_projects()
            assert reach.via == "scoped_teams" and reach.ids == [2, 3]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
