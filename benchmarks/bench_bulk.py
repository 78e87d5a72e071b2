"""2. Bulk throughput: client CPU per id of ``bulk_delete_all`` and ``batch_by_distinct_ids_all``,
unpaced, vs a plain aiohttp loop sending the same chunks at the same concurrency.

Both sides read the ids from a generator (streamed, never a list), send chunks of 1000 ids
(``bulk_delete``) or 200 (``batch_by_distinct_ids``, PostHog's cap) with C calls in flight, and
read every answer. The plain loop is what one would write by hand: ``islice`` chunks off a shared
iterator in C worker coroutines, ``session.post(json=...)``, ``json.loads`` the answer, sum the
counts (lookups: merge the found persons, list the missing); with de-duplication it filters the
generator through a ``seen`` set. Our side also checks every id (``clean_id``: strip, blank,
length, printable, U+FFFD), counts what it drops, and settles every id's outcome.

``bulk_delete`` is sent with ``keep_person=True`` by both sides, so the fake server finds every
person and deletes nobody (each round reuses the same seeded persons); the client's work is the
same as for a real deletion (every id's outcome is settled from the counts). The score is ids
per client-CPU-second (``time.process_time()``); wall-clock ids/s is shown too, but with the
server on the other core it measures the fake server as much as the client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any
from collections.abc import Awaitable, Callable, Iterator

import aiohttp

from posthog_async import AsyncPostHog

from _common import machine_line, median, ratio_stats, smoke_parser, versions
from _server import API_KEY, fake_server

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
PATH = "/api/projects/1/persons/"


def ids(n: int) -> Iterator[str]:
    return (f"user-{i}" for i in range(1, n + 1))


Measured = tuple[float, float]  # (client CPU seconds, wall seconds)


async def _timed(job: Callable[[], Awaitable[None]]) -> Measured:
    cpu, wall = time.process_time(), time.perf_counter()
    await job()
    return time.process_time() - cpu, time.perf_counter() - wall


# -- ours ---------------------------------------------------------------------------------------


async def ours_delete(url: str, n: int, c: int, dedupe: bool) -> Measured:
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None,
                            max_concurrency=c, max_connections=c) as ph:
        await ph.persons.bulk_delete(distinct_ids=["user-1"], keep_person=True)  # warm-up

        async def job() -> None:
            report = await ph.persons.bulk_delete_all(distinct_ids=ids(n), keep_person=True,
                                                      dedupe=dedupe, concurrency=c)
            assert report.ok and report.outcomes["kept"] == n, report
        return await _timed(job)


async def ours_lookup(url: str, n: int, c: int, dedupe: bool) -> Measured:
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None,
                            max_concurrency=c, max_connections=c) as ph:
        await ph.persons.batch_by_distinct_ids(["user-1"])

        async def job() -> None:
            report = await ph.persons.batch_by_distinct_ids_all(ids(n), concurrency=c)
            assert len(report.found) == n and not report.failed, report
        return await _timed(job)


# -- the plain aiohttp loop -----------------------------------------------------------------------


def _unique(source: Iterator[str]) -> Iterator[str]:
    seen: set[str] = set()
    for item in source:
        if item not in seen:
            seen.add(item)
            yield item


async def plain_delete(url: str, n: int, c: int, dedupe: bool) -> Measured:
    async with aiohttp.ClientSession(headers=HEADERS,
                                     connector=aiohttp.TCPConnector(limit=c)) as session:
        target = url + PATH + "bulk_delete/"
        totals = {"found": 0}

        async def send(chunk: list[str]) -> None:
            async with session.post(target, json={"distinct_ids": chunk,
                                                  "keep_person": True}) as resp:
                resp.raise_for_status()
                totals["found"] += json.loads(await resp.read())["persons_found"]

        await send(["user-1"])
        totals["found"] = 0

        async def job() -> None:
            source = _unique(ids(n)) if dedupe else ids(n)

            async def worker() -> None:
                while chunk := list(itertools.islice(source, 1000)):
                    await send(chunk)

            await asyncio.gather(*(worker() for _ in range(c)))
            assert totals["found"] == n, totals
        return await _timed(job)


async def plain_lookup(url: str, n: int, c: int, dedupe: bool) -> Measured:
    async with aiohttp.ClientSession(headers=HEADERS,
                                     connector=aiohttp.TCPConnector(limit=c)) as session:
        target = url + PATH + "batch_by_distinct_ids/"
        found: dict[str, Any] = {}
        missing: list[str] = []

        async def send(chunk: list[str]) -> None:
            async with session.post(target, json={"distinct_ids": chunk}) as resp:
                resp.raise_for_status()
                results = json.loads(await resp.read())["results"]
            found.update(results)
            missing.extend(i for i in chunk if i not in results)

        await send(["user-1"])
        found.clear()

        async def job() -> None:
            source = _unique(ids(n)) if dedupe else ids(n)

            async def worker() -> None:
                while chunk := list(itertools.islice(source, 200)):
                    await send(chunk)

            await asyncio.gather(*(worker() for _ in range(c)))
            assert len(found) == n and not missing
        return await _timed(job)


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--ids", type=int, default=200_000, help="ids per bulk_delete_all run")
    parser.add_argument("--lookup-ids", type=int, default=40_000, help="ids per lookup run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    if args.smoke:
        args.ids, args.lookup_ids, args.rounds = 3000, 600, 1
    print(machine_line())
    c = args.concurrency
    cases: list[tuple[str, int, int, Callable[..., Awaitable[Measured]],
                      Callable[..., Awaitable[Measured]], bool]] = [
        ("bulk_delete_all", args.ids, 1000, ours_delete, plain_delete, True),
        ("bulk_delete_all", args.ids, 1000, ours_delete, plain_delete, False),
        ("batch_by_distinct_ids_all", args.lookup_ids, 200, ours_lookup, plain_lookup, True),
    ]
    rows: list[tuple[str, str]] = []
    with fake_server(max(args.ids, args.lookup_ids)) as url:
        for what, n, chunk, ours, plain, dedupe in cases:
            samples: dict[str, list[Measured]] = {"ours": [], "plain": []}
            for r in range(args.rounds):
                order = [("ours", ours), ("plain", plain)]
                for name, fn in (order if r % 2 == 0 else order[::-1]):
                    samples[name].append(asyncio.run(fn(url, n, c, dedupe)))
            # ids per CPU-second: ours / plain = plain CPU / ours CPU
            stats = ratio_stats([p[0] for p in samples["plain"]], [o[0] for o in samples["ours"]])
            cpu = {k: median([m[0] for m in v]) for k, v in samples.items()}
            wall = {k: median([m[1] for m in v]) for k, v in samples.items()}
            dd = "with" if dedupe else "without"
            cond = (f"{n:,} ids from a generator, {chunk}-id chunks, C={c}, unpaced "
                    f"(rate_limits=None), {dd} de-duplication; {args.rounds} rounds; "
                    f"{versions('aiohttp', 'msgspec')}")
            result = (f"{n / cpu['ours']:,.0f} ids per client-CPU-s vs plain aiohttp loop "
                      f"{n / cpu['plain']:,.0f}: {stats}; target ≥ 0.90x: "
                      f"{'met' if stats.median >= 0.9 else 'MISSED'} (wall {n / wall['ours']:,.0f} "
                      f"vs {n / wall['plain']:,.0f} ids/s)")
            print(f"{what} [{cond}]\n  {result}")
            rows.append((f"{what}, ours vs plain aiohttp [{cond}]", result))
    return rows


if __name__ == "__main__":
    main()
