"""Typed answers of PostHog's query API (``POST /query/``), decoded once, unknown fields kept.

PostHog's answers grow fields with every release (``timings``, ``modifiers``, ``metadata``,
``query_status``, cache fields...), and a 50,000-row HogQL answer is megabytes. So an answer is
decoded in one pass into a ``dict`` of raw JSON slices (:class:`msgspec.Raw`: located, not
parsed), then every known field is decoded from its slice and every unknown one is kept as its
slice, parsed only if someone reads :attr:`QueryResponse.extra`. A new field never fails a decode
and never costs a parse.

HogQL answers can be cut: without a top-level ``LIMIT`` PostHog returns 100 rows and sets
``hasMore``; any ``LIMIT`` above 50,000 is lowered to 50,000 silently. :attr:`QueryResponse.complete`
says whether the rows are the whole answer, and iterating a cut answer warns
(:class:`TruncatedResultWarning`) instead of passing a cut off as everything.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from . import _constants as C
from ._models import JSON

__all__ = [
    "QueryResponse", "HogQLResponse", "ActorsResponse", "QueryStatus", "Actor",
    "ExportedPerson", "TruncatedResultWarning", "decode_query_response", "decode_query_status",
]

R = TypeVar("R", bound="QueryResponse")


class TruncatedResultWarning(UserWarning):
    """Iterating a query answer that is not the whole result (``hasMore``, or 50,000 rows: the
    cap PostHog lowers every LIMIT to). Read every row with ``ph.query.keyset(...)`` instead."""


class QueryResponse(msgspec.Struct, kw_only=True, dict=True, rename={"has_more": "hasMore"}):
    """The answer to any query kind: ``results`` as the kind returns them, and the paging and
    debugging fields PostHog adds. Fields PostHog adds later are in :attr:`extra`."""

    results: Any = None
    columns: list[Any] | None = None
    #: HogQL: ``[name, ClickHouse type]`` pairs; ActorsQuery: type names.
    types: list[Any] | None = None
    has_more: bool | None = None
    limit: int | None = None
    offset: int | None = None
    hogql: str | None = None
    clickhouse: str | None = None
    error: str | None = None
    is_cached: bool | None = None
    last_refresh: str | None = None
    cache_key: str | None = None
    timings: Any = None
    modifiers: Any = None
    query_status: Any = None

    @property
    def extra(self) -> dict[str, JSON]:
        """Fields this version of the client does not know, as plain JSON."""
        raw: dict[str, msgspec.Raw] = self.__dict__.get("_extra", {})
        return {key: msgspec.json.decode(value) for key, value in raw.items()}

    @property
    def complete(self) -> bool:
        """False when PostHog cut the rows: ``hasMore``, or exactly its 50,000-row cap."""
        rows = self.results if isinstance(self.results, list) else []
        return not self.has_more and len(rows) < C.HOGQL_MAX_ROWS

    def __iter__(self) -> Iterator[Any]:
        """The rows; warns (:class:`TruncatedResultWarning`) first if they are not all of them."""
        if not self.complete:
            warnings.warn(
                f"this query answer holds {len(self.results or ())} rows but is not the whole "
                "result (PostHog returns 100 rows without a LIMIT and at most 50,000 with one); "
                "read every row with ph.query.keyset(...)", TruncatedResultWarning, stacklevel=2)
        return iter(self.results or ())

    def dicts(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` dicts."""
        names = [str(c) for c in self.columns or ()]
        return [dict(zip(names, row)) for row in self.results or ()]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        out.update(self.extra)
        return out


class HogQLResponse(QueryResponse):
    """The answer to a ``HogQLQuery``: ``results`` are rows (lists), ``columns`` their names."""

    results: list[list[Any]] = msgspec.field(default_factory=list)
    explain: Any = None
    metadata: Any = None


class ActorsResponse(QueryResponse):
    """The answer to an ``ActorsQuery``: rows whose ``actor``/``person`` cell is a person object.

    ``missing_actors_count``: rows whose person is gone from PostHog's database (they come back
    as ``{"id": ...}`` only)."""

    results: list[list[Any]] = msgspec.field(default_factory=list)
    missing_actors_count: int | None = None


class QueryStatus(msgspec.Struct, kw_only=True, dict=True):
    """An asynchronous query's status (``GET query/:id/``); ``results`` holds the answer once
    ``complete``. Statuses live 20 minutes on PostHog's side, then answer 404."""

    id: str = ""
    complete: bool = False
    error: bool = False
    error_message: str | None = None
    results: Any = None
    query_async: bool | None = None
    team_id: int | None = None
    start_time: str | None = None
    end_time: str | None = None
    expiration_time: str | None = None
    pickup_time: str | None = None
    task_id: str | None = None
    query_progress: Any = None


class Actor(msgspec.Struct, kw_only=True, dict=True):
    """A person behind an insight point (an ActorsQuery ``actor``/``person`` cell).

    PostHog sends at most 101 ``distinct_ids``; a person gone from its database comes back as
    its ``id`` alone (counted in ``missing_actors_count``). ``row`` is the whole result row
    (other selected columns, such as ``event_count`` or ``matched_recordings``)."""

    id: str
    properties: Any = None
    is_identified: bool | None = None
    created_at: datetime | None = None
    last_seen_at: datetime | None = None
    distinct_ids: list[str] = msgspec.field(default_factory=list)
    row: list[Any] = msgspec.field(default_factory=list)

    @property
    def uuid(self) -> str:
        """The person's UUID (as ``Person.uuid`` of the persons endpoints)."""
        return self.id


class ExportedPerson(msgspec.Struct, kw_only=True):
    """One person of ``ph.persons.export()``: UUID, every distinct id, properties, creation time.

    Encoded (the CLI's JSONL), every field is written, empty or not: loaders that infer a
    schema from the first lines (pandas, DuckDB, BigQuery) see one shape for every record."""

    id: str
    distinct_ids: list[str] = msgspec.field(default_factory=list)
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    created_at: str | None = None
    is_identified: bool | None = None


_RAW_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_field_decoders: dict[type[Any], dict[str, tuple[str, msgspec.json.Decoder[Any]]]] = {}


def _decoders(cls: type[QueryResponse]) -> dict[str, tuple[str, msgspec.json.Decoder[Any]]]:
    """Wire name -> (attribute, decoder) for every field of ``cls`` (built once per class)."""
    table = _field_decoders.get(cls)
    if table is None:
        table = {info.encode_name: (info.name, msgspec.json.Decoder(info.type))
                 for info in msgspec.structs.fields(cls)}
        _field_decoders[cls] = table
    return table


def decode_query_response(content: bytes | msgspec.Raw, cls: type[R]) -> R:
    """An answer's bytes as ``cls``: known fields typed, unknown ones kept (raises
    ``msgspec.DecodeError``/``ValidationError`` if the body or a known field is malformed)."""
    raw = _RAW_OBJECT.decode(content)
    table = _decoders(cls)
    known: dict[str, Any] = {}
    extra: dict[str, msgspec.Raw] = {}
    for key, value in raw.items():
        entry = table.get(key)
        if entry is None:
            extra[key] = value
        else:
            known[entry[0]] = entry[1].decode(value)
    response = cls(**known)
    if extra:
        response.__dict__["_extra"] = extra
    return response


_STATUS_ENVELOPE = msgspec.json.Decoder(dict[str, msgspec.Raw])
_STATUS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_STATUS_FIELDS = {info.encode_name: (info.name, msgspec.json.Decoder(info.type))
                  for info in msgspec.structs.fields(QueryStatus) if info.name != "results"}


def decode_query_status(content: bytes | msgspec.Raw) -> tuple[QueryStatus, msgspec.Raw | None]:
    """``{"query_status": {...}}`` (or the status itself) as a :class:`QueryStatus` and the raw
    slice of its ``results`` (decoded by the caller into the kind's answer type)."""
    envelope = _STATUS_ENVELOPE.decode(content)
    inner = _STATUS.decode(envelope["query_status"]) if "query_status" in envelope else envelope
    fields: dict[str, Any] = {}
    for key, value in inner.items():
        entry = _STATUS_FIELDS.get(key)
        if entry is not None:
            fields[entry[0]] = entry[1].decode(value)
    results = inner.get("results")
    if results is not None and bytes(results).strip() == b"null":
        results = None
    return QueryStatus(**fields), results
