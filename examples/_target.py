"""Where the examples send requests: your PostHog if POSTHOG_PERSONAL_API_KEY is set,
otherwise the built-in offline server (so every example runs anywhere, with no account)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from posthog_async import AsyncPostHog
from posthog_async.testing import FakePostHog


@contextlib.asynccontextmanager
async def posthog(seed_persons: int = 2000) -> AsyncIterator[AsyncPostHog]:
    if os.environ.get("POSTHOG_PERSONAL_API_KEY"):
        async with AsyncPostHog() as ph:  # key, host and project from the environment
            yield ph
        return
    async with FakePostHog(project_ids=(1, 2, 3)) as server:
        for pid in (1, 2, 3):
            server.seed_persons(seed_persons // pid, project_id=pid)
        print(f"(no POSTHOG_PERSONAL_API_KEY: using the offline fake PostHog at {server.url})")
        async with server.client() as ph:
            yield ph
