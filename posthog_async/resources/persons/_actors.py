"""``ph.persons.actors``: the legacy actor queries (who is in a funnel step, a trend, a lifecycle).

PostHog refuses all of them to personal API keys (403 "This action does not support personal
API key access": they declare no scope), and its newest servers removed ``funnel``,
``funnel/correlation``, ``trends`` and ``lifecycle`` altogether. They are kept, grouped here, for
self-hosted servers that still serve them; with a personal API key each call raises
:class:`~posthog_async.PersonalAPIKeyNotAllowedError` at once (never retried). The HogQL query
API is PostHog's replacement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..._models import JSON
from ..._validation import require_choice, require_text
from .._base import Format, Resource

__all__ = ["PersonActors"]

LIFECYCLE_TYPES = ("new", "returning", "resurrecting", "dormant")


class PersonActors(Resource):
    """``persons/funnel/``, ``funnel/correlation/``, ``trends/``, ``lifecycle/``, ``stickiness/``."""

    bucket = "persons"

    async def _actors(self, suffix: str, format: Format, filters: Mapping[str, Any],
                      body: Mapping[str, Any] | None = None) -> JSON:
        method = "GET" if body is None else "POST"
        return await self._json_or_csv(method, f"{self._base()}/persons/{suffix}", format,
                                       params=filters, json=None if body is None else dict(body))

    async def funnel(self, *, body: Mapping[str, Any] | None = None, format: Format = "json",
                     **filters: Any) -> JSON:
        """``GET persons/funnel/`` with ``filters`` as query, or ``POST`` when ``body`` is given."""
        return await self._actors("funnel/", format, filters, body)

    async def funnel_correlation(self, *, body: Mapping[str, Any] | None = None,
                                 format: Format = "json", **filters: Any) -> JSON:
        """``GET``/``POST persons/funnel/correlation/``: persons behind a funnel correlation."""
        return await self._actors("funnel/correlation/", format, filters, body)

    async def trends(self, *, format: Format = "json", **filters: Any) -> JSON:
        """``GET persons/trends/``: persons behind a trends data point."""
        return await self._actors("trends/", format, filters)

    async def lifecycle(
        self, *, target_date: str,
        lifecycle_type: Literal["new", "returning", "resurrecting", "dormant"],
        format: Format = "json", **filters: Any,
    ) -> JSON:
        """``GET persons/lifecycle/``: persons in one lifecycle bucket on ``target_date``."""
        require_choice(lifecycle_type, "lifecycle_type", LIFECYCLE_TYPES)
        params = {**filters, "target_date": require_text(target_date, "target_date"),
                  "lifecycle_type": lifecycle_type}
        return await self._actors("lifecycle/", format, params)

    async def stickiness(self, *, format: Format = "json", **filters: Any) -> JSON:
        """``GET persons/stickiness/``: persons behind a stickiness data point."""
        return await self._actors("stickiness/", format, filters)
