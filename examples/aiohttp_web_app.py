"""An aiohttp web app sharing one ``AsyncPostHog`` across request handlers.

The client is opened with the app (``cleanup_ctx``), shared by every handler through the app,
and closed on shutdown, so there is one pool and one rate-limit budget per process and no
"Unclosed client session" warning. Run it from the repository's top folder::

    python examples/aiohttp_web_app.py          # then open the URL it prints
    python examples/aiohttp_web_app.py --check  # calls itself once and exits (the test suite)

With ``POSTHOG_PERSONAL_API_KEY`` (and ``POSTHOG_PROJECT_ID``) set it talks to your PostHog;
otherwise to the built-in offline PostHog, seeded with persons ``user-1`` ... ``user-100``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from _target import posthog
from aiohttp import ClientSession, web

from posthog_async import AsyncPostHog, NotFoundError

POSTHOG = web.AppKey("posthog", AsyncPostHog)


async def posthog_client(app: web.Application) -> AsyncIterator[None]:
    async with posthog(seed_persons=100) as ph:  # opened with the app, closed on shutdown
        app[POSTHOG] = ph
        yield


async def person_handler(request: web.Request) -> web.Response:
    ph = request.app[POSTHOG]
    distinct_id = request.match_info["distinct_id"]
    found = await ph.persons.batch_by_distinct_ids([distinct_id])
    if distinct_id not in found:
        raise web.HTTPNotFound(text="no such person")
    try:
        person = await ph.persons.retrieve(found[distinct_id].uuid)
    except NotFoundError:
        raise web.HTTPNotFound(text="deleted meanwhile") from None
    return web.json_response({"uuid": person.uuid, "properties": person.properties})


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(posthog_client)
    app.router.add_get("/persons/{distinct_id}", person_handler)
    return app


async def main(check: bool, distinct_id: str = "user-1") -> None:
    runner = web.AppRunner(make_app())
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0 if check else 8080).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/persons/{distinct_id}"
        if check:
            async with ClientSession() as session, session.get(url) as resp:
                print(resp.status, await resp.text())
        else:
            print(f"serving on {url}")
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main("--check" in sys.argv))
