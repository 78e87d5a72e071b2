"""posthog_async: an asyncio-native client for PostHog's REST API.

    from posthog_async import AsyncPostHog

    async with AsyncPostHog(project_id=1) as ph:
        async for person in ph.persons.list():
            ...
"""

from ._bulk import BulkDeleteReport, ChunkFailure, InputStats, LookupReport
from ._client import AsyncPostHog, ScopedPostHog
from ._concurrency import FanOutResult
from ._exceptions import (
    APIConnectionError, APIError, APIStatusError, APITimeoutError, AuthenticationError,
    BadRequestError, ConfigurationError, ConflictError, InternalServerError,
    MethodNotAllowedError, NotFoundError, PermissionDeniedError, PostHogError, RateLimitError,
    UnsafeURLError,
)
from ._models import (
    BulkDeleteResult, DeletionError, DeletionStatus, Page, Person, PersonAtTime,
    PropertyDefinition, PropertyValue, PropertyValues, SharingConfiguration, SharingPassword,
    SplitResult, Subscription, User,
)
from ._pagination import AsyncPaginator
from ._ratelimit import RateLimits, RateWindow, Throttle
from ._retry import RetryEvent, RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AsyncPostHog", "ScopedPostHog", "AsyncPaginator", "Page",
    "RateLimits", "RateWindow", "Throttle", "RetryPolicy", "RetryEvent",
    "BulkDeleteReport", "ChunkFailure", "InputStats", "LookupReport", "FanOutResult",
    "Person", "PersonAtTime", "BulkDeleteResult", "DeletionError", "DeletionStatus",
    "PropertyDefinition", "PropertyValue", "PropertyValues", "SharingConfiguration",
    "SharingPassword", "SplitResult", "Subscription", "User",
    "PostHogError", "ConfigurationError", "UnsafeURLError", "APIError", "APIConnectionError",
    "APITimeoutError", "APIStatusError", "BadRequestError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "MethodNotAllowedError", "ConflictError",
    "RateLimitError", "InternalServerError",
]
