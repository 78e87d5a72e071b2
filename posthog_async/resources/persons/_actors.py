"""``ph.persons.actors``: who is behind a trend, a lifecycle bucket, a stickiness bar, a funnel step.

PostHog's legacy ``persons/trends|lifecycle|stickiness|funnel|funnel/correlation`` endpoints
refuse every personal API key (403, they declare no scope) and its newest servers removed four
of them. These methods ask PostHog's query API instead (``POST query/``, scope ``query:read``),
with the ActorsQuery one version of PostHog's server built for those endpoints
(``posthog/api/person.py``). Each takes the insight's query (its ``kind`` must match) and the
point, and returns a paginator: awaited, the first page; ``async for``, every person once.

How the legacy parameters map (``legacy`` -> argument -> the ActorsQuery field):

=================================  =============================  ==================================
trends ``date_from``/``target``    ``day``                        ``InsightActorsQuery.day``
trends ``entity_math`` series      ``series`` (0)                 ``InsightActorsQuery.series``
trends ``breakdown_value``         ``breakdown``                  ``InsightActorsQuery.breakdown``
lifecycle ``target_date``          ``day``                        ``InsightActorsQuery.day``
lifecycle ``lifecycle_type``       ``status``                     ``InsightActorsQuery.status``
stickiness ``stickiness_days``     ``day`` (int)                  ``StickinessActorsQuery.day``
funnel ``funnel_step``             ``funnel_step``                ``FunnelsActorsQuery.funnelStep``
funnel ``funnel_step_breakdown``   ``funnel_step_breakdown``      ``funnelStepBreakdown``
funnel ``funnel_custom_steps``     ``funnel_custom_steps``        ``funnelCustomSteps``
correlation ``..._person_converted``  ``person_converted``        ``funnelCorrelationPersonConverted``
correlation ``..._person_entity``  ``person_entity``              ``funnelCorrelationPersonEntity``
correlation ``..._property_values``  ``property_values``         ``funnelCorrelationPropertyValues``
=================================  =============================  ==================================

The legacy names are accepted too (``target_date=``, ``lifecycle_type=``, ``stickiness_days=``,
``breakdown_value=``), so code written for the old endpoints needs only the insight query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from .._base import Resource
from ..query import ActorsPaginator, Query

__all__ = ["PersonActors"]

Day = date | datetime | str


def _one(name: str, value: Any, legacy_name: str, legacy: Any) -> Any:
    if value is not None and legacy is not None:
        raise ValueError(f"pass {name} or its legacy name {legacy_name}, not both")
    return value if value is not None else legacy


def _kind(query: Mapping[str, Any], expected: str, method: str) -> None:
    kind = query.get("kind") if isinstance(query, Mapping) else None
    if kind != expected:
        raise ValueError(f"persons.actors.{method} takes a {expected} (the insight's query), "
                         f"got {kind!r}; ph.query.actors takes any insight kind")


class PersonActors(Resource):
    """The persons behind insight points, through the query API (personal keys welcome)."""

    bucket = "persons"

    @property
    def _query(self) -> Query:
        return Query(self._transport, self._scope)

    def trends(
        self, query: Mapping[str, Any], *, day: Day | None = None, series: int | None = None,
        breakdown: Any = None, compare: str | None = None, breakdown_value: Any = None,
        limit: int | None = None,
    ) -> ActorsPaginator:
        """Persons behind one point of a trend (``InsightActorsQuery``; legacy
        ``persons/trends/``). ``day`` is the point's date, ``series`` the series' index.

        Example::

            trend = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
            async for person in ph.persons.actors.trends(trend, day="2026-01-10"): ...
        """
        _kind(query, "TrendsQuery", "trends")
        return self._query.actors(query, day=day, series=series, compare=compare, limit=limit,
                                  breakdown=_one("breakdown", breakdown, "breakdown_value",
                                                 breakdown_value))

    def lifecycle(
        self, query: Mapping[str, Any], *, day: Day | None = None, status: str | None = None,
        target_date: Day | None = None, lifecycle_type: str | None = None,
        limit: int | None = None,
    ) -> ActorsPaginator:
        """Persons in one lifecycle bucket (``status``: new, returning, resurrecting, dormant)
        on ``day`` (legacy ``persons/lifecycle/?target_date=&lifecycle_type=``)."""
        _kind(query, "LifecycleQuery", "lifecycle")
        return self._query.actors(
            query, day=_one("day", day, "target_date", target_date),
            status=_one("status", status, "lifecycle_type", lifecycle_type), limit=limit)

    def stickiness(
        self, query: Mapping[str, Any], *, day: int | None = None, operator: str | None = None,
        stickiness_days: int | None = None, limit: int | None = None,
    ) -> ActorsPaginator:
        """Persons who did it on exactly ``day`` intervals (``operator``: exact, gte, lte;
        newest servers only) (``StickinessActorsQuery``; older servers get an
        ``InsightActorsQuery`` with an integer day; legacy ``persons/stickiness/``)."""
        _kind(query, "StickinessQuery", "stickiness")
        return self._query.actors(query, day=_one("day", day, "stickiness_days", stickiness_days),
                                  operator=operator, limit=limit)

    def funnel(
        self, query: Mapping[str, Any], *, funnel_step: int | None = None,
        funnel_step_breakdown: Any = None, funnel_custom_steps: Sequence[int] | None = None,
        funnel_trends_drop_off: bool | None = None,
        funnel_trends_entrance_period_start: str | None = None, limit: int | None = None,
    ) -> ActorsPaginator:
        """Persons who reached ``funnel_step`` (1-based; negative: dropped off before it)
        (``FunnelsActorsQuery``; legacy ``persons/funnel/``)."""
        _kind(query, "FunnelsQuery", "funnel")
        return self._query.actors(
            query, funnel_step=funnel_step, funnel_step_breakdown=funnel_step_breakdown,
            funnel_custom_steps=funnel_custom_steps, funnel_trends_drop_off=funnel_trends_drop_off,
            funnel_trends_entrance_period_start=funnel_trends_entrance_period_start, limit=limit)

    def funnel_correlation(
        self, query: Mapping[str, Any], *, person_converted: bool | None = None,
        person_entity: Any = None, property_values: Any = None, limit: int | None = None,
    ) -> ActorsPaginator:
        """Persons behind one funnel correlation (``FunnelCorrelationActorsQuery``; ``query``
        is the ``FunnelCorrelationQuery``; legacy ``persons/funnel/correlation/``)."""
        _kind(query, "FunnelCorrelationQuery", "funnel_correlation")
        return self._query.actors(query, correlation_person_converted=person_converted,
                                  correlation_person_entity=person_entity,
                                  correlation_property_values=property_values, limit=limit)
