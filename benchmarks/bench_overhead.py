"""1. Request overhead: client CPU per ``persons.retrieve`` at concurrency 1, 8 and 64.

Variants, all against one fake server in its own process, at equal concurrency C:

- ``posthog-async`` with the default limiter on, its ``persons`` window too large to ever wait
  (``RateLimits(persons=[(10**9, 60)])``): the cost of asking, not of waiting;
- ``posthog-async`` with the limiter off (``rate_limits=None``);
- raw aiohttp (one ``ClientSession``, ``TCPConnector(limit=C)``) + ``json.loads``;
- httpx as its docs recommend: one shared ``AsyncClient`` with ``httpx.Limits(max_connections=C)``,
  ``.json()``; whether ``sniffio`` is installed is printed (without it httpcore retries a
  failing import on every request);
- requests as its docs recommend for threads: a ``Session`` per worker thread (Sessions are not
  documented as thread-safe), ``ThreadPoolExecutor(max_workers=C)``, ``.json()``.

The harness is the same for everyone and adds nothing per request: C workers, each sending its
share of the requests back to back (C requests in flight at all times; at C=1 a plain loop). No
semaphore or task per request in the harness; our client's own concurrency cap is C, so it
never blocks. Client CPU is ``time.process_time()`` of this process (all threads) over the
timed requests, after a warm-up that opens the connections. Rounds are interleaved, the order
rotated every round, and each ratio is ours / raw aiohttp within the same round.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Awaitable, Callable

import aiohttp

from posthog_async import AsyncPostHog, RateLimits

from _common import machine_line, median, ratio_stats, smoke_parser, version, versions
from _server import API_KEY, fake_server, first_person_uuid

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
#: The default limiter with a window no run comes near: every request asks, none waits.
LIMITER_ON = RateLimits(persons=[(10**9, 60.0)])


async def _drive(call: Callable[[], Awaitable[object]], n: int, c: int) -> float:
    """CPU seconds per request of ``n`` calls from ``c`` back-to-back workers."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    await asyncio.gather(*(worker(2) for _ in range(c)))  # warm-up: c connections open
    per = max(1, n // c)
    cpu = time.process_time()
    if c == 1:
        await worker(per)
    else:
        await asyncio.gather(*(worker(per) for _ in range(c)))
    return (time.process_time() - cpu) / (per * c)


async def ours(url: str, uuid: str, n: int, c: int, limits: RateLimits | None) -> float:
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=limits,
                            max_concurrency=c, max_connections=c) as ph:
        return await _drive(lambda: ph.persons.retrieve(uuid), n, c)


async def raw_aiohttp(url: str, uuid: str, n: int, c: int) -> float:
    target = f"{url}/api/projects/1/persons/{uuid}/"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c),
                                     headers=HEADERS) as session:
        async def one() -> object:
            async with session.get(target) as resp:
                resp.raise_for_status()
                return json.loads(await resp.read())

        return await _drive(one, n, c)


async def httpx_client(url: str, uuid: str, n: int, c: int) -> float:
    import httpx

    target = f"{url}/api/projects/1/persons/{uuid}/"
    async with httpx.AsyncClient(headers=HEADERS,
                                 limits=httpx.Limits(max_connections=c)) as client:
        async def one() -> object:
            resp = await client.get(target)
            resp.raise_for_status()
            return resp.json()

        return await _drive(one, n, c)


def requests_threads(url: str, uuid: str, n: int, c: int) -> float:
    import requests

    target = f"{url}/api/projects/1/persons/{uuid}/"
    local = threading.local()
    sessions: list[requests.Session] = []

    def session() -> requests.Session:
        s = getattr(local, "session", None)
        if s is None:
            s = local.session = requests.Session()
            s.headers.update(HEADERS)
            sessions.append(s)
        return s

    def worker(count: int) -> None:
        s = session()
        for _ in range(count):
            resp = s.get(target)
            resp.raise_for_status()
            resp.json()

    per = max(1, n // c)
    with ThreadPoolExecutor(max_workers=c) as pool:
        list(pool.map(worker, [2] * c))  # warm-up (a thread may serve several warm-ups)
        cpu = time.process_time()
        list(pool.map(worker, [per] * c))
        spent = time.process_time() - cpu
    for s in sessions:
        s.close()
    return spent / (per * c)


VARIANTS: dict[str, Callable[[str, str, int, int], float]] = {
    "posthog-async, limiter on": lambda u, i, n, c: asyncio.run(ours(u, i, n, c, LIMITER_ON)),
    "posthog-async, limiter off": lambda u, i, n, c: asyncio.run(ours(u, i, n, c, None)),
    "raw aiohttp + json.loads": lambda u, i, n, c: asyncio.run(raw_aiohttp(u, i, n, c)),
    "httpx.AsyncClient": lambda u, i, n, c: asyncio.run(httpx_client(u, i, n, c)),
    "requests, Session per thread": requests_threads,
}
OURS_AND_BASELINE = ("posthog-async, limiter on", "posthog-async, limiter off",
                     "raw aiohttp + json.loads")
TARGETS = {"posthog-async, limiter on": 1.10, "posthog-async, limiter off": 1.05}


def conditions(name: str, c: int) -> str:
    if name == "posthog-async, limiter on":
        extra = "LocalRateLimiter, persons window 10^9/60 s (never waits)"
    elif name == "posthog-async, limiter off":
        extra = "rate_limits=None"
    elif name.startswith("raw aiohttp"):
        extra = f"one ClientSession, TCPConnector(limit={c})"
    elif name.startswith("httpx"):
        extra = (f"one AsyncClient, Limits(max_connections={c}); "
                 + versions("httpx", "httpcore", "sniffio"))
    else:
        extra = (f"ThreadPoolExecutor({c}), a Session per thread; "
                 + versions("requests", "urllib3"))
    return f"C={c}, {extra}"


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("-n", type=int, default=1536, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.rounds, args.concurrency = 64, 1, [1, 8]
    print(machine_line())
    rows: list[tuple[str, str]] = []
    variants = dict(VARIANTS)
    for name, package in (("httpx.AsyncClient", "httpx"),
                          ("requests, Session per thread", "requests")):
        if version(package) is None:  # the [bench] extra is not installed: say so, go on
            del variants[name]
            rows.append((f"overhead: persons.retrieve, {name}",
                         f"skipped: {package} is not installed (pip install -e '.[bench]')"))
    with fake_server(1000) as url:
        uuid = first_person_uuid(url)
        for c in args.concurrency:
            samples: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for r in range(args.rounds):  # interleaved, the order rotated each round
                for name in names[r % len(names):] + names[:r % len(names)]:
                    # httpx and requests cost 4-40x more per request: a quarter of the
                    # requests measures them well enough and keeps the run short.
                    n = args.n if name in OURS_AND_BASELINE else max(c, args.n // 4)
                    samples[name].append(variants[name](url, uuid, n, c))
            base = samples["raw aiohttp + json.loads"]
            print(f"-- concurrency {c}: {args.rounds} interleaved rounds x {args.n} requests, "
                  f"client CPU per request (median) and ratio to raw aiohttp (median, range)")
            for name, values in samples.items():
                us = median(values) * 1e6
                if name.startswith("raw aiohttp"):
                    result = f"{us:.0f} µs CPU/request (baseline)"
                else:
                    stats = ratio_stats(values, base)
                    target = TARGETS.get(name)
                    verdict = "" if target is None else (
                        f"; target ≤ {target:.2f}x: {'met' if stats.median <= target else 'MISSED'}")
                    result = f"{us:.0f} µs CPU/request, {stats} raw aiohttp{verdict}"
                print(f"  {name:30} {result}   [{conditions(name, c)}]")
                n = args.n if name in OURS_AND_BASELINE else max(c, args.n // 4)
                rows.append((f"overhead: persons.retrieve, {name} [{conditions(name, c)}; "
                             f"{args.rounds} rounds x {n}]", result))
    return rows


if __name__ == "__main__":
    main()
