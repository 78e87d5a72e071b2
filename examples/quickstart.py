"""List, look up and update persons.

    python examples/quickstart.py

Against your PostHog (``POSTHOG_PERSONAL_API_KEY`` and ``POSTHOG_PROJECT_ID`` set) it only
reads: the update is made on the offline PostHog alone, so trying the example changes nobody.
"""

from __future__ import annotations

import asyncio

from _target import posthog, real_posthog

from posthog_async import NotFoundError


async def main() -> None:
    async with posthog() as ph:
        first_page = await ph.persons.list(limit=5)  # awaiting a paginator: the first page
        for person in first_page.results:
            print(person.uuid, person.distinct_ids, (person.properties or {}).get("email"))

        count = 0
        async for _ in ph.persons.list(search="@example.com"):  # every page, one at a time
            count += 1
        print(f"{count} persons match '@example.com'")

        wanted = [*(p.distinct_ids[0] for p in first_page.results[:2] if p.distinct_ids), "nobody-xyz"]
        found = await ph.persons.batch_by_distinct_ids(wanted)  # one call, up to 200 ids
        print("found:", sorted(found), "of", wanted)

        if found and not real_posthog():
            someone = next(iter(found.values()))
            # PostHog answers 202 and applies the change a moment later (through a $set event).
            await ph.persons.update(someone.uuid, properties={"plan": "enterprise"})
            print("update accepted for", someone.uuid)

        try:
            await ph.persons.retrieve("00000000-0000-4000-8000-000000000000")
        except NotFoundError as err:
            print("as expected:", err)


if __name__ == "__main__":
    asyncio.run(main())
