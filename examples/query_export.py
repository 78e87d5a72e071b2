"""Queries and export: HogQL, the persons behind an insight, and every person to a file.

    python examples/query_export.py                     # a plan breakdown, an insight's persons,
                                                        # the first persons of an export
    python examples/query_export.py persons.jsonl       # ... and every person to persons.jsonl
    python examples/query_export.py --api-queries-plan  # pace HogQL at that plan's 240 a minute

1. one HogQL query: how many persons on each plan (``ph.query.hogql``, a typed answer that
   says whether PostHog cut it);
2. the persons behind yesterday's point of a ``$pageview`` trend (``ph.query.actors``: the
   ActorsQuery PostHog builds for the insight), the first page only;
3. ``ph.persons.export()``: every person once, keyset-paged over HogQL, one page in memory at
   a time; to a JSON Lines file if you name one (the resumable form is the command line's
   ``posthog-async persons export --output persons.jsonl --resume``).

Against your PostHog (``POSTHOG_PERSONAL_API_KEY`` with ``query:read``, ``POSTHOG_PROJECT_ID``)
it only reads. PostHog allows a key 120 HogQL queries an hour, and the client spaces them
evenly (one every 30 s, the first at once): steps 1 and 3 are two queries, so step 3 waits for
its turn. If your organisation has PostHog's "API queries" plan, pass ``--api-queries-plan``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import date, timedelta
from pathlib import Path

import msgspec
from _target import posthog

from posthog_async import RateLimitError, RateLimits

#: PostHog's "API queries" plan: 240 HogQL queries a minute and 2400 an hour (else 120 an hour).
API_QUERIES_PLAN = [(240, 60.0), (2400, 3600.0)]
TREND = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}],
         "dateRange": {"date_from": "-7d"}}


def waiting(seconds: float, error: RateLimitError) -> None:  # an hour's budget spent: say so
    print(f"PostHog's rate limit: resuming in {seconds:.0f}s")


async def main(argv: list[str]) -> int:
    plan = "--api-queries-plan" in argv
    files = [arg for arg in argv if not arg.startswith("--")]
    limits = RateLimits(hogql=API_QUERIES_PLAN) if plan else RateLimits()
    async with posthog(rate_limits=limits) as ph:
        answer = await ph.query.hogql(
            "SELECT properties.plan AS plan, count() AS persons FROM persons"
            " GROUP BY plan ORDER BY persons DESC LIMIT 100")
        print("persons by plan:", {str(name): count for name, count in answer})
        assert answer.complete  # a cut answer would say so (and warn when iterated)

        yesterday = date.today() - timedelta(days=1)
        page = await ph.query.actors(TREND, day=yesterday.isoformat(), limit=5)
        print(f"behind {yesterday}'s $pageview point: {[a.id for a in page.results]}"
              f"{' and more' if page.has_more else ''}")

        if not plan:
            print("(exporting: this HogQL query waits for its turn, 30 s after the first)")
        export = ph.persons.export(on_wait=waiting)
        if files:
            with Path(files[0]).open("wb") as out:
                async for person in export:  # every person once, one page in memory
                    out.write(msgspec.json.encode(person) + b"\n")
            print(f"{export.rows_read} persons written to {files[0]} (last id {export.last_key})")
        else:
            async with contextlib.aclosing(export.pages()) as pages:
                async for first in pages:  # the first page only: stop there
                    for person in first[:3]:
                        print(f"  {person.id} {person.distinct_ids} {person.properties.get('email')}")
                    print(f"first page: {len(first)} persons (name a file to export them all)")
                    break
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
