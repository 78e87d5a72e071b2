from __future__ import annotations

import importlib.util
import re
from collections.abc import AsyncIterator
from pathlib import Path

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
# (pyproject.toml installs it there only), and the packages it brings. Without them, every test
# module that imports one, directly or through a helper of tests/ that does, is left out, as the
# run says (in its header and at its end); everything else runs.
SCHEMA_PACKAGES = ("schemathesis", "jsonschema_rs", "requests")


def _imports_helper(helper: str) -> str:
    """``from ._x import``, ``from tests._x import``, ``from . import _x``, ``import tests._x``."""
    h = re.escape(helper)
    return (rf"^\s*from (?:\.|tests\.){h} import|^\s*from (?:\.|tests) import [^\n]*\b{h}\b"
            rf"|^\s*import tests\.{h}\b")


def _modules_needing(packages: list[str]) -> list[str]:
    sources = {p.stem: p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("*.py")}
    imports = "|".join(map(re.escape, packages))
    needs = {name for name, text in sources.items()
             if re.search(rf"^\s*(?:import|from) (?:{imports})\b", text, re.M)}
    while True:  # helpers that import a helper that needs them
        more = {name for name, text in sources.items() if name not in needs and any(
            re.search(_imports_helper(helper), text, re.M) for helper in needs)}
        if not more:
            break
        needs |= more
    return sorted(f"{name}.py" for name in needs if name.startswith("test_"))


_MISSING = [name for name in SCHEMA_PACKAGES if importlib.util.find_spec(name) is None]
SCHEMA_MODULES = _modules_needing(_MISSING) if _MISSING else []
collect_ignore = SCHEMA_MODULES


def _left_out() -> str:
    return (f"not installed: {', '.join(_MISSING)} (schemathesis needs Python 3.11+): PostHog's schema "
            f"as a second opinion is left out with the modules that read it: {', '.join(SCHEMA_MODULES)}")


def pytest_report_header() -> str | None:
    return _left_out() if SCHEMA_MODULES else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SCHEMA_MODULES:  # the header is not shown with -q: say it again where -q still prints
        terminalreporter.write_line(_left_out())
