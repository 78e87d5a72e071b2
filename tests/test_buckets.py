"""Buckets are independent: waiting for one bucket's pacing, a spent window or a 429 hold never
takes a concurrency slot from the others, and never breaks a window (issue 18.1, 17.8).

Against the fake PostHog on 127.0.0.1, throttling with the same windows as the client where it
matters, so a window broken by the client would show up as a 429.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from aiohttp import web

from posthog_async import (
    AsyncPostHog,
    Bucket,
    PostHogError,
    RateLimitError,
    RateLimits,
    RateLimitWaitError,
    RetryPolicy,
)
from posthog_async._exceptions import make_status_error
from posthog_async.testing import FakePostHog, Faults

from ._valkey import any_redis
from .conftest import API_KEY, fast_retries

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


def arrivals_of(server: FakePostHog, marker: str) -> list[float]:
    times: list[float] = []

    def hook(request: web.Request) -> None:
        if marker in request.path:
            times.append(time.monotonic())

    server.add_hook(hook)
    return times


def busiest(times: list[float], period: float) -> int:
    return max((sum(1 for t in times if s <= t < s + period) for s in times), default=0)


async def test_a_paced_bucket_holds_no_slot(server: FakePostHog) -> None:
    """Twelve deletes paced at 10/s with four slots: the reads do not queue behind them."""
    server.seed_persons(12)
    server.set_rate_limits({"person_deletes": [(10, 1.0)]})
    limits = RateLimits(person_deletes=[(10, 1.0)], safety_margin=0.1)  # a busy CI machine
    async with server.client(rate_limits=limits, max_concurrency=4) as ph:
        deletes = [asyncio.create_task(ph.persons.bulk_delete(distinct_ids=[f"user-{i}"]))
                   for i in range(1, 13)]
        await asyncio.sleep(0.05)  # the deletes are queued for their bucket
        started = time.monotonic()
        reads = await asyncio.gather(*(ph.users.retrieve() for _ in range(4)))
        took = time.monotonic() - started
        await asyncio.gather(*deletes)
    assert took < 0.3, f"4 reads took {took:.2f}s behind the paced deletes"
    assert all(me.email == "owner@example.com" for me in reads)
    assert server.ids_deleted == 12 and server.stats.throttled == 0


async def test_a_spent_hourly_window_leaves_the_others_alone_and_aclose_is_at_once(
        server: FakePostHog) -> None:
    """The issue's reproduction: deletes 3 per hour, four slots, twelve deletes waiting. Reads
    answer at once; closing the client ends every waiting delete at once."""
    server.seed_persons(12)
    ph = server.client(rate_limits=RateLimits(person_deletes=[(3, 3600)]), max_concurrency=4,
                       max_retry_after=7200)  # long waits are waited out, not raised
    deletes = [asyncio.create_task(ph.persons.bulk_delete(distinct_ids=[f"user-{i}"]))
               for i in range(1, 13)]
    await asyncio.sleep(0.1)
    person = await asyncio.wait_for(ph.persons.retrieve(next(iter(server.project().persons))), 2)
    assert person.uuid
    started = time.monotonic()
    await asyncio.wait_for(ph.aclose(), 2)
    closed_in = time.monotonic() - started
    results = await asyncio.gather(*deletes, return_exceptions=True)
    waited_out = [r for r in results if isinstance(r, PostHogError) and "closed" in str(r)]
    assert closed_in < 0.5 and len(waited_out) == 11  # the first one went out at once
    assert server.ids_deleted == 1


async def test_a_spent_window_beyond_max_retry_after_is_raised_at_once(server: FakePostHog) -> None:
    server.seed_persons(12)
    async with server.client(rate_limits=RateLimits(person_deletes=[(3, 3600)]),
                             max_concurrency=4) as ph:
        started = time.monotonic()
        results = await asyncio.gather(
            *(ph.persons.bulk_delete(distinct_ids=[f"user-{i}"]) for i in range(1, 13)),
            return_exceptions=True)
        took = time.monotonic() - started
    refused = [r for r in results if isinstance(r, RateLimitWaitError)]
    assert len(refused) == 11 and took < 1
    assert all(r.bound == "max_retry_after" and r.retry_after > 1000 and r.bucket == "person_deletes"
               for r in refused)
    assert "not sent" in str(refused[0]) and "person_deletes" in str(refused[0])
    assert server.stats.requests == 1


@pytest.mark.parametrize("limiter", ["local", "redis"])
async def test_scarce_slots_never_burst_a_window(server: FakePostHog, limiter: str,
                                                 request: pytest.FixtureRequest) -> None:
    """A slow server and two slots: calls queue for slots after their bucket let them go, and
    still no window is broken (a send is recorded when it leaves, never ahead)."""
    limits = RateLimits(persons=[(4, 1.0)], person_deletes=(), general=(), users=(),
                        safety_margin=0.1)  # room for a busy CI machine's jitter
    kwargs: dict[str, Any] = {"rate_limits": limits}
    if limiter == "redis":
        url = request.getfixturevalue("redis_url")
        from posthog_async import RedisRateLimiter
        kwargs = {"rate_limiter": RedisRateLimiter(url, limits=limits, safety_margin=0.2,
                                                   namespace=f"burst-{time.monotonic_ns()}")}
    server.seed_persons(1)
    server.set_rate_limits({"persons": [(4, 1.0)]})
    server.faults = Faults(latency=0.4)
    arrivals = arrivals_of(server, "/persons/")
    async with server.client(max_concurrency=2, **kwargs) as ph:
        await asyncio.gather(*(ph.persons.list(limit=1).first_page() for _ in range(10)))
    assert server.stats.throttled == 0 and len(arrivals) == 10
    assert busiest(arrivals, 1.0) <= 4


@pytest.fixture
def redis_url() -> Iterator[str]:
    with any_redis() as url:
        yield url


# -- calls that count in two buckets --------------------------------------------------------


async def test_a_call_in_two_buckets_is_paced_in_both(server: FakePostHog) -> None:
    limits = RateLimits(persons=[(2, 1.0)], general=[(2, 1.0)], safety_margin=0)
    async with server.client(rate_limits=limits) as ph:
        transport = ph._transport
        started = time.monotonic()
        await transport.request("GET", "/api/users/@me/", bucket="persons")
        await transport.request("GET", "/api/users/@me/", bucket="general")
        await transport.request("GET", "/api/users/@me/", bucket=("persons", "general"))
        both = time.monotonic() - started
        await transport.request("GET", "/api/users/@me/", bucket="persons")
        after = time.monotonic() - started
    assert 0.45 < both < 0.8  # half a second after each bucket's first call
    assert 0.95 < after < 1.3  # and persons counted it: the next is another half second on


async def test_a_429_holds_only_the_bucket_whose_windows_can_ask_that_long(
        server: FakePostHog) -> None:
    """PostHog's Retry-After is the longest wait among the throttles that refused: a 30 s wait
    comes from a bucket with a window that long, and a bucket whose longest window is a second
    is not held at all (``posthog-query-notes.md``: "a 429 holds only the bucket that
    refused"); were it refused too, its own next 429 would say so."""
    limits = RateLimits(persons=[(100, 1.0)], general=[(100, 1.0), (1000, 3600.0)], safety_margin=0)
    server.fail_next(429, retry_after=30)
    async with server.client(rate_limits=limits, max_retry_after=10) as ph:
        transport = ph._transport
        with pytest.raises(RateLimitError) as info:
            await transport.request("GET", "/api/users/@me/", bucket=("persons", "general"))
        assert info.value.retry_after == 30 and not isinstance(info.value, RateLimitWaitError)
        with pytest.raises(RateLimitWaitError) as held:
            await transport.request("GET", "/api/users/@me/", bucket="general")
        started = time.monotonic()
        await transport.request("GET", "/api/users/@me/", bucket="persons")
        persons_waited = time.monotonic() - started
    assert 25 < held.value.retry_after <= 30 and held.value.bucket == "general"
    assert persons_waited < 0.3
    assert server.stats.requests == 2


def test_the_refusing_bucket_of_a_two_bucket_call() -> None:
    from posthog_async._ratelimit import refusing_bucket

    limits = RateLimits(persons=[(240, 60)], queries=[(1200, 3600)], users=(), safety_margin=0)
    both: tuple[Bucket, ...] = ("persons", "queries")
    assert refusing_bucket(both, 3000, limits.longest_period) == "queries"  # the hourly window
    assert refusing_bucket(both, 30, limits.longest_period) == "persons"  # the narrowest fitting
    assert refusing_bucket(both, 9000, limits.longest_period) == "queries"  # none fits: longest
    # an unpaced bucket could have any window: held only when no paced one fits
    assert refusing_bucket(("users", "persons"), 30, limits.longest_period) == "persons"
    assert refusing_bucket(("users", "persons"), 300, limits.longest_period) == "users"


# -- 429s that are not a rate window ---------------------------------------------------------


CONCURRENCY_DETAILS = [
    "Exceeded maximum concurrency limit: 3 for key: api:query:per-team:1 and task: abc",
    "Too many queries are running right now — please try again in a moment.",
]


@pytest.mark.parametrize("detail", CONCURRENCY_DETAILS)
def test_the_query_concurrency_429_is_not_a_rate_window(detail: str) -> None:
    body = msgspec.json.encode({"type": "throttled_error", "code": "throttled", "detail": detail,
                                "attr": None})
    error = make_status_error(status_code=429, method="POST", path="/api/projects/1/query/",
                              raw_body=body, headers={})
    window = make_status_error(status_code=429, method="GET", path="/x/", headers={},
                               raw_body=b'{"detail": "Request was throttled. Expected available '
                                        b'in 3 seconds."}')
    policy = RetryPolicy(rng=lambda: 0.0)
    assert isinstance(error, RateLimitError) and error.retry_after is None
    assert not policy.holds_bucket(error) and policy.holds_bucket(window)  # type: ignore[arg-type]
    assert policy.decide(error, attempt=1, idempotent=False) == policy.backoff(1)


async def test_a_concurrency_429_backs_off_without_holding_the_bucket(server: FakePostHog) -> None:
    refused: list[float] = []

    def hook(request: web.Request) -> web.StreamResponse | None:
        if request.path.endswith("/@me/") and not refused:
            refused.append(time.monotonic())
            return web.json_response({"type": "throttled_error", "code": "throttled",
                                      "detail": CONCURRENCY_DETAILS[0], "attr": None}, status=429)
        return None

    server.add_hook(hook)
    policy = RetryPolicy(initial=0.5, max_backoff=0.5, rng=lambda: 1.0)
    limits = RateLimits(users=[(1000, 1.0)])
    async with server.client(rate_limits=limits, retry_policy=policy) as ph:
        retried = asyncio.create_task(ph.users.retrieve())
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await ph.users.list()  # the same bucket: not held back by the refusal
        other = time.monotonic() - started
        await retried
        retried_after = time.monotonic() - refused[0]
    assert other < 0.2 and 0.45 < retried_after < 1.0


# -- a long Retry-After is not slept through inside the transport (issue 17.8) ---------------


async def test_calls_in_flight_during_a_long_retry_after_are_refused_at_once(
        server: FakePostHog) -> None:
    """A 429 with Retry-After: 3600 at default concurrency: the call that got it raises it, and
    every other call of the bucket raises a RateLimitWaitError at once instead of sleeping an
    hour where nothing (a job's stop, for one) can reach it."""
    server.seed_persons(40)
    server.faults = Faults(latency=0.05)
    server.fail_next(429, retry_after=3600, path_contains="bulk_delete")
    async with server.client() as ph:  # default limits, max_retry_after 120, concurrency 8
        started = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(
            *(ph.persons.bulk_delete(distinct_ids=[f"user-{i}"]) for i in range(1, 9)),
            return_exceptions=True), 5)
        took = time.monotonic() - started
        reads = await ph.persons.list(limit=1).first_page()  # another bucket: not held
    errors = [r for r in results if isinstance(r, RateLimitError)]
    held = [r for r in errors if isinstance(r, RateLimitWaitError)]
    assert took < 2 and len(errors) + server.ids_deleted == 8
    assert len(errors) - len(held) == 1 and held  # the server's 429, and the refusals it caused
    assert all(3500 < r.retry_after <= 3601 and r.bound == "max_retry_after" for r in held)
    assert reads.results


async def test_an_api_key_never_shows_in_a_refusal(server: FakePostHog) -> None:
    async with AsyncPostHog(API_KEY, host=server.url, project_id=1, max_wait=0,
                            rate_limits=RateLimits(persons=[(1, 60)])) as ph:
        await ph.persons.list(limit=1).first_page()
        with pytest.raises(RateLimitWaitError) as info:
            await ph.persons.list(limit=1).first_page()
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value.__dict__)
    assert info.value.bound == "max_wait" and info.value.retry_after > 50


async def test_fast_retries_still_work_with_holds(server: FakePostHog) -> None:
    server.fail_next(429, retry_after=1, times=2, path_contains="/users/")
    async with server.client(retry_policy=fast_retries()) as ph:
        started = time.monotonic()
        await ph.users.retrieve()
    assert 2 <= time.monotonic() - started < 3.5 and server.stats.errors_injected == 2


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_the_cli_stops_at_once_during_a_long_retry_after(server: FakePostHog,
                                                               tmp_path: Any, stop: int) -> None:
    """Issue 17.8: SIGTERM or one Ctrl-C stops a job at default concurrency whose chunks wait
    out a 429 with Retry-After: 3600, and says how to resume."""
    from ._cli import running, spawn, stop_with, wait_for, write_ids

    server.seed_persons(3000)
    server.faults = Faults(latency=0.05)
    server.fail_next(429, retry_after=3600, path_contains="bulk_delete")
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 3001)])
    async with running(await spawn(server, "persons", "delete", "--distinct-ids-file",
                                   str(source), "--chunk-size", "100")) as proc:
        await wait_for(lambda: server.stats.errors_injected >= 1)
        await asyncio.sleep(0.5)  # every chunk in flight meets the hold
        sent = server.stats.requests
        err, stopped_in = await stop_with(proc, stop)
    assert proc.returncode == 130 and "--resume" in err, err[-2000:]
    assert stopped_in < 3, f"the stop took {stopped_in:.1f}s"
    assert server.stats.requests - sent <= 8  # nothing new was sent after the stop


async def test_a_refusal_by_the_client_is_not_counted_as_a_delete_call(server: FakePostHog) -> None:
    """A chunk refused before sending (the bucket held by another chunk's 429) waits and is sent
    later; the report's delete_calls counts the calls PostHog may have acted on: not the client's
    refusals, nor PostHog's 429."""
    server.seed_persons(800)
    arrivals = arrivals_of(server, "bulk_delete")
    server.fail_next(429, retry_after=1, path_contains="bulk_delete")
    async with server.client(max_retry_after=0.5) as ph:
        report = await ph.persons.bulk_delete_all(
            distinct_ids=[f"user-{i}" for i in range(1, 801)], chunk_size=100)
    assert report.ok and server.ids_deleted == 800
    assert len(arrivals) == 9 and report.delete_calls == 8  # and the first send, refused
