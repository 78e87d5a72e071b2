"""A web app sharing one client across request handlers (the same shape works in FastAPI or
Starlette: create the client at module level, close it in the shutdown hook).

Run it and open http://127.0.0.1:8080/persons/user-1 ; with ``--check`` it calls itself once
and exits (used by the test suite).
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import ClientSession, web

from posthog_async import AsyncPostHog, NotFoundError
from posthog_async.testing import FakePostHog


async def person_handler(request: web.Request) -> web.Response:
    ph: AsyncPostHog = request.app["posthog"]
    found = await ph.persons.batch_by_distinct_ids([request.match_info["distinct_id"]])
    person = found.get(request.match_info["distinct_id"])
    if person is None:
        raise web.HTTPNotFound(text="no such person")
    try:
        person = await ph.persons.retrieve(person.uuid)
    except NotFoundError:
        raise web.HTTPNotFound(text="deleted meanwhile") from None
    return web.json_response({"uuid": person.uuid, "properties": person.properties})


async def main(check: bool) -> None:
    async with FakePostHog() as fake:
        fake.seed_persons(100)
        app = web.Application()
        app["posthog"] = fake.client()  # created once, opened lazily on the first request

        async def close_client(app: web.Application) -> None:
            await app["posthog"].aclose()

        app.on_cleanup.append(close_client)
        app.router.add_get("/persons/{distinct_id}", person_handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0 if check else 8080).start()
        port = runner.addresses[0][1]
        try:
            if check:
                async with ClientSession() as session:
                    async with session.get(f"http://127.0.0.1:{port}/persons/user-1") as resp:
                        print(resp.status, await resp.json())
            else:
                print(f"serving on http://127.0.0.1:{port}/persons/user-1")
                await asyncio.Event().wait()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main("--check" in sys.argv))
