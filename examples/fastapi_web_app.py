"""A FastAPI app sharing one ``AsyncPostHog`` across request handlers and a background job.

The client is opened in the app's lifespan, shared by every request through a dependency, and
closed on shutdown (so no "Unclosed client session" warning). Run it from ``examples/``::

    uvicorn fastapi_web_app:app --port 8000
    curl http://127.0.0.1:8000/persons/user-1

With ``POSTHOG_PERSONAL_API_KEY`` (and ``POSTHOG_PROJECT_ID``) set it talks to your PostHog;
otherwise the lifespan starts the built-in offline PostHog, so it runs anywhere.

**Load shedding.** A request handler should answer quickly or not at all. The handlers use a
view with bounds (``ph.with_options(...)``): ``max_wait`` refuses a call at once, before
anything is sent, when its rate-limit bucket would make it wait longer (PostHog allows 240
persons calls a minute per key); ``deadline`` bounds the whole call (slot, pacing, attempts,
backoff). A refused call raises ``RateLimitError`` carrying ``retry_after``, which the handler
below turns into ``503 Service Unavailable`` with ``Retry-After``; a deadline becomes ``504``.
Without bounds, calls queue behind the client's pacing, and under overload every caller waits
longer and longer while the handlers keep working for callers who left.

**A background job on the same client.** ``POST /erasures`` starts a ``bulk_delete_all`` on the
shared client. Its bucket (person deletes) is paced apart: while it waits for its pacing, or
for an hourly window PostHog says is spent, it holds no connection slot, so the reads above are
exactly as fast as without it.

One client per app: create it in the lifespan (as here) or at module level. A module-level
client works across event loops one after the other (a test client per test, ``asyncio.run``
twice): each loop gets a fresh connection pool, closed when that loop ends, so it needs no
``aclose()``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from posthog_async import AsyncPostHog, DeadlineExceededError, NotFoundError, RateLimitError
from posthog_async.testing import FakePostHog

logger = logging.getLogger("uvicorn.error")

#: What one web request may spend on PostHog: refused at once if a bucket would make it wait
#: more than half a second, given up after two seconds in all, one retry at most.
WEB_BOUNDS: dict[str, Any] = {"max_wait": 0.5, "deadline": 2.0, "max_retries": 1}


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
        app.state.jobs = set()
        yield
        for job in app.state.jobs:  # a job still running stops with the app
            job.cancel()
        await asyncio.gather(*app.state.jobs, return_exceptions=True)


app = FastAPI(lifespan=lifespan)


@app.exception_handler(RateLimitError)
async def shed_load(request: Request, exc: RateLimitError) -> JSONResponse:
    """PostHog's 429, or the client refusing a call that would wait too long: try later."""
    seconds = max(1, math.ceil(exc.retry_after or 1))
    return JSONResponse({"detail": "busy, try again later"}, status_code=503,
                        headers={"Retry-After": str(seconds)})


@app.exception_handler(DeadlineExceededError)
async def too_slow(request: Request, exc: DeadlineExceededError) -> JSONResponse:
    return JSONResponse({"detail": "PostHog did not answer in time"}, status_code=504)


def posthog(request: Request) -> AsyncPostHog:
    client: AsyncPostHog = request.app.state.posthog
    return client


PostHog = Annotated[AsyncPostHog, Depends(posthog)]


@app.get("/persons/{distinct_id}")
async def get_person(distinct_id: str, ph: PostHog) -> dict[str, Any]:
    web = ph.with_options(**WEB_BOUNDS)
    found = await web.persons.batch_by_distinct_ids([distinct_id])
    if distinct_id not in found:
        raise HTTPException(404, "no such person")
    try:
        person = await web.persons.retrieve(found[distinct_id].uuid)
    except NotFoundError:
        raise HTTPException(404, "deleted meanwhile") from None
    return {"uuid": person.uuid, "distinct_ids": person.distinct_ids, "properties": person.properties}


@app.post("/persons/{distinct_id}/plan/{plan}", status_code=202)
async def set_plan(distinct_id: str, plan: str, ph: PostHog) -> dict[str, str]:
    web = ph.with_options(**WEB_BOUNDS)
    found = await web.persons.batch_by_distinct_ids([distinct_id])
    if distinct_id not in found:
        raise HTTPException(404, "no such person")
    await web.persons.update(found[distinct_id].uuid, properties={"plan": plan})
    return {"status": "accepted"}  # PostHog applies it a moment later


@app.delete("/persons/{distinct_id}")
async def erase_person(distinct_id: str, ph: PostHog) -> dict[str, Any]:
    report = await ph.persons.bulk_delete_all(distinct_ids=[distinct_id], delete_events=True,
                                              resolve=True)
    return {"outcomes": dict(report.outcomes), "ok": report.ok}


@app.post("/erasures", status_code=202)
async def start_erasure(request: Request, ph: PostHog) -> dict[str, Any]:
    """Erase many persons in the background, on the same client as the web calls."""
    ids = [str(i) for i in await request.json()]
    job = asyncio.create_task(erase(ph, ids))
    request.app.state.jobs.add(job)
    job.add_done_callback(request.app.state.jobs.discard)
    return {"accepted": len(ids)}


async def erase(ph: AsyncPostHog, ids: list[str]) -> None:
    try:
        report = await ph.persons.bulk_delete_all(distinct_ids=ids)
    except Exception:
        logger.exception("erasure of %d ids failed", len(ids))
        return
    logger.info("erasure of %d ids: %s", len(ids), dict(report.outcomes))
