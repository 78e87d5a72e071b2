"""The offline PostHog's ``/query/`` as PostHog answers it, on the wire (raw HTTP, no client)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions
from posthog_async.testing._query_engine import (
    OFFSET_NOT_ALLOWED_MESSAGE, QueryEngine, fill_placeholders,
)
from posthog_async.testing._store import ProjectData
from tests._query_schema import answer_violations, violations
from tests.conftest import API_KEY

@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(slot_wait=0.1)) as srv:
        srv.seed_persons(130)
        yield srv


async def call(server: FakePostHog, method: str, path: str, body: Any = None,
               key: str = API_KEY) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as session, session.request(
            method, server.url + path, json=body,
            headers={"Authorization": f"Bearer {key}"}) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


def hogql(sql: str, **extra: Any) -> dict[str, Any]:
    return {"query": {"kind": "HogQLQuery", "query": sql, **extra}}


async def test_hogql_rows_limits_and_has_more(fake: FakePostHog) -> None:
    status, _, body = await call(fake, "POST", "/api/projects/1/query/", hogql("SELECT id FROM persons"))
    assert status == 200 and len(body["results"]) == 100
    assert (body["hasMore"], body["limit"], body["offset"]) == (True, 100, 0)
    assert answer_violations("HogQLQueryResponse", body) == []
    status, _, body = await call(fake, "POST", "/api/projects/1/query/",
                                 hogql("SELECT id FROM persons LIMIT 120"))
    assert len(body["results"]) == 120 and "hasMore" not in body  # an explicit LIMIT: no paginator


async def test_placeholders_unknown_tables_offset_and_syntax_are_400s(fake: FakePostHog) -> None:
    cases = [
        (hogql("SELECT count() FROM persons WHERE properties.plan = {plan}", values={"plan": "pro"}), 200, None),
        (hogql("SELECT {missing}"), 400, "Placeholder {missing} is not available"),
        (hogql("SELECT * FROM events"), 400, "Unknown table `events`."),
        (hogql("SELECT id FROM persons LIMIT 10 OFFSET 5"), 400, OFFSET_NOT_ALLOWED_MESSAGE),
        (hogql("SELECT id FROM persons LIMIT 2 OFFSET 1 BY id"), 400, OFFSET_NOT_ALLOWED_MESSAGE),
        (hogql("SELECT id FROM (SELECT id FROM persons LIMIT 1, 2)"), 400, OFFSET_NOT_ALLOWED_MESSAGE),
        (hogql("SELECT FROM WHERE"), 400, None),
        ({"query": {"kind": "HogQLQuery", "query": "SELECT 1"}, "refresh": "sometimes"}, 400, None),
    ]
    for body, expected, detail in cases:
        status, _, answer = await call(fake, "POST", "/api/projects/1/query/", body)
        assert status == expected, (body, answer)
        if detail:
            assert answer["detail"].startswith(detail) and answer["type"] == "validation_error"
    assert fake.stats.by_endpoint["POST query/"] == len(cases)


async def test_offset_allowed_for_organisations_on_the_allow_list(fake: FakePostHog) -> None:
    fake.queries.options.allow_offset = True
    status, _, body = await call(fake, "POST", "/api/projects/1/query/",
                                 hogql("SELECT id FROM persons ORDER BY id LIMIT 10 OFFSET 125"))
    assert status == 200 and len(body["results"]) == 5


def test_placeholders_are_constants_never_text_inside_strings() -> None:
    assert fill_placeholders("SELECT '{a}', {a}, `{a}`", {"a": "x'y"}) == "SELECT '{a}', 'x\\'y', `{a}`"
    assert fill_placeholders("x IN {ids}", {"ids": ["a", 2]}) == "x IN ('a', 2)"
    assert fill_placeholders("x IN {ids}", {"ids": ["a"]}) == "x IN ('a',)"


def test_the_engine_sees_what_the_store_holds() -> None:
    project = ProjectData(1)
    project.seed_persons(20)
    engine = QueryEngine()
    try:
        rows = engine.run(project, "SELECT id, properties FROM persons", None).results
        import json

        assert {r[0]: json.loads(r[1]) for r in rows} == {p.uuid: p.properties for p in project.ordered()}
        person = project.ordered()[3]
        person.mutable_properties()["plan"] = "changed"  # a PATCH applied
        sql = "SELECT properties.plan FROM persons WHERE id = {id}"
        assert engine.run(project, sql, {"id": person.uuid}).results == [["changed"]]
        project.delete_person(person)
        assert engine.run(project, sql, {"id": person.uuid}).results == []
        new = project.add_person(["late"], {"plan": "new"})
        assert engine.run(project, sql, {"id": new.uuid}).results == [["new"]]
        engine.frozen = True  # HogQL lagging PostHog's database
        project.delete_person(new)
        assert engine.run(project, sql, {"id": new.uuid}).results == [["new"]]
    finally:
        engine.close()


async def test_concurrency_limit_429_without_retry_after(fake: FakePostHog) -> None:
    fake.queries.options.latency = 0.5
    answers = await asyncio.gather(*[call(fake, "POST", "/api/projects/1/query/", hogql("SELECT 1"))
                                     for _ in range(4)])
    refused = [a for a in answers if a[0] == 429]
    assert len(refused) == 1 and fake.queries.peak_running == {1: 3}
    _, headers, body = refused[0]
    assert "Retry-After" not in headers
    assert body["detail"].startswith("Exceeded maximum concurrency limit: 3 for key: "
                                     "api:query:per-team:1 and task: ")


async def test_async_status_polling_and_cancel(fake: FakePostHog) -> None:
    fake.queries.options.latency = 0.3
    status, _, body = await call(fake, "POST", "/api/projects/1/query/",
                                 {**hogql("SELECT count() FROM persons"), "refresh": "force_async",
                                  "client_query_id": "q1"})
    assert status == 202 and body["query_status"]["complete"] is False
    assert violations("QueryStatusResponse", body) == []
    status, _, body = await call(fake, "GET", "/api/projects/1/query/q1/")
    assert status == 202
    await asyncio.sleep(0.45)
    status, _, body = await call(fake, "GET", "/api/projects/1/query/q1/")
    assert status == 200 and body["query_status"]["results"]["results"] == [[130]]
    assert violations("QueryStatusResponse", body) == []
    status, _, body = await call(fake, "POST", "/api/projects/1/query/",
                                 {**hogql("SELECT 1 FROM nope"), "refresh": "async", "client_query_id": "q2"})
    await asyncio.sleep(0.45)
    status, _, body = await call(fake, "GET", "/api/projects/1/query/q2/")
    assert status == 400 and body["query_status"]["error_message"] == "Unknown table `nope`."
    await call(fake, "POST", "/api/projects/1/query/",
               {**hogql("SELECT 1"), "refresh": "force_async", "client_query_id": "q3"})
    status, _, body = await call(fake, "DELETE", "/api/projects/1/query/q3/")
    assert status == 200 and body == {"message": "Query cancelled"}
    status, _, _ = await call(fake, "GET", "/api/projects/1/query/q3/")
    assert status == 404 and fake.queries.cancelled == ["q3"]
    fake.queries.options.status_ttl = 0
    await call(fake, "POST", "/api/projects/1/query/", {**hogql("SELECT 1"), "refresh": "force_async",
                                                        "client_query_id": "q4"})
    assert (await call(fake, "GET", "/api/projects/1/query/q4/"))[0] == 404  # statuses expire


async def test_kind_in_path_must_match_the_body_and_other_kinds_need_a_hook(fake: FakePostHog) -> None:
    status, _, body = await call(fake, "POST", "/api/projects/1/query/ActorsQuery/", hogql("SELECT 1"))
    assert status == 400 and body["detail"] == (
        'Query kind mismatch: path kind "ActorsQuery" does not match body kind "HogQLQuery".')
    assert (await call(fake, "POST", "/api/projects/1/query/HogQLQuery/", hogql("SELECT 1")))[0] == 200
    status, _, body = await call(fake, "POST", "/api/projects/1/query/",
                                 {"query": {"kind": "TrendsQuery", "series": []}})
    assert status == 400 and "server.queries.on_query('TrendsQuery'" in body["detail"]
    fake.queries.on_query("TrendsQuery", lambda query, project: {"results": [len(project.persons)]})
    status, _, body = await call(fake, "POST", "/api/projects/1/query/",
                                 {"query": {"kind": "TrendsQuery", "series": []}})
    assert status == 200 and body == {"results": [130]}


async def test_actors_query_pages_with_limit_offset_and_has_more(fake: FakePostHog) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        status, _, body = await call(fake, "POST", "/api/projects/1/query/", {"query": {
            "kind": "ActorsQuery", "select": ["actor", "id"], "limit": 50, "offset": offset,
            "source": {"kind": "InsightActorsQuery", "day": "2026-01-01",
                       "source": {"kind": "TrendsQuery", "series": []}}}})
        assert status == 200 and answer_violations("ActorsQueryResponse", body) == []
        seen += [row[1] for row in body["results"]]
        assert all(row[0]["id"] == row[1] for row in body["results"])
        if not body["hasMore"]:
            break
        offset += 50
    assert sorted(seen) == sorted(fake.project().persons)


async def test_query_throttles_by_kind(fake: FakePostHog) -> None:
    fake.set_rate_limits({"hogql": [(2, 3600)], "persons": [(100, 60)], "queries": [(1, 3600)]})
    codes = [(await call(fake, "POST", "/api/projects/1/query/", hogql("SELECT 1")))[0] for _ in range(3)]
    assert codes == [200, 200, 429]
    actors = {"query": {"kind": "ActorsQuery", "limit": 1}}
    codes = [(await call(fake, "POST", "/api/projects/1/query/", actors))[0] for _ in range(2)]
    assert codes == [200, 429]  # its hourly window, not the HogQL one
    status, headers, _ = await call(fake, "GET", "/api/projects/1/query/whatever/")
    assert status == 429 and "Retry-After" in headers  # polls count there too


def test_import_works_without_the_sql_engine_and_a_query_says_what_to_install() -> None:
    script = (
        "import sys, asyncio; sys.modules['sqlglot'] = None; sys.modules['duckdb'] = None\n"
        "import posthog_async.testing as t\n"
        "async def main():\n"
        "    async with t.FakePostHog(rate_limits=None) as s:\n"
        "        async with s.client(rate_limits=None) as ph:\n"
        "            try:\n"
        "                await ph.query.hogql('SELECT 1')\n"
        "            except Exception as e:\n"
        "                print(type(e).__name__, e)\n"
        "asyncio.run(main())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "InternalServerError" in out.stdout and "posthog-async-client[testing-sql]" in out.stdout


@pytest.mark.parametrize("flag", ["--query-concurrency", "--query-slot-wait", "--query-latency",
                                  "--query-allow-offset", "--query-old-stickiness"])
def test_the_standalone_server_exposes_the_query_knobs(flag: str) -> None:
    from posthog_async.testing.__main__ import build_parser

    assert flag in build_parser().format_help()
