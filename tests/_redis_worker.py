"""One worker process of the multi-process test: deletes its slice of ids through a shared limiter.

Run as ``python _redis_worker.py FAKE_URL REDIS_URL FIRST COUNT LIMIT PERIOD`` with the key in
``$POSTHOG_PERSONAL_API_KEY``. It connects and warms its HTTP pool, prints ``ready``, waits for a
line on stdin (the barrier), deletes ``user-FIRST`` .. ``user-(FIRST+COUNT-1)`` and prints a JSON
summary.
"""

from __future__ import annotations

import asyncio
import json
import sys

from posthog_async import AsyncPostHog, RateLimits, RedisRateLimiter


async def main(fake_url: str, redis_url: str, first: int, count: int, limit: int,
               period: float) -> None:
    # Only person deletes are paced: the warm-up read must not touch the shared budget.
    limits = RateLimits(persons=(), person_deletes=[(limit, period)], general=(), users=())
    limiter = RedisRateLimiter(redis_url, limits=limits)
    async with AsyncPostHog(host=fake_url, project_id=1, rate_limiter=limiter) as ph:
        await ph.persons.list(limit=1)  # opens the HTTP connection before the barrier
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        report = await ph.persons.bulk_delete_all(
            distinct_ids=(f"user-{i}" for i in range(first, first + count)))
    print(json.dumps({"ok": report.ok, "calls": report.delete_calls,
                      "failed_ids": len(report.failed_ids), "fallbacks": limiter.fallbacks}),
          flush=True)


if __name__ == "__main__":
    url, redis_url, first, count, limit, period = sys.argv[1:7]
    asyncio.run(main(url, redis_url, int(first), int(count), int(limit), float(period)))
