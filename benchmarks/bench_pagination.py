"""3. Pagination: stream 100k, 200k and 400k persons; throughput and peak client memory."""

from __future__ import annotations

import asyncio
import time
import tracemalloc

from _server import API_KEY, fake_server

from posthog_async import AsyncPostHog


async def stream(url: str, total: int) -> tuple[float, int]:
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None) as ph:
        tracemalloc.start()
        start = time.perf_counter()
        count = 0
        async for _ in ph.persons.list(limit=1000):
            count += 1
            if count == total:
                break
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert count == total, count
    return total / elapsed, peak


def main() -> list[tuple[str, str]]:
    rows = []
    with fake_server(400_000) as url:
        for total in (100_000, 200_000, 400_000):
            rate, peak = asyncio.run(stream(url, total))
            print(f"{total:>7,} persons: {rate:,.0f} persons/s, peak traced memory {peak / 1e6:.1f} MB")
            rows.append((f"stream {total:,} persons", f"{rate:,.0f} persons/s, peak {peak / 1e6:.1f} MB"))
    return rows


if __name__ == "__main__":
    main()
