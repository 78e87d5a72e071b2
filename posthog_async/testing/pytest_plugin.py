"""pytest fixtures for code that uses posthog_async (registered through the ``pytest11`` entry point).

``posthog_server``: a started :class:`FakePostHog` on 127.0.0.1 (production rate limits).
``posthog_client``: an ``AsyncPostHog`` bound to it, closed after the test.
Both need pytest-asyncio; without it this plugin defines nothing (so installing
posthog-async-client never breaks a project's pytest run).
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._client import AsyncPostHog

if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    from ._server import FakePostHog

    @pytest_asyncio.fixture
    async def posthog_server() -> AsyncIterator[FakePostHog]:
        async with FakePostHog() as server:
            yield server

    @pytest_asyncio.fixture
    async def posthog_client(posthog_server: FakePostHog) -> AsyncIterator[AsyncPostHog]:
        async with posthog_server.client() as client:
            yield client
