"""posthog_async: an asyncio-native client for PostHog's REST API.

    from posthog_async import AsyncPostHog

    async with AsyncPostHog(project_id=1) as ph:
        async for person in ph.persons.list():
            ...
"""

from ._bulk import BulkDeleteReport, ChunkFailure, LookupReport, ProgressCallback
from ._chunk_result import ChunkResult, ChunkState, Outcome
from ._chunk_step import ChunkStep
from ._client import AsyncPostHog, Scope, ScopedPostHog
from ._concurrency import FanOutResult
from ._exceptions import (
    APIConnectionError, APIError, APIStatusError, APITimeoutError, AuthenticationError,
    BadRequestError, ConfigurationError, ConflictError, DeadlineExceededError, InternalServerError,
    MethodNotAllowedError, NotFoundError, PermissionDeniedError, PersonalAPIKeyNotAllowedError,
    PostHogError, RateLimitError, RateLimiterUnavailableError, RateLimitWaitError,
    UnexpectedResponseError, UnsafeURLError,
)
from ._config import RequestOptions
from ._ids import IdSource, InputStats, RejectedId
from ._models import (
    JSON, BulkDeleteResult, DeletionError, DeletionStatus, Page, Person, PersonAtTime,
    PointInTimeMetadata, PropertyDefinition, PropertyValue, PropertyValues, SharePasswordInfo,
    SharingConfiguration, SharingPassword, Subscription, User, UserBasic,
)
from ._pagination import AsyncPaginator
from ._ratelimit import Bucket, LocalRateLimiter, RateLimiter, RateLimits, RateWindow, Throttle
from ._ratelimit_redis import RedisRateLimiter
from ._retry import RetryEvent, RetryHook, RetryPolicy

__version__ = "0.2.0"

# Sorted (case-insensitively), as tests/test_exports.py checks.
__all__ = [
    "APIConnectionError", "APIError", "APIStatusError", "APITimeoutError", "AsyncPaginator",
    "AsyncPostHog", "AuthenticationError", "BadRequestError", "Bucket", "BulkDeleteReport",
    "BulkDeleteResult", "ChunkFailure", "ChunkResult", "ChunkState", "ChunkStep",
    "ConfigurationError", "ConflictError", "DeadlineExceededError", "DeletionError",
    "DeletionStatus", "FanOutResult",
    "IdSource", "InputStats", "InternalServerError", "JSON", "LocalRateLimiter", "LookupReport",
    "MethodNotAllowedError", "NotFoundError", "Outcome", "Page", "PermissionDeniedError", "Person",
    "PersonalAPIKeyNotAllowedError", "PersonAtTime", "PointInTimeMetadata", "PostHogError",
    "ProgressCallback", "PropertyDefinition", "PropertyValue", "PropertyValues", "RateLimiter",
    "RateLimitError", "RateLimiterUnavailableError", "RateLimits", "RateLimitWaitError",
    "RateWindow", "RedisRateLimiter", "RejectedId", "RequestOptions", "RetryEvent", "RetryHook",
    "RetryPolicy", "Scope",
    "ScopedPostHog", "SharePasswordInfo", "SharingConfiguration", "SharingPassword",
    "Subscription", "Throttle", "UnexpectedResponseError", "UnsafeURLError", "User", "UserBasic",
]
