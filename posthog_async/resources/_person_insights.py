"""``ph.persons`` legacy actor queries: who is in a funnel step, a trend, a lifecycle bucket.

These endpoints predate HogQL; their filters are the insight's filter parameters and the answers
are untyped JSON (result lists with ``next`` URLs), so they return plain JSON values.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

from .._models import JSON
from .._pagination import decoder_for
from .._validation import require_choice, require_text
from ._base import FORMATS, Resource

__all__ = ["PersonInsights"]

Format = Literal["json", "csv"]
LIFECYCLE_TYPES = ("new", "returning", "resurrecting", "dormant")


class PersonInsights(Resource):
    async def _actors(
        self,
        suffix: str,
        *,
        body: Mapping[str, Any] | None,
        filters: Mapping[str, Any],
        format: Format,
        project_id: str | int | None,
    ) -> JSON:
        require_choice(format, "format", FORMATS)
        path = f"{self._base(project_id)}/persons/{suffix}"
        params: dict[str, Any] = dict(filters)
        if format == "csv":
            params["format"] = "csv"
        method = "POST" if body is not None else "GET"
        raw = await self._transport.request(
            method, path, params=params, json=None if body is None else dict(body),
            category="analytics", idempotent=True, timeout=self._scope.timeout,
        )
        if format == "csv":
            return raw.content.decode("utf-8")
        return decoder_for(Any).decode(raw.content) if raw.content.strip() else None

    async def funnel(
        self,
        *,
        body: Mapping[str, Any] | None = None,
        format: Format = "json",
        project_id: str | int | None = None,
        **filters: Any,
    ) -> JSON:
        """``GET persons/funnel/`` with ``filters`` as query, or ``POST`` when ``body`` is given.

        Example: ``await ph.persons.funnel(body={"events": [...], "funnel_step": 2})``
        """
        return await self._actors(
            "funnel/", body=body, filters=filters, format=format, project_id=project_id
        )

    async def funnel_correlation(
        self,
        *,
        body: Mapping[str, Any] | None = None,
        format: Format = "json",
        project_id: str | int | None = None,
        **filters: Any,
    ) -> JSON:
        """``GET``/``POST persons/funnel/correlation/``: persons behind a funnel correlation."""
        return await self._actors(
            "funnel/correlation/", body=body, filters=filters, format=format,
            project_id=project_id,
        )

    async def trends(
        self, *, format: Format = "json", project_id: str | int | None = None, **filters: Any
    ) -> JSON:
        """``GET persons/trends/``: persons behind a trends data point (insight filters as query)."""
        return await self._actors(
            "trends/", body=None, filters=filters, format=format, project_id=project_id
        )

    async def lifecycle(
        self,
        *,
        target_date: str,
        lifecycle_type: Literal["new", "returning", "resurrecting", "dormant"],
        format: Format = "json",
        project_id: str | int | None = None,
        **filters: Any,
    ) -> JSON:
        """``GET persons/lifecycle/``: persons in one lifecycle bucket on ``target_date``."""
        require_choice(lifecycle_type, "lifecycle_type", LIFECYCLE_TYPES)
        params = {
            **filters,
            "target_date": require_text(target_date, "target_date"),
            "lifecycle_type": lifecycle_type,
        }
        return await self._actors(
            "lifecycle/", body=None, filters=params, format=format, project_id=project_id
        )

    async def stickiness(
        self, *, format: Format = "json", project_id: str | int | None = None, **filters: Any
    ) -> JSON:
        """``GET persons/stickiness/``: persons behind a stickiness data point."""
        return await self._actors(
            "stickiness/", body=None, filters=filters, format=format, project_id=project_id
        )
