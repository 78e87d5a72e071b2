"""A FastAPI app sharing one ``AsyncPostHog`` across request handlers.

The client is opened in the app's lifespan, shared by every request through a dependency, and
closed on shutdown (so no "Unclosed client session" warning). Run it from ``examples/``::

    uvicorn fastapi_web_app:app --port 8000
    curl http://127.0.0.1:8000/persons/user-1

With ``POSTHOG_PERSONAL_API_KEY`` (and ``POSTHOG_PROJECT_ID``) set it talks to your PostHog;
otherwise the lifespan starts the built-in offline PostHog, so it runs anywhere.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request

from posthog_async import AsyncPostHog, NotFoundError
from posthog_async.testing import FakePostHog


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        if os.environ.get("POSTHOG_PERSONAL_API_KEY"):
            client = AsyncPostHog()  # key, host and project from the environment
        else:
            fake = await stack.enter_async_context(FakePostHog(rate_limits=None))
            fake.seed_persons(100)
            client = fake.client()
        app.state.posthog = await stack.enter_async_context(client)  # closed on shutdown
        yield


app = FastAPI(lifespan=lifespan)


def posthog(request: Request) -> AsyncPostHog:
    client: AsyncPostHog = request.app.state.posthog
    return client


PostHog = Annotated[AsyncPostHog, Depends(posthog)]


@app.get("/persons/{distinct_id}")
async def get_person(distinct_id: str, ph: PostHog) -> dict[str, Any]:
    found = await ph.persons.batch_by_distinct_ids([distinct_id])
    if distinct_id not in found:
        raise HTTPException(404, "no such person")
    try:
        person = await ph.persons.retrieve(found[distinct_id].uuid)
    except NotFoundError:
        raise HTTPException(404, "deleted meanwhile") from None
    return {"uuid": person.uuid, "distinct_ids": person.distinct_ids, "properties": person.properties}


@app.post("/persons/{distinct_id}/plan/{plan}", status_code=202)
async def set_plan(distinct_id: str, plan: str, ph: PostHog) -> dict[str, str]:
    found = await ph.persons.batch_by_distinct_ids([distinct_id])
    if distinct_id not in found:
        raise HTTPException(404, "no such person")
    await ph.persons.update(found[distinct_id].uuid, properties={"plan": plan})
    return {"status": "accepted"}  # PostHog applies it a moment later


@app.delete("/persons/{distinct_id}")
async def erase_person(distinct_id: str, ph: PostHog) -> dict[str, Any]:
    report = await ph.persons.bulk_delete_all(distinct_ids=[distinct_id], delete_events=True,
                                              resolve=True)
    return {"outcomes": dict(report.outcomes), "ok": report.ok}
