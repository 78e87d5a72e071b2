"""4. Rate-limit utilisation: bulk delete 200,000 ids against a server limited to 60 calls / 10 s.

Achieved calls per 10-second window / 60, with zero chunks lost. Takes about 35 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiohttp import web

from posthog_async import RateLimits, RateWindow
from posthog_async.testing import FakePostHog


async def run(ids: int) -> tuple[float, float, int, bool]:
    limit, period = 60, 10.0
    async with FakePostHog(rate_limits={"crud": [(limit, period)]}) as server:
        server.seed_persons(ids)
        sent: list[float] = []

        def record(request: web.Request) -> None:
            if request.path.endswith("/bulk_delete/"):
                sent.append(time.monotonic())
            return None

        server.add_hook(record)
        limits = RateLimits(crud=(RateWindow(limit, period),))
        async with server.client(rate_limits=limits) as ph:
            start = time.monotonic()
            report = await ph.persons.bulk_delete_all(
                distinct_ids=(f"user-{i}" for i in range(1, ids + 1)))
            elapsed = time.monotonic() - start
        lost = len(report.failed_chunks)
        ok = report.ok and server.ids_deleted == ids
        # utilisation: calls made / calls the limit allowed over the run (first window full).
        windows = elapsed / period
        allowed = limit * max(1.0, windows)
        utilisation = len(sent) / allowed if windows >= 1 else 1.0
        busiest = max(sum(1 for t in sent if s <= t < s + period) for s in sent)
        print(f"{ids:,} ids, {len(sent)} calls in {elapsed:.1f}s: utilisation {utilisation:.3f} "
              f"of {limit}/{period:.0f}s, busiest window {busiest}/{limit}, "
              f"429s {server.stats.throttled}, chunks lost {lost}, all deleted {ok}")
        return utilisation, elapsed, server.stats.throttled, ok and lost == 0


def main() -> list[tuple[str, str]]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ids", type=int, default=200_000)
    args = parser.parse_args()
    utilisation, elapsed, throttled, ok = asyncio.run(run(args.ids))
    return [(f"rate-limit utilisation ({args.ids:,} ids, 60/10 s)",
             f"{utilisation:.3f} of the limit, {throttled} x 429, chunks lost: {0 if ok else 'SOME'}")]


if __name__ == "__main__":
    main()
