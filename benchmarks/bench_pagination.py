"""3. Pagination: prefetch one page ahead, page size for iteration, early stop, flat memory.

- **Prefetch**: a fake server that answers every request after 20 ms, and a caller that spends
  20 ms on each 1000 persons (``time.sleep``, which blocks the event loop as CPU-bound work
  would: only a request already sent makes progress meanwhile). ``async for`` over
  ``ph.persons.list()`` (our default iteration page of 1000, and ``limit=100``) vs a plain
  aiohttp loop that fetches the next page only when the caller is done (``limit=1000`` and
  ``limit=100``). Persons/s (wall), calls used (each one a call of PostHog's 240/min persons
  budget), and client CPU per person. Interleaved rounds, medians.
- **Early stop**: ``break`` after the first person: calls sent, time to leave the loop (the
  prefetched request is cancelled, not awaited), tasks left behind.
- **Memory**: peak traced memory (tracemalloc) of the client while streaming 25k and 100k
  persons: flat means the peak does not grow with the number of persons.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import tracemalloc
from typing import Any
from collections.abc import Awaitable, Callable

import aiohttp

from posthog_async import AsyncPostHog

from _common import machine_line, median, smoke_parser, versions
from _server import API_KEY, fake_server

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
LATENCY = 0.020  # seconds the server takes per page
WORK = 0.020  # seconds of caller work per 1000 persons

Result = tuple[float, int, float]  # persons/s, calls, client CPU seconds per person


class Worker:
    """The caller's work: ``WORK`` seconds per 1000 persons, blocking the loop."""

    def __init__(self) -> None:
        self.count = 0

    def take(self, _person: Any) -> None:
        self.count += 1
        if self.count % 1000 == 0:
            time.sleep(WORK)


def count_calls(ph: AsyncPostHog) -> Callable[[], int]:
    transport = ph._transport
    request = transport.request
    calls = 0

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await request(*args, **kwargs)

    transport.request = counting  # type: ignore[method-assign]
    return lambda: calls


async def _timed(fn: Callable[[], Awaitable[int]], n: int) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    calls = await fn()
    return n / (time.perf_counter() - wall), (time.process_time() - cpu) / n, calls


async def ours(url: str, n: int, limit: int | None) -> Result:
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None) as ph:
        await ph.persons.list(limit=1)  # connection open
        calls = count_calls(ph)
        worker = Worker()

        async def run() -> int:
            async for person in ph.persons.list(limit=limit):
                worker.take(person)
            return calls()

        rate, cpu, used = await _timed(run, n)
    assert worker.count == n, worker.count
    return rate, used, cpu


async def plain(url: str, n: int, limit: int) -> Result:
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        async with session.get(f"{url}/api/projects/1/persons/?limit=1") as resp:
            await resp.read()
        worker = Worker()

        async def run() -> int:
            calls = 0
            next_url: str | None = f"{url}/api/projects/1/persons/?limit={limit}"
            while next_url:
                async with session.get(next_url) as resp:
                    resp.raise_for_status()
                    page = json.loads(await resp.read())
                calls += 1
                for person in page["results"]:
                    worker.take(person)
                next_url = page["next"]
            return calls

        rate, cpu, used = await _timed(run, n)
    assert worker.count == n, worker.count
    return rate, used, cpu


async def early_stop(url: str, closing: bool) -> tuple[int, float, int]:
    """``break`` after the first person; returns calls sent, seconds until every task the loop
    started is gone, and loop iterations that took. A bare ``break`` leaves the async generator
    to the event loop's finaliser (it runs ``aclose()`` as soon as the generator is freed);
    ``contextlib.aclosing`` closes it before the ``async with`` ends."""
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None) as ph:
        await ph.persons.list(limit=1)
        calls = count_calls(ph)
        before = set(asyncio.all_tasks())
        if closing:
            async with contextlib.aclosing(ph.persons.list().__aiter__()) as people:
                async for _ in people:
                    await asyncio.sleep(LATENCY / 4)  # the prefetched request is on its way
                    started = time.perf_counter()
                    break
        else:
            async for _ in ph.persons.list():
                await asyncio.sleep(LATENCY / 4)
                started = time.perf_counter()
                break
        spins = 0
        while set(asyncio.all_tasks()) - before and spins < 1000:
            await asyncio.sleep(0)
            spins += 1
        return calls(), time.perf_counter() - started, spins


async def stream_memory(url: str, total: int) -> tuple[int, float]:
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None) as ph:
        await ph.persons.list(limit=1)
        tracemalloc.start()
        start = time.perf_counter()
        count = 0
        async for _ in ph.persons.list():
            count += 1
            if count == total:
                break
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert count == total, count
    return peak, total / elapsed


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--persons", type=int, default=10_000, help="persons per prefetch run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", type=int, nargs=2, default=[25_000, 100_000])
    args = parser.parse_args(argv)
    if args.smoke:
        args.persons, args.rounds, args.memory = 2000, 1, [1000, 2000]
    print(machine_line())
    rows: list[tuple[str, str]] = []
    n = args.persons
    variants: dict[str, Callable[[str], Awaitable[Result]]] = {
        "posthog-async async for (default page 1000)": lambda u: ours(u, n, None),
        "plain aiohttp loop, limit=1000, no prefetch": lambda u: plain(u, n, 1000),
        "posthog-async async for, limit=100": lambda u: ours(u, n, 100),
        "plain aiohttp loop, limit=100, no prefetch": lambda u: plain(u, n, 100),
    }
    cond = (f"{n:,} persons, server latency {LATENCY * 1e3:.0f} ms/page, caller work "
            f"{WORK * 1e3:.0f} ms per 1000 persons (blocking), unpaced, {args.rounds} rounds")
    with fake_server(n, latency=LATENCY) as url:
        samples: dict[str, list[Result]] = {name: [] for name in variants}
        names = list(variants)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                samples[name].append(asyncio.run(variants[name](url)))
        ideal = 1000 / max(LATENCY, WORK)
        print(f"-- prefetch [{cond}]; with prefetch at most {ideal:,.0f} persons/s, without "
              f"{1000 / (LATENCY + WORK):,.0f}")
        for name, values in samples.items():
            rate = median([v[0] for v in values])
            calls = values[0][1]
            cpu = median([v[2] for v in values]) * 1e6
            result = f"{rate:,.0f} persons/s, {calls} calls, {cpu:.1f} µs client CPU/person"
            print(f"  {name:46} {result}")
            rows.append((f"pagination: {name} [{cond}]", result))
        for closing in (False, True):
            calls, gone, spins = asyncio.run(early_stop(url, closing))
            how = "inside contextlib.aclosing" if closing else "bare break"
            result = (f"{calls} calls sent (1 prefetched); every task gone {gone * 1e3:.1f} ms "
                      f"after the break ({spins} loop iterations; the request takes "
                      f"{LATENCY * 1e3:.0f} ms: cancelled, not awaited)")
            print(f"-- early stop, {how}: {result}")
            rows.append((f"pagination: stop after the first person, {how} [server latency "
                         f"{LATENCY * 1e3:.0f} ms]", result))
    small, large = args.memory
    with fake_server(large) as url:
        results = {total: asyncio.run(stream_memory(url, total)) for total in (small, large)}
    (peak_s, _), (peak_l, rate_l) = results[small], results[large]
    result = (f"peak traced memory {peak_s / 1e6:.1f} MB for {small:,} persons, "
              f"{peak_l / 1e6:.1f} MB for {large:,} ({peak_l / peak_s:.2f}x for "
              f"{large / small:.0f}x the persons); {rate_l:,.0f} persons/s under tracemalloc")
    print(f"-- memory: {result}")
    rows.append((f"pagination: memory while streaming [default page 1000, no latency, "
                 f"{versions('msgspec')}]", result))
    return rows


if __name__ == "__main__":
    main()
