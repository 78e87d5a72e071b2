"""An offline PostHog for tests, examples, benchmarks and the demo.

    from posthog_async.testing import FakePostHog

    async with FakePostHog() as server:
        server.seed_persons(10_000)
        async with server.client() as ph:
            ...

It answers as PostHog's server does (statuses, bodies, error shapes, per-key rate limits,
asynchronous writes), from ``shared/posthog-api-notes.md``. With pytest, the ``posthog_server``
fixture (registered by the package's pytest plugin) gives a started server with production-like
rate limits, and ``posthog_client`` a client bound to it.
"""

from ._deletions import BULK_DELETE_VERSIONS, DELETION_STEPS
from ._errors import FakeAPIError
from ._faults import Faults
from ._keys import FakeKey
from ._projects import FakeOrganization
from ._server import ALL_SCOPES, FakePostHog
from ._stats import ServerStats
from ._store import FakePerson, ProjectData
from ._throttle import BUCKETS, PRODUCTION_LIMITS, parse_windows

__all__ = [
    "FakePostHog", "Faults", "ServerStats", "FakePerson", "ProjectData", "FakeAPIError",
    "FakeKey", "FakeOrganization",
    "PRODUCTION_LIMITS", "ALL_SCOPES", "BUCKETS", "BULK_DELETE_VERSIONS", "DELETION_STEPS",
    "parse_windows",
]
