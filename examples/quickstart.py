"""List, look up and update persons."""

from __future__ import annotations

import asyncio

from _target import posthog

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

        found = await ph.persons.batch_by_distinct_ids(["user-1", "user-2", "nobody"])
        print("found:", sorted(found))
        alice = found["user-1"]
        # PostHog answers 202 and applies the change a moment later (through a $set event).
        await ph.persons.update(alice.uuid, properties={"plan": "enterprise"})
        print("update accepted for", alice.uuid)

        try:
            await ph.persons.retrieve("00000000-0000-4000-8000-000000000000")
        except NotFoundError as err:
            print("as expected:", err)


if __name__ == "__main__":
    asyncio.run(main())
