"""The web app ``bench_web_app.py`` drives: FastAPI under uvicorn, one ``AsyncPostHog`` from the
lifespan, plain (no per-view bounds: a team's first version), shared by the handlers and a
background ``bulk_delete_all``. Configured by environment:

- ``POSTHOG_HOST``, ``POSTHOG_PERSONAL_API_KEY``, ``POSTHOG_PROJECT_ID``: the fake PostHog;
- ``BENCH_DELETE_WINDOWS``: the client's ``person_deletes`` windows (``480/60,4800/3600``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

import posthog_async
from posthog_async import AsyncPostHog, RateLimits


def _windows(spec: str) -> list[tuple[int, float]]:
    return [(int(n), float(s)) for n, s in (part.split("/") for part in spec.split(","))]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    limits = RateLimits(person_deletes=_windows(os.environ.get("BENCH_DELETE_WINDOWS",
                                                               "480/60,4800/3600")))
    async with AsyncPostHog(rate_limits=limits) as ph:
        app.state.posthog, app.state.job, app.state.progress = ph, None, [0, 0]
        yield
        if app.state.job is not None:
            app.state.job.cancel()
            await asyncio.gather(app.state.job, return_exceptions=True)


app = FastAPI(lifespan=lifespan)


@app.get("/person/{distinct_id}")
async def person(distinct_id: str, request: Request) -> dict[str, Any]:
    ph: AsyncPostHog = request.app.state.posthog
    found = await ph.persons.batch_by_distinct_ids([distinct_id])
    person = await ph.persons.retrieve(found[distinct_id].uuid)
    return {"uuid": person.uuid}


@app.get("/me")
async def me(request: Request) -> dict[str, Any]:
    user = await request.app.state.posthog.users.retrieve()
    return {"email": user.email}


@app.get("/subscriptions")
async def subscriptions(request: Request) -> dict[str, Any]:
    page = await request.app.state.posthog.subscriptions.list(limit=1).first_page()
    return {"count": len(page.results)}


@app.post("/job/{count}")
async def start_job(count: int, request: Request) -> dict[str, Any]:
    """Erase ``count`` ids that match nobody (the work is the calls, not the persons)."""
    ph: AsyncPostHog = request.app.state.posthog
    progress = request.app.state.progress

    def on_progress(done: int, total: int | None) -> None:
        progress[0] = done

    request.app.state.job = asyncio.create_task(ph.persons.bulk_delete_all(
        distinct_ids=(f"ghost-{i}" for i in range(count)), on_progress=on_progress))
    return {"started": count}


@app.get("/job")
async def job(request: Request) -> dict[str, Any]:
    return {"chunks_done": request.app.state.progress[0]}


@app.get("/version")
async def version() -> dict[str, str]:
    return {"posthog_async": posthog_async.__version__, "file": posthog_async.__file__}
