"""Typed response models, decoded straight from response bytes with msgspec.

Unknown fields are ignored, so a field PostHog adds tomorrow does not break decoding; fields the
docs mark optional default to ``None``. Objects the docs leave open (sharing configurations,
subscriptions) keep their documented fields typed; endpoints documented as "No response body"
decode to plain JSON values (:data:`JSON`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

__all__ = [
    "Model", "Page", "Person", "PersonsPage", "BulkDeleteResult", "DeletionError",
    "DeletionStatus", "PropertyValue", "PropertyValues", "PropertyDefinition", "UserBasic",
    "Subscription", "User", "SharingConfiguration", "SharingPassword", "SplitResult",
    "PersonAtTime", "JSON", "BatchPersons",
]

T = TypeVar("T")
JSON = Any


class Model(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every model: keyword-only, unknown fields ignored, defaults omitted when encoded."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


class Page(Model, Generic[T]):
    """One page of a paginated list. ``next`` is an absolute URL, or ``None`` on the last page."""

    results: list[T]
    next: str | None = None
    previous: str | None = None
    count: int | None = None


class Person(Model):
    uuid: str
    id: int | str | None = None
    name: str | None = None
    distinct_ids: list[str] = msgspec.field(default_factory=list)
    properties: dict[str, Any] | None = None
    created_at: datetime | None = None
    last_seen_at: datetime | None = None


PersonsPage = Page[Person]


class DeletionError(Model):
    person_uuid: str | None = None
    step: str | None = None
    error: str | None = None
    detail: str | None = None


class BulkDeleteResult(Model):
    """202 body of ``persons/bulk_delete``. Newer servers queue deletions: both shapes parse."""

    persons_found: int = 0
    persons_deleted: int = 0
    persons_queued_for_deletion: int = 0
    events_queued_for_deletion: int = 0
    recordings_queued_for_deletion: int = 0
    deletion_errors: list[DeletionError] = msgspec.field(default_factory=list)


class DeletionStatus(Model):
    person_uuid: str
    created_at: datetime | None = None
    status: str | None = None
    delete_verified_at: datetime | None = None


class PropertyValue(Model):
    name: Any = None
    count: int | None = None


class PropertyValues(Model):
    results: list[PropertyValue] = msgspec.field(default_factory=list)
    refreshing: bool = False


class SplitResult(Model):
    success: bool = False


class PointInTimeMetadata(Model):
    queried_timestamp: str | None = None
    include_set_once: bool | None = None
    distinct_id_used: str | None = None
    person_id_used: str | None = None
    query_mode: str | None = None
    distinct_ids_queried: list[str] | None = None
    distinct_ids_count: int | None = None


class PersonAtTime(Person):
    point_in_time_metadata: PointInTimeMetadata | None = None
    debug: dict[str, Any] | None = None


class UserBasic(Model):
    id: int | None = None
    uuid: str | None = None
    distinct_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    is_email_verified: bool | None = None
    role_at_organization: str | None = None


class PropertyDefinition(Model):
    id: str
    name: str
    description: str | None = None
    tags: list[Any] | None = None
    is_numerical: bool | None = None
    updated_at: datetime | None = None
    updated_by: UserBasic | None = None
    is_seen_on_filtered_events: bool | None = None
    property_type: str | None = None
    verified: bool | None = None
    verified_at: datetime | None = None
    verified_by: UserBasic | None = None
    hidden: bool | None = None
    type: int | str | None = None


class Subscription(Model):
    id: int
    dashboard: int | None = None
    insight: int | None = None
    insight_short_id: str | None = None
    resource_name: str | None = None
    target_type: str | None = None
    target_value: str | None = None
    frequency: str | None = None
    interval: int | None = None
    byweekday: list[str] | None = None
    bysetpos: int | None = None
    count: int | None = None
    start_date: datetime | None = None
    until_date: datetime | None = None
    created_at: datetime | None = None
    created_by: UserBasic | None = None
    deleted: bool | None = None
    title: str | None = None
    summary: str | None = None
    next_delivery_date: datetime | None = None
    integration_id: int | None = None
    invite_message: str | None = None


class User(Model):
    uuid: str
    id: int | None = None
    date_joined: datetime | None = None
    distinct_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    pending_email: str | None = None
    is_email_verified: bool | None = None
    is_staff: bool | None = None
    has_password: bool | None = None
    is_2fa_enabled: bool | None = None
    team: dict[str, Any] | None = None
    organization: dict[str, Any] | None = None


class SharingPassword(Model):
    id: str
    note: str | None = None
    created_at: datetime | None = None
    created_by_email: str | None = None
    password: str | None = None  # only in the answer that creates it


class SharingConfiguration(Model):
    created_at: datetime | None = None
    enabled: bool = False
    access_token: str | None = None
    settings: dict[str, Any] | None = None
    password_required: bool | None = None
    share_passwords: list[SharingPassword] | None = None


class BatchPersons(Model):
    """``batch_by_*`` answers: a map keyed by the requested id (or, on some servers, a list)."""

    results: dict[str, Person] | list[Person] = msgspec.field(default_factory=dict)
