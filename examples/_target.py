"""Where the examples send requests: your PostHog if ``POSTHOG_PERSONAL_API_KEY`` is set,
otherwise the built-in offline PostHog (so every example runs anywhere, with no account).

With a key, the client reads ``POSTHOG_HOST`` (default PostHog Cloud US) and
``POSTHOG_PROJECT_ID`` like any ``AsyncPostHog()``; ``POSTHOG_PROJECT_IDS`` (comma-separated)
names the projects the fan-out example visits (default: ``POSTHOG_PROJECT_ID`` alone).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from posthog_async import AsyncPostHog
from posthog_async.testing import FakePostHog

#: The offline server's projects; 999 does not exist there (the fan-out example shows an error).
OFFLINE_PROJECTS = (1, 2, 3)


def real_posthog() -> bool:
    """True when the examples talk to your PostHog (``POSTHOG_PERSONAL_API_KEY`` is set)."""
    return bool(os.environ.get("POSTHOG_PERSONAL_API_KEY"))


def project_ids() -> list[int | str]:
    """The projects the fan-out example visits."""
    if not real_posthog():
        return [*OFFLINE_PROJECTS, 999]
    listed = os.environ.get("POSTHOG_PROJECT_IDS") or os.environ.get("POSTHOG_PROJECT_ID", "")
    return [p.strip() for p in listed.split(",") if p.strip()]


@contextlib.asynccontextmanager
async def posthog(seed_persons: int = 2000, *, offline: dict[str, Any] | None = None,
                  **options: Any) -> AsyncIterator[AsyncPostHog]:
    """An open client: on your PostHog, or on an offline one seeded with ``user-1`` ... persons.

    ``options`` go to the client either way (``AsyncPostHog(**options)``); ``offline`` are the
    offline PostHog's knobs (``FakePostHog(**offline)``), e.g. ``event_deletion_delay``.
    """
    if real_posthog():
        async with AsyncPostHog(**options) as ph:  # key, host and project from the environment
            yield ph
        return
    async with FakePostHog(project_ids=OFFLINE_PROJECTS, **(offline or {})) as server:
        for pid in OFFLINE_PROJECTS:
            server.seed_persons(seed_persons // pid, project_id=pid)
        print(f"(no POSTHOG_PERSONAL_API_KEY: using the offline PostHog at {server.url})")
        async with server.client(**options) as ph:
            yield ph
