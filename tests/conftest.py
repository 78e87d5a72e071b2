from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from posthog_async import AsyncPostHog, RetryPolicy
from posthog_async.testing import FakePostHog

API_KEY = "phx_secret_key_for_tests_0123456789"


def fast_retries(**kwargs: float) -> RetryPolicy:
    """Real retry rules with millisecond backoff, so retry tests run fast."""
    return RetryPolicy(initial=0.001, max_backoff=0.01, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POSTHOG_PERSONAL_API_KEY", "POSTHOG_HOST", "POSTHOG_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakePostHog]:
    """A fake PostHog with throttling off (tests that need it turn it on)."""
    async with FakePostHog(api_key=API_KEY, project_ids=(1, 2, 3), rate_limits=None) as srv:
        yield srv


@pytest_asyncio.fixture
async def ph(server: FakePostHog) -> AsyncIterator[AsyncPostHog]:
    async with server.client(rate_limits=None, retry_policy=fast_retries()) as client:
        yield client


# PostHog's published schema is read through schemathesis 4.32+, which needs Python 3.11
# (pyproject.toml installs it there only). Without it these modules are left out, as the header
# of the run says; everything else runs.
SCHEMA_MODULES = ["test_endpoints.py", "test_models.py", "test_schema_fake.py"]
collect_ignore = [] if importlib.util.find_spec("schemathesis") else SCHEMA_MODULES


def pytest_report_header() -> str | None:
    if not collect_ignore:
        return None
    return (f"schemathesis is not installed (it needs Python 3.11+): not collecting {', '.join(SCHEMA_MODULES)}, "
            "PostHog's schema as a second opinion")
