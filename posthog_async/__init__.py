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
from ._event_deletions import DeletionStatusLookup, next_event_deletion_batch
from ._exceptions import (
    APIConnectionError, APIError, APIStatusError, APITimeoutError, AuthenticationError,
    BadRequestError, ConfigurationError, ConflictError, DeadlineExceededError, InternalServerError,
    MethodNotAllowedError, NotFoundError, PermissionDeniedError, PersonalAPIKeyNotAllowedError,
    PostHogError, RateLimitError, RateLimiterUnavailableError, RateLimitWaitError, RedirectError,
    UnexpectedResponseError, UnsafeURLError,
)
from ._config import RequestOptions
from ._ids import IdSource, InputStats, RejectedId
from ._models import (
    JSON, BulkDeleteResult, DeletionError, DeletionStatus, Page, Person, PersonAtTime,
    PointInTimeMetadata, PropertyDefinition, PropertyValue, PropertyValues, SharePasswordInfo,
    SharingConfiguration, SharingPassword, Subscription, User, UserBasic,
)
from ._org_models import Organization, PersonalAPIKey, Project, ProjectBasic
from ._pagination import AsyncPaginator
from ._query_models import (
    Actor, ActorsResponse, ExportedPerson, HogQLResponse, QueryResponse, QueryStatus,
    TruncatedResultWarning,
)
from ._ratelimit import Bucket, LocalRateLimiter, RateLimiter, RateLimits, RateWindow, Throttle
from ._ratelimit_redis import RedisRateLimiter
from ._reach import NotCoveredProject, ProjectReach
from ._retry import RetryEvent, RetryHook, RetryPolicy
from .resources.persons import GoneCheck
from .resources.persons._export import PersonsExport
from .resources.query import ActorsPage, ActorsPaginator, KeysetReader

__version__ = "0.3.0"

# Sorted (case-insensitively), as tests/test_exports.py checks.
__all__ = [
    "Actor", "ActorsPage", "ActorsPaginator", "ActorsResponse", "APIConnectionError", "APIError",
    "APIStatusError", "APITimeoutError", "AsyncPaginator", "AsyncPostHog", "AuthenticationError",
    "BadRequestError", "Bucket", "BulkDeleteReport", "BulkDeleteResult", "ChunkFailure",
    "ChunkResult", "ChunkState", "ChunkStep", "ConfigurationError", "ConflictError",
    "DeadlineExceededError", "DeletionError", "DeletionStatus", "DeletionStatusLookup",
    "ExportedPerson", "FanOutResult", "GoneCheck", "HogQLResponse", "IdSource", "InputStats",
    "InternalServerError", "JSON", "KeysetReader", "LocalRateLimiter", "LookupReport",
    "MethodNotAllowedError", "next_event_deletion_batch", "NotCoveredProject", "NotFoundError",
    "Organization", "Outcome", "Page", "PermissionDeniedError", "Person", "PersonalAPIKey",
    "PersonalAPIKeyNotAllowedError", "PersonAtTime", "PersonsExport", "PointInTimeMetadata",
    "PostHogError", "ProgressCallback", "Project", "ProjectBasic", "ProjectReach",
    "PropertyDefinition", "PropertyValue", "PropertyValues", "QueryResponse", "QueryStatus",
    "RateLimiter", "RateLimitError", "RateLimiterUnavailableError", "RateLimits",
    "RateLimitWaitError", "RateWindow", "RedirectError", "RedisRateLimiter", "RejectedId",
    "RequestOptions", "RetryEvent", "RetryHook", "RetryPolicy", "Scope", "ScopedPostHog",
    "SharePasswordInfo", "SharingConfiguration", "SharingPassword", "Subscription", "Throttle",
    "TruncatedResultWarning", "UnexpectedResponseError", "UnsafeURLError", "User", "UserBasic",
]
