"""The fake's ``ActorsQuery``: sources checked as PostHog's schema checks them, persons paged by
the query's own ``limit``/``offset`` with ``hasMore`` (``actors_query_runner.py``).

The fake has no events, so it cannot know who is behind a trend: by default every person of
the project is (a test decides otherwise with ``server.queries.actors_resolver``). Persons are
ordered by id, as PostHog orders an ActorsQuery whose first column is the actor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._errors import validation_error
from ._query_engine import clamp_limit
from ._store import FakePerson, ProjectData

__all__ = ["run_actors_query"]

_LIFECYCLE = ("new", "returning", "resurrecting", "dormant")
_OPERATORS = ("gte", "lte", "exact")
_INSIGHT_ACTOR_SOURCES = ("TrendsQuery", "LifecycleQuery", "StickinessQuery", "RetentionQuery",
                          "PathsQuery")
#: PostHog sends at most this many of an actor's distinct ids.
_MAX_DISTINCT_IDS = 101
Resolver = Callable[[dict[str, Any], ProjectData], Iterable[FakePerson]]


def _check_source(source: Any, stickiness_actors_query: bool) -> None:
    """The pydantic validation of ``QueryRequest`` for the actors sources we know."""
    if not isinstance(source, dict):
        raise validation_error("Input should be a valid dictionary", attr="source")
    kind = source.get("kind")
    inner = source.get("source")
    inner_kind = inner.get("kind") if isinstance(inner, dict) else None
    if kind == "InsightActorsQuery":
        if inner_kind not in _INSIGHT_ACTOR_SOURCES:
            raise validation_error(f"InsightActorsQuery cannot have a {inner_kind} source")
        status = source.get("status")
        if status is not None and status not in _LIFECYCLE:
            raise validation_error(f"Input should be {', '.join(repr(s) for s in _LIFECYCLE)}",
                                   attr="status")
        if inner_kind == "StickinessQuery" and not isinstance(source.get("day"), (int, type(None))):
            raise validation_error("Input should be a valid integer", attr="day")
    elif kind == "StickinessActorsQuery" and stickiness_actors_query:
        if inner_kind != "StickinessQuery":
            raise validation_error(f"StickinessActorsQuery cannot have a {inner_kind} source")
        day = source.get("day")
        if day is not None and (isinstance(day, bool) or not isinstance(day, int)):
            raise validation_error("Input should be a valid integer", attr="day")
        if source.get("operator") not in (None, *_OPERATORS):
            raise validation_error("Input should be 'gte', 'lte' or 'exact'", attr="operator")
    elif kind == "FunnelsActorsQuery":
        if inner_kind != "FunnelsQuery":
            raise validation_error(f"FunnelsActorsQuery cannot have a {inner_kind} source")
        step = source.get("funnelStep")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise validation_error("Input should be a valid integer", attr="funnelStep")
    elif kind == "FunnelCorrelationActorsQuery":
        if inner_kind != "FunnelCorrelationQuery":
            raise validation_error(f"FunnelCorrelationActorsQuery cannot have a {inner_kind} source")
    else:
        # pydantic's discriminated union, as an older server answers a kind it does not know
        raise validation_error(
            f"Input tag '{kind}' found using 'kind' does not match any of the expected tags: "
            "'InsightActorsQuery', 'FunnelsActorsQuery', 'FunnelCorrelationActorsQuery', "
            "'HogQLQuery'" + (", 'StickinessActorsQuery'" if stickiness_actors_query else ""))


def actor(person: FakePerson) -> dict[str, Any]:
    """A person cell of an ActorsQuery row (``PersonStrategy.get_actors``)."""
    return {"id": person.uuid, "properties": person.properties, "is_identified": True,
            "created_at": person.created_at(), "last_seen_at": None,
            "distinct_ids": person.shown_distinct_ids()[:_MAX_DISTINCT_IDS]}


def _cell(column: str, person: FakePerson) -> Any:
    if column in ("actor", "person"):
        return actor(person)
    if column == "id":
        return person.uuid
    if column == "person.$delete":
        return 1
    if column == "created_at":
        return person.created_at()
    raise validation_error(f"The fake PostHog cannot compute the ActorsQuery column {column!r} "
                           "(it knows actor, person, id, person.$delete, created_at)")


def run_actors_query(query: dict[str, Any], project: ProjectData, resolver: Resolver | None, *,
                     stickiness_actors_query: bool = True) -> dict[str, Any]:
    source = query.get("source")
    if source is not None:
        _check_source(source, stickiness_actors_query)
    select = query.get("select") or ["person", "id", "person.$delete"]
    if not isinstance(select, list) or not all(isinstance(c, str) for c in select):
        raise validation_error("Input should be a valid list", attr="select")
    offset = query.get("offset")
    offset = offset if isinstance(offset, int) and not isinstance(offset, bool) and offset > 0 else 0
    limit = clamp_limit(query.get("limit"))
    persons = (list(resolver(source, project)) if resolver is not None and source is not None
               else list(project.ordered()))
    search = query.get("search")
    if isinstance(search, str) and search.strip():
        needle = search.strip().lower()
        persons = [p for p in persons if needle in str(p.properties.get("email", "")).lower()
                   or any(needle == d.lower() for d in p.distinct_ids)]
    persons.sort(key=lambda p: p.uuid)
    window = persons[offset: offset + limit + 1]
    more = len(window) > limit
    rows = [[_cell(column, p) for column in select] for p in window[:limit]]
    types = ["Tuple(UUID, String, String, DateTime64(6, 'UTC'), Array(String))"
             if c in ("actor", "person") else "String" for c in select]
    return {"results": rows, "columns": select, "types": types, "hasMore": more, "limit": limit,
            "offset": offset, "missing_actors_count": 0, "hogql": "", "timings": [],
            "modifiers": {}, "error": None, "is_cached": False}
