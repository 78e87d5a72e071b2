"""``ph.subscriptions``: scheduled insight and dashboard deliveries by email or Slack.

PostHog never hard-deletes a subscription (``DELETE`` answers 405): :meth:`Subscriptions.delete`
marks it deleted, the list hides it, and :meth:`Subscriptions.restore` brings it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .._models import Subscription
from .._pagination import AsyncPaginator
from .._validation import require_choice, require_text
from ._base import Resource

__all__ = ["Subscriptions"]

TARGET_TYPES = ("email", "slack")
FREQUENCIES = ("daily", "weekly", "monthly", "yearly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _check_id(id: int | str) -> str:
    text = str(id).strip()
    if isinstance(id, bool) or not (text.isascii() and text.isdigit()):
        raise ValueError(f"subscription id must be an integer, got {id!r}")
    return text


class Subscriptions(Resource):
    """``ph.subscriptions``: list, create, update, soft-delete and restore subscriptions."""

    bucket = "general"

    def _path(self, suffix: str = "") -> str:
        return f"{self._base()}/subscriptions/{suffix}"

    def list(
        self,
        *,
        dashboard: int | None = None,
        insight: int | None = None,
        created_by: str | None = None,
        resource_type: Literal["dashboard", "insight"] | None = None,
        target_type: Literal["email", "slack"] | None = None,
        deleted: bool | None = None,
        search: str | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[Subscription]:
        """``GET subscriptions/`` (scope ``subscription:read``).

        Deleted subscriptions are hidden unless ``deleted`` is given (``True``: only deleted).

        Example: ``async for sub in ph.subscriptions.list(insight=42): ...``
        """
        if target_type is not None:
            require_choice(target_type, "target_type", TARGET_TYPES)
        params = dict(
            dashboard=dashboard, insight=insight, created_by=created_by,
            resource_type=resource_type, target_type=target_type, deleted=deleted,
            search=search, ordering=ordering, limit=limit, offset=offset,
        )
        return self._paginate(self._path(), Subscription, params)

    async def create(
        self,
        *,
        target_type: Literal["email", "slack"],
        target_value: str,
        frequency: Literal["daily", "weekly", "monthly", "yearly"],
        start_date: str,
        interval: int = 1,
        insight: int | None = None,
        dashboard: int | None = None,
        dashboard_export_insights: Sequence[int] | None = None,
        integration_id: int | None = None,
        byweekday: Sequence[str] | None = None,
        **fields: Any,
    ) -> Subscription:
        """``POST subscriptions/`` (scope ``subscription:write``); PostHog answers 201.

        Give ``insight`` *or* ``dashboard`` (dashboards also need ``dashboard_export_insights``);
        Slack needs ``integration_id``. ``interval`` (every N periods) is always sent: the newest
        servers require it.

        Example::

            await ph.subscriptions.create(insight=42, target_type="email",
                target_value="ops@acme.com", frequency="weekly", start_date="2026-12-01T09:00:00Z")
        """
        require_choice(target_type, "target_type", TARGET_TYPES)
        require_choice(frequency, "frequency", FREQUENCIES)
        if (insight is None) == (dashboard is None):
            raise ValueError("pass exactly one of insight or dashboard")
        if dashboard is not None and not dashboard_export_insights:
            raise ValueError("a dashboard subscription needs dashboard_export_insights")
        if target_type == "slack" and integration_id is None:
            raise ValueError("a Slack subscription needs integration_id")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError("interval must be an integer >= 1")
        for day in byweekday or ():
            require_choice(day, "byweekday", WEEKDAYS)
        body: dict[str, Any] = dict(
            target_type=target_type, target_value=require_text(target_value, "target_value"),
            frequency=frequency, start_date=require_text(start_date, "start_date"),
            interval=interval, **fields,
        )
        optional = dict(insight=insight, dashboard=dashboard, integration_id=integration_id,
                        dashboard_export_insights=None if dashboard_export_insights is None
                        else list(dashboard_export_insights),
                        byweekday=None if byweekday is None else list(byweekday))
        body.update((k, v) for k, v in optional.items() if v is not None)
        return await self._call("POST", self._path(), cast_to=Subscription, json=body)

    async def retrieve(self, id: int | str) -> Subscription:
        """``GET subscriptions/:id/`` (scope ``subscription:read``); finds deleted ones too."""
        return await self._call("GET", self._path(f"{_check_id(id)}/"), cast_to=Subscription)

    async def update(self, id: int | str, **fields: Any) -> Subscription:
        """``PATCH subscriptions/:id/`` (scope ``subscription:write``) with the fields to change.

        Example: ``await ph.subscriptions.update(7, frequency="daily")``
        """
        if not fields:
            raise ValueError("update needs at least one field to change")
        return await self._patch(id, fields)

    async def delete(self, id: int | str) -> Subscription:
        """Soft-delete: ``PATCH subscriptions/:id/`` with ``{"deleted": true}`` (never DELETE)."""
        return await self._patch(id, {"deleted": True})

    async def restore(self, id: int | str) -> Subscription:
        """Undo :meth:`delete` (PostHog checks the plan's subscription limit again)."""
        return await self._patch(id, {"deleted": False})

    async def _patch(self, id: int | str, body: Mapping[str, Any]) -> Subscription:
        return await self._call("PATCH", self._path(f"{_check_id(id)}/"), cast_to=Subscription,
                                json=dict(body))
