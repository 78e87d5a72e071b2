"""An offline PostHog for tests, examples, benchmarks and the demo.

    from posthog_async.testing import FakePostHog

    async with FakePostHog() as server:
        server.seed_persons(10_000)
        async with server.client() as ph:
            ...

With pytest, the ``posthog_server`` fixture (registered by the package's pytest plugin) gives a
started server with production-like rate limits, and ``posthog_client`` a client bound to it.
"""

from ._errors import FakeAPIError
from ._limits import PRODUCTION_LIMITS, Faults
from ._server import ALL_SCOPES, FakePostHog, ServerStats
from ._store import FakePerson, ProjectData

__all__ = [
    "FakePostHog", "Faults", "ServerStats", "FakePerson", "ProjectData", "FakeAPIError",
    "PRODUCTION_LIMITS", "ALL_SCOPES",
]
