"""``ph.subscriptions``: scheduled insight/dashboard deliveries by email or Slack."""

from __future__ import annotations

from typing import Any, Literal, Mapping

from .._models import Subscription
from .._pagination import AsyncPaginator
from .._validation import require_choice
from ._base import Resource

__all__ = ["Subscriptions"]

TARGET_TYPES = ("email", "slack", "webhook")
FREQUENCIES = ("daily", "weekly", "monthly", "yearly")


def _check_id(id: int | str) -> str:
    text = str(id)
    if not text.isdigit():
        raise ValueError(f"subscription id must be an integer, got {id!r}")
    return text


class Subscriptions(Resource):
    def _path(self, project_id: str | int | None, suffix: str = "") -> str:
        return f"{self._base(project_id)}/subscriptions/{suffix}"

    def list(
        self,
        *,
        dashboard: int | None = None,
        insight: int | None = None,
        created_by: str | None = None,
        resource_type: Literal["dashboard", "insight"] | None = None,
        target_type: str | None = None,
        search: str | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        project_id: str | int | None = None,
    ) -> AsyncPaginator[Subscription]:
        """``GET subscriptions/`` (scope ``subscription:read``).

        Example: ``async for sub in ph.subscriptions.list(insight=42): ...``
        """
        params = dict(
            dashboard=dashboard, insight=insight, created_by=created_by,
            resource_type=resource_type, target_type=target_type, search=search,
            ordering=ordering, limit=limit, offset=offset,
        )
        return self._paginate(self._path(project_id), Subscription, params)

    async def create(
        self,
        *,
        target_type: str,
        target_value: str,
        frequency: str,
        start_date: str,
        insight: int | None = None,
        dashboard: int | None = None,
        project_id: str | int | None = None,
        **fields: Any,
    ) -> Subscription:
        """``POST subscriptions/`` (scope ``subscription:write``); the server answers 201.

        Example::

            await ph.subscriptions.create(insight=42, target_type="email",
                target_value="ops@acme.com", frequency="weekly", start_date="2026-12-01T09:00:00Z")
        """
        require_choice(target_type, "target_type", TARGET_TYPES)
        require_choice(frequency, "frequency", FREQUENCIES)
        if (insight is None) == (dashboard is None):
            raise ValueError("pass exactly one of insight or dashboard")
        body: dict[str, Any] = dict(
            target_type=target_type, target_value=target_value, frequency=frequency,
            start_date=start_date, **fields,
        )
        body.update({"insight": insight} if insight is not None else {"dashboard": dashboard})
        result: Subscription = await self._call(
            "POST", self._path(project_id), Subscription, json=body
        )
        return result

    async def retrieve(self, id: int | str, *, project_id: str | int | None = None) -> Subscription:
        """``GET subscriptions/:id/`` (scope ``subscription:read``)."""
        result: Subscription = await self._call(
            "GET", self._path(project_id, f"{_check_id(id)}/"), Subscription
        )
        return result

    async def update(
        self, id: int | str, *, project_id: str | int | None = None, **fields: Any
    ) -> Subscription:
        """``PATCH subscriptions/:id/`` (scope ``subscription:write``) with the fields to change.

        Example: ``await ph.subscriptions.update(7, frequency="daily")``
        """
        if not fields:
            raise ValueError("update needs at least one field to change")
        return await self._patch(id, fields, project_id)

    async def delete(self, id: int | str, *, project_id: str | int | None = None) -> Subscription:
        """Soft-delete: ``PATCH subscriptions/:id/`` with ``{"deleted": true}``.

        PostHog answers ``DELETE subscriptions/:id/`` with 405 Method Not Allowed; marking the
        subscription deleted is how its own UI removes one. Returns the updated subscription.
        """
        return await self._patch(id, {"deleted": True}, project_id)

    async def _patch(
        self, id: int | str, body: Mapping[str, Any], project_id: str | int | None
    ) -> Subscription:
        result: Subscription = await self._call(
            "PATCH", self._path(project_id, f"{_check_id(id)}/"), Subscription, json=dict(body)
        )
        return result
