"""Keyset reads with a composite key, against the offline PostHog: the documented
``key=("created_at", "id")`` reads every row once, ties on ``created_at`` broken by ``id``."""

from __future__ import annotations

import pytest

from posthog_async.testing import FakePostHog

from .conftest import API_KEY

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


async def test_a_composite_key_of_a_timestamp_and_a_uuid_reads_every_row_once() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        server.seed_persons(25)
        persons = list(server.project().ordered())
        for person in persons[5:15]:  # ten persons created at the same second
            person.seed = persons[5].seed
        async with server.client(rate_limits=None) as ph:
            reader = ph.query.keyset(select="created_at, id", from_="persons",
                                     key=("created_at", "id"), page_size=4)
            rows = [row async for row in reader]
        assert sorted(row[1] for row in rows) == sorted(p.uuid for p in persons)
        assert rows == sorted(rows)  # in key order, across every page boundary
        assert reader.last_key == tuple(rows[-1])
        queries = [body["query"]["query"] for body in server.stats.bodies["POST /api/projects/1/query/"]]
        assert len(queries) == 7 and all("OFFSET" not in q.upper() for q in queries)
