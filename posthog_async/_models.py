"""Typed response models, and the one place where response bytes become them (msgspec).

Unknown fields are ignored, so a field PostHog adds tomorrow does not break decoding, and every
field the server may leave out has a default. Endpoints PostHog leaves untyped decode to plain
JSON values (:data:`JSON`).

:func:`decode_accepted` is for answers to calls that changed state: PostHog accepted the call,
so a body of an unexpected shape must not turn a success into a failure. It keeps what it can
read, logs one warning per new shape, and keeps the raw JSON (``model.unexpected_body``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from ._exceptions import UnexpectedResponseError

__all__ = [
    "JSON", "Model", "Page", "Person", "BulkDeleteResult", "DeletionError", "DeletionStatus",
    "PropertyValue", "PropertyValues", "PropertyDefinition", "UserBasic", "Subscription", "User",
    "SharingConfiguration", "SharingPassword", "SharePasswordInfo", "PointInTimeMetadata",
    "PersonAtTime", "BatchPersons", "accepted_bulk_delete", "answer_status", "decode",
    "decode_accepted", "decoder_for",
]

logger = logging.getLogger("posthog_async")

T = TypeVar("T")
JSON = Any
"""A plain JSON value (what endpoints without a documented schema return)."""


class Model(msgspec.Struct, kw_only=True, omit_defaults=True, dict=True):
    """Base of every model: keyword-only, unknown fields ignored, defaults omitted when encoded."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    @property
    def unexpected_body(self) -> JSON | None:
        """The server's raw answer when it did not have the documented shape, else ``None``."""
        return self.__dict__.get("_unexpected_body")


class Page(Model, Generic[T]):
    """One page of a paginated list. ``next`` is an absolute URL, or ``None`` on the last page.

    ``count`` is present only where the server sends it (the persons list: only with
    ``include_total``).
    """

    results: list[T] = msgspec.field(default_factory=list)
    next: str | None = None
    previous: str | None = None
    count: int | None = None


class Person(Model):
    """A person (the schema's ``PersonRecord``). ``properties`` is whatever JSON PostHog holds."""

    uuid: str
    id: int | None = None
    name: str | None = None
    distinct_ids: list[str] = msgspec.field(default_factory=list)
    properties: Any = None
    created_at: datetime | None = None
    last_seen_at: datetime | None = None


class DeletionError(Model):
    """A person a synchronous bulk_delete could not delete; ``step`` (newest servers) says where."""

    person_uuid: str | None = None
    step: str | None = None


class BulkDeleteResult(Model):
    """The 202 answer of ``persons/bulk_delete/``, in every shape PostHog has sent.

    - newest servers: found/deleted counts, ``persons_queued_for_deletion`` (0 unless the
      server queues deletions, then ``persons_deleted`` is 0 and the persons go later), two
      booleans for events and recordings, and ``deletion_errors`` (with ``step`` on the newest);
    - older servers leave out ``persons_queued_for_deletion``;
    - the oldest answer 202 with no body: every field is then ``None`` (counts unknown).
    """

    persons_found: int | None = None
    persons_deleted: int | None = None
    persons_queued_for_deletion: int | None = None
    events_queued_for_deletion: bool | None = None
    recordings_queued_for_deletion: bool | None = None
    deletion_errors: list[DeletionError] = msgspec.field(default_factory=list)

    @property
    def counts_known(self) -> bool:
        """False when the server accepted the call without saying what it found."""
        return self.persons_found is not None


class DeletionStatus(Model):
    """One person's queued event deletion (``deletion_status``): ``pending`` until PostHog's weekly
    batch job has deleted the events and verified it (``delete_verified_at``), then ``completed``.
    Only persons deleted with ``delete_events=True`` have one."""

    person_uuid: str
    created_at: datetime | None = None
    status: str | None = None
    delete_verified_at: datetime | None = None


class PropertyValue(Model):
    """One value a person property takes, with how many persons have it (``count`` may be absent)."""

    name: Any = None
    count: int | None = None


class PropertyValues(Model):
    """``persons.values(key=...)``: the values of one person property; ``refreshing`` is PostHog's
    flag that its cached answer is being recomputed."""

    results: list[PropertyValue] = msgspec.field(default_factory=list)
    refreshing: bool = False


class PointInTimeMetadata(Model):
    """How PostHog answered ``properties_at_time``: the timestamp, the id it used and the query mode."""

    queried_timestamp: str | None = None
    include_set_once: bool | None = None
    distinct_id_used: str | None = None
    person_id_used: str | None = None
    query_mode: str | None = None
    distinct_ids_queried: list[str] | None = None
    distinct_ids_count: int | None = None


class PersonAtTime(Person):
    """A person as they were at a moment (``properties_at_time``), with how PostHog worked it out."""

    point_in_time_metadata: PointInTimeMetadata | None = None


class UserBasic(Model):
    """The short form of a user that other objects embed (a subscription's ``created_by``, ...)."""

    id: int | None = None
    uuid: str | None = None
    distinct_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    is_email_verified: bool | None = None
    role_at_organization: str | None = None


class PropertyDefinition(Model):
    """A property definition. ``id`` is a UUID, or ``$builtin_<key>`` for PostHog's virtual ones
    (the last page of person and group lists)."""

    id: str | None = None
    name: str | None = None
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


class Subscription(Model):
    """A scheduled delivery. Every field may be ``None`` when the server's answer lacked it."""

    id: int | None = None
    dashboard: int | None = None
    insight: int | None = None
    insight_short_id: str | None = None
    resource_name: str | None = None
    dashboard_export_insights: list[int] | None = None
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
    """The user a personal API key belongs to (``users.retrieve()``; ``users.list()`` shows only them)."""

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
    #: Every organisation the user belongs to (``id``, ``name``, ``membership_level``, ...),
    #: whatever the key's scopes.
    organizations: list[dict[str, Any]] | None = None


class SharePasswordInfo(Model):
    """A sharing password as listed in a configuration (the password itself is never shown)."""

    id: int | None = None
    created_at: datetime | None = None
    note: str | None = None
    created_by_email: str | None = None
    is_active: bool | None = None


class SharingPassword(Model):
    """The answer that creates a sharing password: ``password`` is shown only this once."""

    id: int | None = None
    password: str | None = None
    note: str | None = None
    created_at: datetime | None = None
    created_by_email: str | None = None


class SharingConfiguration(Model):
    """A recording's sharing settings. ``created_at`` stays ``None`` until sharing is first enabled."""

    created_at: datetime | None = None
    enabled: bool | None = None
    access_token: str | None = None
    settings: Any = None
    password_required: bool | None = None
    share_passwords: list[SharePasswordInfo] | None = None


class BatchPersons(Model):
    """``batch_by_*`` answers: a map keyed by the requested id (or, on some servers, a list).

    ``results`` is required: an answer without it must not read as "nobody was found".
    """

    results: dict[str, Person] | list[Person]


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_warned_shapes: set[tuple[str, str]] = set()


def decoder_for(type_: Any) -> msgspec.json.Decoder[Any]:
    """A cached msgspec decoder for ``type_`` (building one costs more than decoding a page)."""
    dec = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = msgspec.json.Decoder(type_)
    return dec


def decode(content: bytes, type_: type[T]) -> T:
    """Response bytes to ``type_`` (raises ``msgspec.ValidationError``/``DecodeError``)."""
    result: T = decoder_for(type_).decode(content)
    return result


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{type(v).__name__}" for k, v in sorted(value.items())) + "}"
    return type(value).__name__


def decode_accepted(content: bytes, type_: type[T], *, what: str, status: int = 200) -> T:
    """Decode the answer to an accepted (2xx) call that changed state, whatever its shape.

    An empty body gives ``type_()`` (every field unknown). A JSON body that does not match is
    read leniently (fields that convert are kept, the rest left unset), a warning is logged once
    per shape, and the raw JSON stays available as ``result.unexpected_body``. A body that is
    not JSON at all where a model was due is not PostHog's answer (PostHog answers JSON or
    nothing; a proxy's or a login page is HTML): :class:`UnexpectedResponseError`, with
    ``maybe_processed`` (``what`` is ``"METHOD /path"``; the page itself is not kept, as such a
    page may echo the request's headers, key included).
    """
    if not content.strip():
        if type_ is JSON:
            return None  # type: ignore[return-value]
        empty = type_()
        if isinstance(empty, Model):
            empty.__dict__.update(_status=status, _empty=True)
        return empty
    try:
        decoded = decode(content, type_)
        if isinstance(decoded, Model):
            decoded.__dict__["_status"] = status
        return decoded
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        reason = str(exc)
    try:
        raw: Any = msgspec.json.decode(content)
    except msgspec.DecodeError:
        if isinstance(type_, type) and issubclass(type_, Model):
            raise _not_json(content, what, status) from None
        raw = content[:2000].decode("utf-8", "replace")
    key = (what, _shape(raw))
    if key not in _warned_shapes:
        _warned_shapes.add(key)
        logger.warning("%s was accepted but its answer has an unexpected shape (%s); keeping "
                       "the raw JSON. Shape: %s", what, reason, key[1][:300])
    result = _lenient(type_, raw)
    if isinstance(result, Model):
        result.__dict__.update(_unexpected_body=raw, _status=status)
    return result


def answer_status(model: Model) -> int:
    """The status of the 2xx an accepted answer came with (:func:`decode_accepted`; else 200)."""
    status: int = model.__dict__.get("_status", 200)
    return status


def accepted_bulk_delete(answer: BulkDeleteResult, *, what: str) -> BulkDeleteResult:
    """``answer`` if it is PostHog's answer to ``bulk_delete``, else :class:`UnexpectedResponseError`.

    PostHog answers ``bulk_delete`` with a JSON object of counts (``persons_found`` and the
    rest), or, in its oldest version, with a 202 and no body (``posthog/api/person.py`` at
    ``a8b2677e``: ``Response(status=202)`` after deleting every person). Any other 2xx (an
    empty 200, a 204, ``{"ok": true}``, a page) is not its answer, says nothing of what was
    deleted, and must never pass for "deleted": the call may or may not have reached PostHog.
    """
    if answer.counts_known or (answer_status(answer) == 202 and answer.__dict__.get("_empty")):
        return answer
    status = answer_status(answer)
    shape = "an empty body" if answer.__dict__.get("_empty") else "JSON without its counts"
    method, _, path = what.partition(" ")
    raise UnexpectedResponseError(
        f"{what}: the {status} answer is not PostHog's: {shape} where PostHog answers its counts "
        "(or, in its oldest version, a 202 with no body). A proxy, a firewall or a login page "
        "in the way? The call may or may not have reached PostHog", method=method, path=path,
        status_code=status, body=None, maybe_processed=True)


def _not_json(content: bytes, what: str, status: int) -> UnexpectedResponseError:
    method, _, path = what.partition(" ")
    kind = "an HTML page" if content.lstrip()[:1] == b"<" else "text"
    return UnexpectedResponseError(
        f"{what}: the {status} answer is not PostHog's: {kind} of {len(content):,} bytes where "
        "PostHog answers JSON (a proxy, a firewall or a login page in the way?). The call may "
        "or may not have reached PostHog", method=method, path=path, status_code=status,
        body=None, maybe_processed=True)


def _lenient(type_: type[T], raw: Any) -> T:
    """Build ``type_`` from the fields of ``raw`` that convert; requires every field defaulted."""
    try:
        converted: T = msgspec.convert(raw, type_, strict=False)
        return converted
    except msgspec.ValidationError:
        pass
    fields: dict[str, Any] = {}
    if isinstance(raw, dict):
        for info in msgspec.structs.fields(type_):  # type: ignore[arg-type]
            if info.encode_name in raw:
                try:
                    fields[info.name] = msgspec.convert(raw[info.encode_name], info.type, strict=False)
                except msgspec.ValidationError:
                    continue
    return type_(**fields)
