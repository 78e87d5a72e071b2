"""The fake server's own rules, each from ../shared/posthog-api-notes.md, checked over raw HTTP."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from posthog_async.testing import FakePostHog, Faults

from .conftest import API_KEY


async def call(server: FakePostHog, method: str, path: str, *, key: str | None = API_KEY,
               json: Any = None, params: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, server.url + path, json=json, params=params,
                                   headers=headers) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body, resp.headers


def error_shape(body: Any) -> bool:
    return set(body) == {"type", "code", "detail", "attr"}


async def test_auth_scope_and_project_errors(server: FakePostHog) -> None:
    status, body, _ = await call(server, "GET", "/api/projects/1/persons/", key=None)
    assert status == 401 and body["type"] == "authentication_error" and error_shape(body)
    status, body, _ = await call(server, "GET", "/api/projects/1/persons/", key="phx_nope")
    assert status == 401
    server.add_key("phx_ro", scopes={"person:read"}, projects={1})
    status, body, _ = await call(server, "POST", "/api/projects/1/persons/bulk_delete/",
                                 key="phx_ro", json={"ids": []})
    assert status == 403 and body["detail"] == "API key missing required scope 'person:write'"
    status, body, _ = await call(server, "GET", "/api/projects/2/persons/", key="phx_ro")
    assert status == 403
    status, body, _ = await call(server, "GET", "/api/projects/404/persons/")
    assert status == 404 and body["type"] == "invalid_request"
    status, body, _ = await call(server, "GET", "/api/projects/1/persons/0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c/")
    assert status == 404
    status, _, _ = await call(server, "GET", "/api/projects/1/persons")  # no trailing slash
    assert status == 404
    status, body, _ = await call(server, "PUT", "/api/projects/1/persons/values/")
    assert status == 405


async def test_both_families_and_current(server: FakePostHog) -> None:
    server.seed_persons(3)
    for prefix in ("/api/projects/1", "/api/environments/1", "/api/projects/@current"):
        status, body, _ = await call(server, "GET", prefix + "/persons/")
        assert status == 200 and len(body["results"]) == 3


async def test_list_pagination_filters_and_next(server: FakePostHog) -> None:
    server.seed_persons(250)
    status, body, _ = await call(server, "GET", "/api/projects/1/persons/")
    assert len(body["results"]) == 100
    assert body["next"] == f"{server.url}/api/projects/1/persons/?offset=100&limit=100"
    assert "count" not in body
    _, last, _ = await call(server, "GET", "/api/projects/1/persons/", params={"offset": "200"})
    assert len(last["results"]) == 50 and last["next"] is None
    _, hit, _ = await call(server, "GET", "/api/projects/1/persons/", params={"distinct_id": "user-7"})
    assert [p["distinct_ids"] for p in hit["results"]] == [["user-7"]]
    _, hit, _ = await call(server, "GET", "/api/projects/1/persons/", params={"email": "user9@example.com"})
    assert len(hit["results"]) == 1
    _, hit, _ = await call(server, "GET", "/api/projects/1/persons/", params={"search": "anon-9"})
    assert hit["results"][0]["distinct_ids"] == ["user-9", "anon-9"]
    _, total, _ = await call(server, "GET", "/api/projects/1/persons/", params={"include_total": "1"})
    assert total["count"] == 250


async def test_bulk_delete_rules(server: FakePostHog) -> None:
    server.seed_persons(10)
    path = "/api/projects/1/persons/bulk_delete/"
    status, body, _ = await call(server, "POST", path, json={"distinct_ids": [f"d{i}" for i in range(1001)]})
    assert status == 400 and "1000" in body["detail"]
    status, body, _ = await call(server, "POST", path, json={"ids": ["a"], "distinct_ids": ["b"]})
    assert status == 400
    status, body, _ = await call(server, "POST", path, json={})
    assert status == 400
    status, body, _ = await call(server, "POST", path, json={
        "distinct_ids": ["user-1", "user-2", "anon-3", "user-3", "ghost"], "delete_events": True})
    assert status == 202
    assert body == {"persons_found": 3, "persons_deleted": 3, "events_queued_for_deletion": 3,
                    "recordings_queued_for_deletion": 0, "deletion_errors": []}
    assert server.ids_deleted == 3
    _, st, _ = await call(server, "GET", "/api/projects/1/persons/deletion_status/",
                          params={"status": "pending"})
    assert st["count"] == 3 and st["results"][0]["status"] == "pending"
    _, page, _ = await call(server, "GET", "/api/projects/1/persons/")
    assert len(page["results"]) == 7


async def test_queued_person_deletion_shape() -> None:
    async with FakePostHog(rate_limits=None, queue_person_deletions=True) as server:
        server.seed_persons(2)
        _, body, _ = await call(server, "POST", "/api/projects/1/persons/bulk_delete/",
                                key=server.api_key, json={"distinct_ids": ["user-1"]})
    assert body["persons_deleted"] == 0 and body["persons_queued_for_deletion"] == 1


async def test_batch_by_distinct_ids_keeps_first_200(server: FakePostHog) -> None:
    server.seed_persons(300)
    _, body, _ = await call(server, "POST", "/api/projects/1/persons/batch_by_distinct_ids/",
                            json={"distinct_ids": [f"user-{i}" for i in range(1, 301)]})
    assert len(body["results"]) == 200 and "user-201" not in body["results"]


async def test_batch_by_uuids_rejects_one_bad_uuid(server: FakePostHog) -> None:
    server.seed_persons(2)
    good = next(iter(server.project().persons))
    status, body, _ = await call(server, "POST", "/api/projects/1/persons/batch_by_uuids/",
                                 json={"uuids": [good, "bad"]})
    assert status == 400 and body["attr"] == "uuids"
    _, body, _ = await call(server, "POST", "/api/projects/1/persons/batch_by_uuids/",
                            json={"uuids": [good]})
    assert list(body["results"]) == [good]


async def test_rate_limit_both_windows_with_retry_after() -> None:
    async with FakePostHog(rate_limits={"crud": [(3, 1.0), (5, 60.0)], "analytics": [(2, 60)]}) as server:
        statuses = []
        for _ in range(4):
            status, body, headers = await call(server, "GET", "/api/users/@me/", key=server.api_key)
            statuses.append(status)
        assert statuses == [200, 200, 200, 429]
        assert body["type"] == "throttled_error" and headers["Retry-After"] == "1"
        assert "Expected available in 1 seconds" in body["detail"]
        time.sleep(1.05)
        statuses = [(await call(server, "GET", "/api/users/@me/", key=server.api_key))[0]
                    for _ in range(3)]
        assert statuses == [200, 200, 429]  # the hourly-style window (5/60 s) now bites
        _, _, headers = await call(server, "GET", "/api/users/@me/", key=server.api_key)
        assert int(headers["Retry-After"]) > 50
        # categories are separate buckets
        assert (await call(server, "GET", "/api/projects/1/persons/", key=server.api_key))[0] == 200
        assert server.stats.throttled == 3


async def test_fault_injection_is_seeded(server: FakePostHog) -> None:
    server.faults = Faults(error_rate=0.5, seed=7)
    first = [(await call(server, "GET", "/api/users/@me/"))[0] for _ in range(20)]
    server.faults = Faults(error_rate=0.5, seed=7)
    second = [(await call(server, "GET", "/api/users/@me/"))[0] for _ in range(20)]
    assert first == second and {500, 502, 503} & set(first) and 200 in first


async def test_dropped_connection(server: FakePostHog) -> None:
    server.fail_next(drop=True)
    with pytest.raises(aiohttp.ClientError):  # POST: aiohttp itself re-sends only idempotent calls
        await call(server, "POST", "/api/projects/1/persons/batch_by_distinct_ids/",
                   json={"distinct_ids": ["x"]})
    assert server.stats.dropped == 1


async def test_person_writes(server: FakePostHog) -> None:
    person = server.add_person(["alice", "alice-phone"], {"email": "alice@acme.com"})
    base = f"/api/projects/1/persons/{person.uuid}/"
    assert (await call(server, "POST", base + "update_property/", json={"key": "plan", "value": "pro"}))[0] == 202
    assert (await call(server, "POST", base + "delete_property/", json={"$unset": "email"}))[0] == 202
    _, body, _ = await call(server, "GET", base)
    assert body["properties"] == {"plan": "pro"}
    status, body, _ = await call(server, "POST", base + "split/", json={"main_distinct_id": "alice"})
    assert (status, body) == (201, {"success": True})
    assert server.project().by_distinct_id["alice-phone"] is not person
    status, _, _ = await call(server, "DELETE", base, params={"delete_events": "true"})
    assert status == 202 and (await call(server, "GET", base))[0] == 404
    assert (await call(server, "POST", "/api/projects/1/persons/reset_person_distinct_id/",
                       json={"distinct_id": "alice"}))[0] == 202


async def test_subscription_delete_is_405(server: FakePostHog) -> None:
    status, body, _ = await call(server, "POST", "/api/projects/1/subscriptions/", json={
        "insight": 1, "target_type": "email", "target_value": "a@b.c", "frequency": "daily",
        "start_date": "2026-12-01T00:00:00Z"})
    assert status == 201
    status, body, _ = await call(server, "DELETE", f"/api/projects/1/subscriptions/{body['id']}/")
    assert status == 405 and body["code"] == "method_not_allowed"


async def test_seeding_a_million_is_fast() -> None:
    server = FakePostHog(rate_limits=None)
    started = time.perf_counter()
    server.seed_persons(1_000_000)
    elapsed = time.perf_counter() - started
    project = server.project()
    assert len(project.persons) == 1_000_000 and project.by_distinct_id["user-999999"].seed == 999999
    assert elapsed < 30  # generous: a correctness check that it is not quadratic, not a benchmark


async def test_legacy_actor_rules(server: FakePostHog) -> None:
    status, body, _ = await call(server, "GET", "/api/projects/1/persons/lifecycle/",
                                 params={"target_date": "2026-01-01"})
    assert status == 400 and body["attr"] == "lifecycle_type"
    status, body, _ = await call(server, "GET", "/api/projects/1/persons/values/")
    assert status == 400 and body["attr"] == "key"
    status, _, _ = await call(server, "GET", "/api/projects/1/persons/deletion_status/",
                              params={"status": "gone"})
    assert status == 400


def test_standalone_server_runs() -> None:
    """``python -m posthog_async.testing --port N --persons N`` serves until terminated."""
    import json
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "posthog_async.testing", "--port", str(port),
                             "--persons", "150", "--api-key", "phx_standalone"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/projects/1/persons/?limit=200",
                                     headers={"Authorization": "Bearer phx_standalone"})
        body = json.loads(urllib.request.urlopen(req, timeout=10).read())
        assert len(body["results"]) == 150
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
