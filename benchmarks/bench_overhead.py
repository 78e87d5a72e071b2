"""1. Request overhead: N person retrievals at concurrency 16 through AsyncPostHog, raw aiohttp
with json.loads, httpx.AsyncClient, and sequential requests, against one fake server process."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp
from _server import API_KEY, fake_server, first_person_uuid

from posthog_async import AsyncPostHog

CONCURRENCY = 16


async def gather_limited(n: int, fn) -> None:  # type: ignore[no-untyped-def]
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with sem:
            await fn()

    await asyncio.gather(*(one() for _ in range(n)))


async def ours(url: str, path: str, n: int) -> float:
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None,
                            max_concurrency=CONCURRENCY, max_connections=CONCURRENCY) as ph:
        uuid = path.rsplit("/", 2)[-2]
        await ph.persons.retrieve(uuid)
        start = time.perf_counter()
        await gather_limited(n, lambda: ph.persons.retrieve(uuid))
        return n / (time.perf_counter() - start)


async def raw_aiohttp(url: str, path: str, n: int) -> float:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY),
                                     headers=headers) as session:
        async def one() -> None:
            async with session.get(url + path) as resp:
                json.loads(await resp.read())
        await one()
        start = time.perf_counter()
        await gather_limited(n, one)
        return n / (time.perf_counter() - start)


async def httpx_client(url: str, path: str, n: int) -> float:
    import httpx

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}, limits=limits) as c:
        async def one() -> None:
            (await c.get(url + path)).json()
        await one()
        start = time.perf_counter()
        await gather_limited(n, one)
        return n / (time.perf_counter() - start)


def sequential_requests(url: str, path: str, n: int) -> float:
    import requests

    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {API_KEY}"
        s.get(url + path).json()
        start = time.perf_counter()
        for _ in range(n):
            s.get(url + path).json()
        return n / (time.perf_counter() - start)


def main() -> list[tuple[str, str]]:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds per client")
    args = parser.parse_args()
    with fake_server(1000) as url:
        path = f"/api/projects/1/persons/{first_person_uuid(url)}/"
        results: dict[str, float] = {}
        for _ in range(args.rounds):  # interleaved rounds, best of each
            for name, fn in (("posthog-async", ours), ("raw aiohttp + json.loads", raw_aiohttp),
                             ("httpx.AsyncClient", httpx_client)):
                results[name] = max(results.get(name, 0.0), asyncio.run(fn(url, path, args.n)))
        results["requests (sequential)"] = sequential_requests(url, path, min(args.n, 1000))
    base = results["raw aiohttp + json.loads"]
    rows = []
    print(f"{'client':28} {'req/s':>8} {'vs raw aiohttp':>15}")
    for name, rps in results.items():
        print(f"{name:28} {rps:8.0f} {rps / base:14.2f}x")
        rows.append((f"overhead: {name}", f"{rps:,.0f} req/s ({rps / base:.2f}x raw aiohttp)"))
    return rows


if __name__ == "__main__":
    main()
