"""The fake server's dispatch, auth, error shapes and fault injection, over raw HTTP.

Each rule comes from ../shared/posthog-api-notes.md or PostHog's code; the other test_fake_*
files import ``call`` from here.
"""

from __future__ import annotations

import json as jsonlib
import time
from typing import Any

import aiohttp
import pytest

from posthog_async.testing import FakePostHog, Faults

from .conftest import API_KEY

PERSONS = "/api/projects/1/persons/"


async def call(server: FakePostHog, method: str, path: str, *, key: str | None = API_KEY,
               json: Any = None, params: Any = None, data: bytes | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """One raw request; the body comes back parsed (JSON), as text, or ``None`` when empty."""
    sent = dict(headers or {})
    if key:
        sent["Authorization"] = f"Bearer {key}"
    async with aiohttp.ClientSession() as session:
        async with session.request(method, server.url + path, json=json, params=params, data=data,
                                   headers=sent) as resp:
            raw = await resp.read()
            if not raw:
                return resp.status, None, resp.headers
            if resp.content_type == "application/json":
                return resp.status, jsonlib.loads(raw), resp.headers
            return resp.status, raw.decode(), resp.headers


def error(body: Any, status_type: str, code: str, detail: str, attr: str | None = None) -> bool:
    return bool(body == {"type": status_type, "code": code, "detail": detail, "attr": attr})


async def test_auth_errors_and_bearer_challenge(server: FakePostHog) -> None:
    status, body, headers = await call(server, "GET", PERSONS, key=None)
    assert status == 401 and error(body, "authentication_error", "not_authenticated",
                                   "Authentication credentials were not provided.")
    assert headers["WWW-Authenticate"] == (
        f'Bearer resource_metadata="{server.url}/.well-known/oauth-protected-resource"')
    status, body, headers = await call(server, "GET", PERSONS, key="phx_nope")
    assert status == 401 and error(body, "authentication_error", "authentication_failed",
                                   "Personal API key found in request Authorization header is invalid.")
    assert headers["WWW-Authenticate"].startswith("Bearer resource_metadata=")


async def test_project_errors(server: FakePostHog) -> None:
    server.add_key("phx_one", projects={1})
    status, body, _ = await call(server, "GET", "/api/projects/2/persons/", key="phx_one")
    assert status == 403 and body["detail"] == (
        "API key does not have access to the requested project: ID 2.")
    status, body, _ = await call(server, "GET", "/api/projects/404/persons/")
    assert status == 404 and body["detail"] == "Project not found."


@pytest.mark.parametrize("project", ["abc", "³", "9" * 5000, "@nope", "1_"])
async def test_project_id_that_int_refuses_is_a_404(server: FakePostHog, project: str) -> None:
    """PostHog reads the id with ``int()`` and answers NotFound("Project not found.") when it
    fails; ``"³"`` passes ``str.isdigit`` but not ``int``."""
    status, body, _ = await call(server, "GET", f"/api/projects/{project}/persons/")
    assert status == 404 and body["detail"] == "Project not found."


async def test_int_accepts_unicode_digits_and_signs(server: FakePostHog) -> None:
    """``int("٢")`` is 2 and ``int("+1")`` is 1, so PostHog serves those projects."""
    for project in ("٢", "+1", "１", "0_1"):
        status, _, _ = await call(server, "GET", f"/api/projects/{project}/persons/")
        assert status == 200, project


async def test_both_families_current_and_optional_slash(server: FakePostHog) -> None:
    server.seed_persons(3)
    for path in ("/api/projects/1/persons/", "/api/environments/1/persons/",
                 "/api/projects/@current/persons/", "/api/projects/1/persons"):
        status, body, _ = await call(server, "GET", path)
        assert status == 200 and len(body["results"]) == 3, path


async def test_first_matching_path_wins(server: FakePostHog) -> None:
    """``DELETE persons/values/`` is the values route's 405, not a delete of person "values"."""
    status, body, _ = await call(server, "DELETE", PERSONS + "values/")
    assert status == 405 and error(body, "invalid_request", "method_not_allowed",
                                   'Method "DELETE" not allowed.')
    status, body, _ = await call(server, "POST", PERSONS, json={})
    assert status == 405 and body["detail"].startswith("Creating persons via this API is not allowed.")


async def test_unknown_format_is_a_404(server: FakePostHog) -> None:
    assert (await call(server, "GET", PERSONS, params={"format": "xml"}))[0] == 404
    status, _, headers = await call(server, "GET", PERSONS, params={"format": "csv"})
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert (await call(server, "GET", "/api/projects/1/subscriptions/", params={"format": "csv"}))[0] == 404


async def test_csv_is_rendered_like_djangorestframework_csv(server: FakePostHog) -> None:
    """Sorted header, nested values flattened (``distinct_ids.0``); a single object has no
    ``results``, so PostHog's paginated CSV renderer answers it empty."""
    person = server.add_person(["a", "b"], {"email": "a@b.c"})
    _, text, _ = await call(server, "GET", PERSONS, params={"format": "csv"})
    lines = text.splitlines()
    assert lines[0] == "created_at,distinct_ids.0,distinct_ids.1,id,last_seen_at,name,properties.email,uuid"
    assert lines[1].endswith(f",1,,a@b.c,a@b.c,{person.uuid}")
    assert (await call(server, "GET", f"{PERSONS}{person.uuid}/", params={"format": "csv"}))[1] is None


async def test_head_and_options(server: FakePostHog) -> None:
    assert (await call(server, "HEAD", PERSONS))[:2] == (200, None)
    status, body, headers = await call(server, "OPTIONS", "/api/projects/1/subscriptions/")
    assert status == 200 and headers["Allow"] == "GET, POST, HEAD, OPTIONS" and body["renders"] == ["application/json"]


async def test_scope_write_grants_read_and_star_grants_all(server: FakePostHog) -> None:
    server.add_key("phx_w", scopes={"person:write"})
    server.add_key("phx_star", scopes={"*"})
    server.add_key("phx_r", scopes={"person:read"})
    assert (await call(server, "GET", PERSONS, key="phx_w"))[0] == 200
    assert (await call(server, "GET", "/api/projects/1/subscriptions/", key="phx_star"))[0] == 200
    status, body, _ = await call(server, "POST", PERSONS + "bulk_delete/", key="phx_r",
                                 json={"ids": ["x"]})
    assert status == 403 and error(body, "authentication_error", "permission_denied",
                                   "API key missing required scope 'person:write'")


@pytest.mark.parametrize("body, content_type, status, detail", [
    (b"{nope", "application/json", 400,
     "JSON parse error - Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (b"[1, 2]", "application/json", 400, "Invalid data. Expected a dictionary, but got list."),
    (b'{"ids": NaN}', "application/json", 400,
     "JSON parse error - Out of range float values are not JSON compliant: 'NaN'"),
    (b"ids=a", "application/x-www-form-urlencoded", 415,
     'Unsupported media type "application/x-www-form-urlencoded" in request.'),
    (b"{}", "text/plain", 415, 'Unsupported media type "text/plain" in request.'),
])
async def test_bodies_are_parsed_like_drf(server: FakePostHog, body: bytes, content_type: str,
                                          status: int, detail: str) -> None:
    got, answer, _ = await call(server, "POST", PERSONS + "bulk_delete/", data=body,
                                headers={"Content-Type": content_type})
    assert (got, answer["detail"]) == (status, detail)


async def test_injected_failures_have_posthog_bodies(server: FakePostHog) -> None:
    server.fail_next(503, retry_after=1)
    status, body, headers = await call(server, "GET", PERSONS)
    assert status == 503 and headers["Retry-After"] == "1"
    assert error(body, "server_error", "database_unavailable",
                 "We couldn't reach the database just now. Please try again in a moment.")
    server.fail_next(429, retry_after=7)
    status, body, headers = await call(server, "GET", PERSONS)
    assert status == 429 and headers["Retry-After"] == "7"
    assert body["detail"] == "Request was throttled. Expected available in 7 seconds."


async def test_fault_injection_is_seeded(server: FakePostHog) -> None:
    server.faults = Faults(error_rate=0.5, seed=7)
    first = [(await call(server, "GET", "/api/users/@me/"))[0] for _ in range(20)]
    server.faults = Faults(error_rate=0.5, seed=7)
    second = [(await call(server, "GET", "/api/users/@me/"))[0] for _ in range(20)]
    assert first == second and {500, 502, 503} & set(first) and 200 in first


async def test_dropped_connection(server: FakePostHog) -> None:
    server.fail_next(drop=True)
    with pytest.raises(aiohttp.ClientError):  # POST: aiohttp itself re-sends only idempotent calls
        await call(server, "POST", PERSONS + "batch_by_distinct_ids/", json={"distinct_ids": ["x"]})
    assert server.stats.dropped == 1


async def test_stats_count_endpoints_and_bodies() -> None:
    async with FakePostHog(rate_limits=None, record_bodies=True) as server:
        await call(server, "POST", PERSONS + "bulk_delete/", key=server.api_key,
                   json={"distinct_ids": ["a"]})
        assert server.stats.by_endpoint["POST persons/bulk_delete/"] == 1
        assert server.stats.bodies["POST /api/projects/1/persons/bulk_delete/"] == [
            {"distinct_ids": ["a"]}]


async def test_seeding_a_million_is_fast() -> None:
    server = FakePostHog(rate_limits=None)
    started = time.perf_counter()
    server.seed_persons(1_000_000)
    elapsed = time.perf_counter() - started
    project = server.project()
    assert len(project.persons) == 1_000_000 and project.by_distinct_id["user-999999"].seed == 999999
    assert elapsed < 30  # generous: a correctness check that it is not quadratic, not a benchmark


def test_standalone_server_runs_with_knobs() -> None:
    """``python -m posthog_async.testing`` serves until terminated, with its knobs applied."""
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "posthog_async.testing", "--port", str(port),
                             "--persons", "150", "--api-key", "phx_standalone",
                             "--rate-limit", "persons=2/60", "--bulk-delete-version", "P-B"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        url = f"http://127.0.0.1:{port}/api/projects/1/persons/?limit=200"
        req = urllib.request.Request(url, headers={"Authorization": "Bearer phx_standalone"})
        body = jsonlib.loads(urllib.request.urlopen(req, timeout=10).read())
        assert len(body["results"]) == 150
        urllib.request.urlopen(req, timeout=10).read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code == 429
        refused.value.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_cli_parses_every_knob() -> None:
    from posthog_async.testing.__main__ import build_parser

    args = build_parser().parse_args([
        "--port", "9", "--persons", "5", "--api-key", "k", "--latency", "0.1", "--jitter", "0.2",
        "--error-rate", "0.1", "--drop-rate", "0.05", "--seed", "3", "--queue-deletes",
        "--delete-delay", "1.5", "--bulk-delete-version", "P-C", "--short-pages",
        "--rate-limit", "person_deletes=60/10,600/3600", "--rate-limit", "general=none",
        "--no-rate-limits", "--no-retry-after", "--apply-delay", "0", "--no-advanced-permissions"])
    assert args.rate_limit == [("person_deletes", ((60, 10.0), (600, 3600.0))), ("general", None)]
    assert args.queue_deletes and args.delete_delay == 1.5 and args.bulk_delete_version == "P-C"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--rate-limit", "crud=1/1"])
