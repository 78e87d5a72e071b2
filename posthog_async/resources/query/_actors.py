"""The persons behind an insight point: the ActorsQuery PostHog builds for each insight kind.

PostHog's legacy ``persons/trends|lifecycle|stickiness|funnel|funnel/correlation`` endpoints
refuse personal API keys (and the newest servers removed four of them); one version of its
server answered them by building exactly these queries (``posthog/api/person.py``). The
sources (``posthog/hogql_queries/insights/insight_actors_query_runner.py``, ``schema-general.ts``):

- Trends: ``InsightActorsQuery{source: TrendsQuery, day, series (0), breakdown, compare}``;
- Lifecycle: ``InsightActorsQuery{source: LifecycleQuery, day, status}``;
- Stickiness: ``StickinessActorsQuery{source: StickinessQuery, day: int, operator}``, older
  servers ``InsightActorsQuery`` with an integer ``day`` (we fall back to it when the server
  does not know the kind);
- Funnels: ``FunnelsActorsQuery{source: FunnelsQuery, funnelStep (negative: dropped off
  before that step), funnelStepBreakdown, ...}``;
- Funnel correlation: ``FunnelCorrelationActorsQuery{source: FunnelCorrelationQuery,
  funnelCorrelationPersonConverted, funnelCorrelationPersonEntity, ...}``;
- Retention: ``InsightActorsQuery{source: RetentionQuery, interval, breakdown}``.

:class:`ActorsPaginator` pages the ActorsQuery's own ``limit``/``offset`` (fields of the query,
not SQL: the OFFSET ban is for HogQL text only) and yields every person once. Iterating, it
waits out a long rate-limit wait between pages as the keyset reader does (:mod:`._waits`): an
"every person" read is worth finishing, and PostHog's 1,200 other queries an hour can run out
under a busy client. Awaited (one page) it is one call: such a wait raises, as for any call.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import msgspec

from ... import _constants as C
from ..._exceptions import BadRequestError, UnexpectedResponseError
from ..._query_models import Actor, ActorsResponse
from ._waits import WaitCallback, patiently

__all__ = ["ActorsPaginator", "ActorsPage", "actors_source", "LIFECYCLE_STATUSES",
           "STICKINESS_OPERATORS"]

LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")
STICKINESS_OPERATORS = ("gte", "lte", "exact")
_ACTOR_COLUMNS = ("actor", "person")
#: ``run(actors_query)`` -> its answer.
RunActors = Callable[["dict[str, Any]"], Awaitable[ActorsResponse]]


def _day(value: date | datetime | str | int | None) -> str | int | None:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _drop_none(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def actors_source(
    insight_query: Mapping[str, Any], *, day: date | datetime | str | int | None = None,
    series: int | None = None, status: str | None = None, breakdown: Any = None,
    compare: str | None = None, interval: int | None = None, operator: str | None = None,
    funnel_step: int | None = None, funnel_step_breakdown: Any = None,
    funnel_custom_steps: Sequence[int] | None = None, funnel_trends_drop_off: bool | None = None,
    funnel_trends_entrance_period_start: str | None = None,
    correlation_person_converted: bool | None = None, correlation_person_entity: Any = None,
    correlation_property_values: Any = None, include_recordings: bool | None = None,
) -> dict[str, Any]:
    """The ``source`` of an ActorsQuery for ``insight_query`` (a mapping with ``kind``).

    A mapping that is already an actors source (``InsightActorsQuery``, ...) is used as is.
    Raises ``ValueError`` for a kind without actors or an argument the kind does not take.
    """
    if not isinstance(insight_query, Mapping) or not isinstance(insight_query.get("kind"), str):
        raise ValueError("insight_query must be a query mapping with a 'kind', e.g. "
                         "{'kind': 'TrendsQuery', 'series': [...]}")
    kind = insight_query["kind"]
    source = dict(insight_query)
    given = _drop_none(dict(
        day=day, series=series, status=status, breakdown=breakdown, compare=compare,
        interval=interval, operator=operator, funnel_step=funnel_step,
        funnel_step_breakdown=funnel_step_breakdown, funnel_custom_steps=funnel_custom_steps,
        funnel_trends_drop_off=funnel_trends_drop_off,
        funnel_trends_entrance_period_start=funnel_trends_entrance_period_start,
        correlation_person_converted=correlation_person_converted,
        correlation_person_entity=correlation_person_entity,
        correlation_property_values=correlation_property_values))

    def only(*allowed: str) -> None:
        extra = sorted(set(given) - set(allowed))
        if extra:
            raise ValueError(f"{kind} actors do not take {', '.join(extra)}")

    if kind.endswith("ActorsQuery"):
        only()
        return source
    common = _drop_none({"includeRecordings": include_recordings})
    if kind == "TrendsQuery":
        only("day", "series", "breakdown", "compare")
        return {"kind": "InsightActorsQuery", "source": source, **_drop_none(
            {"day": _day(day), "series": series or 0, "breakdown": breakdown,
             "compare": compare}), **common}
    if kind == "LifecycleQuery":
        only("day", "status")
        if status is not None and status not in LIFECYCLE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(LIFECYCLE_STATUSES)}, got {status!r}")
        return {"kind": "InsightActorsQuery", "source": source,
                **_drop_none({"day": _day(day), "status": status}), **common}
    if kind == "StickinessQuery":
        only("day", "operator")
        if day is not None and (isinstance(day, bool) or not isinstance(day, int)):
            raise ValueError(f"stickiness day is a number of intervals (int), got {day!r}")
        if operator is not None and operator not in STICKINESS_OPERATORS:
            raise ValueError(f"operator must be one of {', '.join(STICKINESS_OPERATORS)}, got {operator!r}")
        return {"kind": "StickinessActorsQuery", "source": source,
                **_drop_none({"day": day, "operator": operator}), **common}
    if kind == "RetentionQuery":
        only("interval", "breakdown")
        return {"kind": "InsightActorsQuery", "source": source,
                **_drop_none({"interval": interval, "breakdown": breakdown}), **common}
    if kind == "FunnelsQuery":
        only("funnel_step", "funnel_step_breakdown", "funnel_custom_steps",
             "funnel_trends_drop_off", "funnel_trends_entrance_period_start")
        if funnel_step == 0:
            raise ValueError("funnel_step counts from 1 (negative: dropped off before that step)")
        return {"kind": "FunnelsActorsQuery", "source": source, **_drop_none({
            "funnelStep": funnel_step, "funnelStepBreakdown": funnel_step_breakdown,
            "funnelCustomSteps": list(funnel_custom_steps) if funnel_custom_steps else None,
            "funnelTrendsDropOff": funnel_trends_drop_off,
            "funnelTrendsEntrancePeriodStart": funnel_trends_entrance_period_start}), **common}
    if kind == "FunnelCorrelationQuery":
        only("correlation_person_converted", "correlation_person_entity",
             "correlation_property_values")
        return {"kind": "FunnelCorrelationActorsQuery", "source": source, **_drop_none({
            "funnelCorrelationPersonConverted": correlation_person_converted,
            "funnelCorrelationPersonEntity": correlation_person_entity,
            "funnelCorrelationPropertyValues": correlation_property_values}), **common}
    raise ValueError(f"no actors for {kind!r}: pass a TrendsQuery, LifecycleQuery, "
                     "StickinessQuery, RetentionQuery, FunnelsQuery or FunnelCorrelationQuery "
                     "(or an actors source such as an InsightActorsQuery)")


def legacy_stickiness(source: dict[str, Any]) -> dict[str, Any]:
    """A ``StickinessActorsQuery`` as older servers take it: an ``InsightActorsQuery``."""
    return {**{k: v for k, v in source.items() if k != "operator"}, "kind": "InsightActorsQuery"}


@dataclass
class ActorsPage:
    """One page of actors: the persons, and PostHog's paging fields."""

    results: list[Actor]
    has_more: bool
    limit: int | None
    offset: int | None
    missing_actors_count: int | None
    response: ActorsResponse = field(repr=False)


class ActorsPaginator:
    """Awaited: the first :class:`ActorsPage`; ``async for``: every person once, paging the
    ActorsQuery's ``limit``/``offset`` while PostHog says ``hasMore``.

    Iterating, a rate-limit wait longer than ``max_retry_after`` (which one call refuses to
    sleep through) is waited out before the next page, ``on_wait(seconds, error)`` told first
    (settable here, or ``ph.query.actors(..., on_wait=)``); cancel the task to stop during it.
    Awaited, such a wait raises :class:`RateLimitWaitError` as any call does."""

    def __init__(self, run: RunActors, query: dict[str, Any], *, page_limit: int | None,
                 on_wait: WaitCallback | None = None,
                 max_retry_after: float = C.DEFAULT_MAX_RETRY_AFTER) -> None:
        self._run = run
        self._query = query
        self._page_limit = page_limit
        self.on_wait, self.max_retry_after = on_wait, max_retry_after

    async def _fetch(self, offset: int | None, limit: int | None) -> ActorsPage:
        query = dict(self._query)
        query.update(_drop_none({"offset": offset, "limit": limit}))
        try:
            response = await self._run(query)
        except BadRequestError as error:
            source = query.get("source") or {}
            if source.get("kind") != "StickinessActorsQuery" or "StickinessActorsQuery" not in str(error):
                raise
            self._query["source"] = legacy_stickiness(source)  # an older server: its shape
            query["source"] = self._query["source"]
            response = await self._run(query)
        return ActorsPage(_actors(response), bool(response.has_more), response.limit,
                          response.offset, response.missing_actors_count, response)

    async def first_page(self) -> ActorsPage:
        return await self._fetch(self._query.get("offset"), self._query.get("limit"))

    def __await__(self) -> Generator[Any, None, ActorsPage]:
        return self.first_page().__await__()

    async def pages(self) -> AsyncIterator[ActorsPage]:
        offset = self._query.get("offset") or 0
        limit = self._query.get("limit") or self._page_limit or C.ACTORS_PAGE_LIMIT
        while True:
            page = await patiently(functools.partial(self._fetch, offset, limit),
                                   max_retry_after=self.max_retry_after, on_wait=self.on_wait,
                                   what="actors read", run=self._run)
            yield page
            if not page.has_more or not page.response.results:
                return
            offset += len(page.response.results)

    async def __aiter__(self) -> AsyncIterator[Actor]:
        seen: set[str] = set()  # offsets over a moving set may repeat a person at a page edge
        async for page in self.pages():
            for actor in page.results:
                if actor.id not in seen:
                    seen.add(actor.id)
                    yield actor

    async def to_list(self, *, max_items: int | None = None) -> list[Actor]:
        out: list[Actor] = []
        async for actor in self:
            out.append(actor)
            if max_items is not None and len(out) >= max_items:
                break
        return out


def _actors(response: ActorsResponse) -> list[Actor]:
    """The actor cell of every row as an :class:`Actor` (a bare id for a person PostHog lost)."""
    columns = [str(c) for c in response.columns or ()]
    index = next((columns.index(c) for c in _ACTOR_COLUMNS if c in columns), 0)
    out: list[Actor] = []
    for row in response.results:
        cell = row[index] if row else None
        if isinstance(cell, dict):
            try:
                actor = msgspec.convert(cell, Actor, strict=False)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise UnexpectedResponseError(
                    f"an ActorsQuery row's actor is not a person ({exc})", method="POST",
                    path="query/", status_code=200, body=cell) from None
        elif isinstance(cell, str):
            actor = Actor(id=cell)
        else:
            raise UnexpectedResponseError(
                "an ActorsQuery row has no actor column (select 'actor' or 'person')",
                method="POST", path="query/", status_code=200, body=row)
        actor.row = row
        out.append(actor)
    return out
