"""The persons behind an insight point: ``ph.query.actors`` and ``ph.persons.actors.*`` build the
ActorsQuery PostHog built for its legacy endpoints and page its own ``limit``/``offset``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from posthog_async import AsyncPostHog, PersonalAPIKeyNotAllowedError
from posthog_async.resources.query._actors import actors_source
from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions
from tests._query_schema import violations
from tests.conftest import API_KEY, fast_retries

TREND = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
LIFECYCLE = {"kind": "LifecycleQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
STICKINESS = {"kind": "StickinessQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
FUNNEL = {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode", "event": "a"},
                                             {"kind": "EventsNode", "event": "b"}]}
CORRELATION = {"kind": "FunnelCorrelationQuery", "funnelCorrelationType": "events",
               "source": {"kind": "FunnelsActorsQuery", "source": FUNNEL}}


def actors_sent(server: FakePostHog) -> list[dict[str, Any]]:
    bodies = server.stats.bodies.get("POST /api/projects/1/query/", [])
    for body in bodies:
        assert violations("QueryRequest", body) == [], body
    return [b["query"] for b in bodies]


@pytest_asyncio.fixture
async def aserver() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as srv:
        srv.seed_persons(250)
        yield srv


@pytest_asyncio.fixture
async def aph(aserver: FakePostHog) -> AsyncIterator[AsyncPostHog]:
    async with aserver.client(rate_limits=None, retry_policy=fast_retries()) as client:
        yield client


def test_sources_per_insight_kind_as_posthog_builds_them() -> None:
    assert actors_source(TREND, day="2026-01-10") == {
        "kind": "InsightActorsQuery", "source": TREND, "day": "2026-01-10", "series": 0}
    assert actors_source(TREND, day="2026-01-10", series=1, breakdown="Chrome", compare="previous")[
        "breakdown"] == "Chrome"
    assert actors_source(LIFECYCLE, day="2026-01-10", status="dormant") == {
        "kind": "InsightActorsQuery", "source": LIFECYCLE, "day": "2026-01-10", "status": "dormant"}
    assert actors_source(STICKINESS, day=3, operator="gte") == {
        "kind": "StickinessActorsQuery", "source": STICKINESS, "day": 3, "operator": "gte"}
    assert actors_source(FUNNEL, funnel_step=-2) == {
        "kind": "FunnelsActorsQuery", "source": FUNNEL, "funnelStep": -2}
    assert actors_source(CORRELATION, correlation_person_converted=True,
                         correlation_person_entity={"id": "a", "type": "events"}) == {
        "kind": "FunnelCorrelationActorsQuery", "source": CORRELATION,
        "funnelCorrelationPersonConverted": True,
        "funnelCorrelationPersonEntity": {"id": "a", "type": "events"}}
    for bad in (lambda: actors_source(LIFECYCLE, status="gone"),
                lambda: actors_source(STICKINESS, day="2026-01-01"),
                lambda: actors_source(TREND, funnel_step=1),
                lambda: actors_source(FUNNEL, funnel_step=0),
                lambda: actors_source({"kind": "HogQLQuery", "query": "x"}),
                lambda: actors_source({"no": "kind"})):
        with pytest.raises(ValueError):
            bad()


async def test_awaited_the_first_page_iterated_every_person_once(aserver: FakePostHog,
                                                                 aph: AsyncPostHog) -> None:
    page = await aph.query.actors(TREND, day="2026-01-10", limit=100)
    assert len(page.results) == 100 and page.has_more and page.offset == 0
    person = aserver.project().persons[page.results[0].id]
    assert page.results[0].distinct_ids == person.shown_distinct_ids()
    assert page.results[0].properties == person.properties
    everyone = [a async for a in aph.query.actors(TREND, day="2026-01-10", limit=60)]
    assert sorted(a.id for a in everyone) == sorted(aserver.project().persons)
    queries = actors_sent(aserver)[1:]
    assert [q["offset"] for q in queries] == [0, 60, 120, 180, 240]  # the query's own fields
    assert all(q["limit"] == 60 and q["select"] == ["actor"] for q in queries)


async def test_persons_actors_use_the_query_api_with_the_legacy_names(aserver: FakePostHog,
                                                                      aph: AsyncPostHog) -> None:
    await aph.persons.actors.trends(TREND, day="2026-01-10", breakdown_value="Chrome")
    await aph.persons.actors.lifecycle(LIFECYCLE, target_date="2026-01-10", lifecycle_type="new")
    await aph.persons.actors.stickiness(STICKINESS, stickiness_days=3)
    await aph.persons.actors.funnel(FUNNEL, funnel_step=2)
    await aph.persons.actors.funnel_correlation(CORRELATION, person_converted=False)
    sources = [q["source"] for q in actors_sent(aserver)]
    assert sources[0] == {"kind": "InsightActorsQuery", "source": TREND, "day": "2026-01-10",
                          "series": 0, "breakdown": "Chrome"}
    assert sources[1] == {"kind": "InsightActorsQuery", "source": LIFECYCLE, "day": "2026-01-10",
                          "status": "new"}
    assert sources[2] == {"kind": "StickinessActorsQuery", "source": STICKINESS, "day": 3}
    assert sources[3] == {"kind": "FunnelsActorsQuery", "source": FUNNEL, "funnelStep": 2}
    assert sources[4]["funnelCorrelationPersonConverted"] is False
    assert aserver.stats.by_endpoint["GET persons/trends/"] == 0  # the refused endpoint is gone
    with pytest.raises(ValueError, match="takes a TrendsQuery"):
        aph.persons.actors.trends(LIFECYCLE, day="2026-01-10")
    with pytest.raises(ValueError, match="not both"):
        aph.persons.actors.lifecycle(LIFECYCLE, day="2026-01-10", target_date="2026-01-10")


async def test_older_servers_get_stickiness_as_an_insight_actors_query() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                           query_options=QueryOptions(stickiness_actors_query=False)) as server:
        server.seed_persons(30)
        async with server.client(rate_limits=None) as ph:
            found = [a async for a in ph.persons.actors.stickiness(STICKINESS, day=2, limit=20)]
        assert len(found) == 30
        kinds = [q["source"]["kind"] for q in actors_sent(server)]
        assert kinds == ["StickinessActorsQuery", "InsightActorsQuery", "InsightActorsQuery"]
        assert actors_sent(server)[1]["source"]["day"] == 2


async def test_the_resolver_decides_who_is_behind_the_point(aserver: FakePostHog,
                                                            aph: AsyncPostHog) -> None:
    chosen = aserver.project().ordered()[:3]
    aserver.queries.actors_resolver = lambda source, project: chosen
    found = await aph.query.actors(TREND, day="2026-01-10").to_list()
    assert sorted(a.id for a in found) == sorted(p.uuid for p in chosen)


async def test_properties_timeline_keeps_its_error_and_names_the_working_call(
        aph: AsyncPostHog, aserver: FakePostHog) -> None:
    person = aserver.project().ordered()[0]
    with pytest.raises(PersonalAPIKeyNotAllowedError, match="properties_at_time"):
        await aph.persons.properties_timeline(person.uuid)
