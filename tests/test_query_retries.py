"""A query is a read that keeps its ``client_query_id``, so a transient failure of its POST (a
dropped connection, a 500, a 502) is sent again with the client's backoff, as a GET would be;
a 504 (PostHog gave up on this very query) is not. Against the offline PostHog."""

from __future__ import annotations

import pytest

from posthog_async import InternalServerError, RetryEvent
from posthog_async.testing import FakePostHog

from .conftest import API_KEY, fast_retries

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

QUERY = "POST /api/projects/1/query/"


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 502}, {"status": None, "drop": True},
                                   {"status": None, "lose_answer": True}])
async def test_a_transient_failure_of_the_post_is_sent_again(fault: dict[str, object]) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        server.seed_persons(3)
        events: list[RetryEvent] = []
        async with server.client(rate_limits=None, retry_policy=fast_retries(),
                                 on_retry=events.append) as ph:
            server.fail_next(**fault, times=2, method="POST", path_contains="/query/")  # type: ignore[arg-type]
            answer = await ph.query.hogql("SELECT count() FROM persons")
        assert answer.results == [[3]]
        ids = {body["client_query_id"] for body in server.stats.bodies[QUERY]}
        assert len(ids) == 1  # the same query each time, never a new one
        assert [e.attempt for e in events] == [1, 2] and all(e.method == "POST" for e in events)


async def test_the_retries_stop_at_the_budget_and_a_504_is_not_retried() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        async with server.client(rate_limits=None, retry_policy=fast_retries(max_retries=1)) as ph:
            server.fail_next(502, times=2, method="POST", path_contains="/query/")
            with pytest.raises(InternalServerError):
                await ph.query.hogql("SELECT 1")
            assert server.stats.errors_injected == 2  # the first and one retry
            server.fail_next(504, times=2, method="POST", path_contains="/query/")
            with pytest.raises(InternalServerError, match="PostHog gave up on this query"):
                await ph.query.hogql("SELECT 1")
            assert server.stats.errors_injected == 3
