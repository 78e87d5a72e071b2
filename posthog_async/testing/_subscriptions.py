"""Handlers for ``subscriptions/``, after PostHog's newest ``SubscriptionSerializer``/``ViewSet``.

DELETE is refused with an empty 405 (``ForbidDestroyModel``): a subscription is soft-deleted by
PATCHing ``deleted: true``, stays reachable by id, and can be restored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ._errors import FakeAPIError, not_found, permission_denied, validation_error
from ._fields import (
    INT32_MAX,
    FieldError,
    field_error,
    parse_iso,
    to_bool,
    to_char,
    to_choice,
    to_datetime,
    to_int,
    to_list,
)
from ._pages import drf_page
from ._request import Reply, Req, parse_int
from ._users import OWNER_BASIC

__all__ = ["SubscriptionHandlers"]

TARGETS = ("email", "slack")
FREQUENCIES = ("daily", "weekly", "monthly", "yearly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: ``DEFAULT_MAX_ASSET_COUNT``: the most insights a dashboard subscription may export.
MAX_ASSETS = 6
_REQUIRED = ("target_type", "target_value", "frequency", "interval", "start_date")
_END = "Subscription schedule has reached its end date. Extend until_date or remove count"


def _pk(value: Any) -> int | None:
    """``PrimaryKeyRelatedField`` (insights and dashboards): every id up to the int32 limit exists."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise FieldError("incorrect_type", f"Incorrect type. Expected pk value, received "
                                           f"{type(value).__name__}.")
    number = parse_int(value) if isinstance(value, str) else value
    if number is None:
        raise FieldError("incorrect_type", "Incorrect type. Expected pk value, received str.")
    if not 1 <= number <= INT32_MAX:
        raise FieldError("does_not_exist", f'Invalid pk "{value}" - object does not exist.')
    return number


def _insight_ids(value: Any) -> list[int]:
    if not isinstance(value, list):
        raise FieldError("invalid", "Expected a list of insight IDs.")
    if not all(isinstance(item, int) for item in value):
        raise FieldError("invalid", "All items must be integers.")
    return list(value)


def _weekdays(value: Any) -> list[str] | None:
    if value is None:
        return None
    days = to_list(value)
    for i, day in enumerate(days):
        if not isinstance(day, str) or day not in WEEKDAYS:
            raise _Nested(f"byweekday__{i}", FieldError("invalid_choice", f'"{day}" is not a valid choice.'))
    return list(days)


class _Nested(Exception):
    def __init__(self, attr: str, err: FieldError) -> None:
        super().__init__(err.message)
        self.attr = attr
        self.err = err


#: Writable fields in the serializer's order, which is the order their errors are reported in.
_FIELDS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("dashboard", _pk), ("insight", _pk), ("dashboard_export_insights", _insight_ids),
    ("prompt", lambda v: to_char(v, allow_blank=True, allow_null=True)),
    ("target_type", lambda v: to_choice(v, TARGETS)), ("target_value", to_char),
    ("frequency", lambda v: to_choice(v, FREQUENCIES)), ("interval", lambda v: to_int(v, minimum=1)),
    ("byweekday", _weekdays), ("bysetpos", lambda v: to_int(v, allow_null=True)),
    ("count", lambda v: to_int(v, allow_null=True)), ("start_date", to_datetime),
    ("until_date", lambda v: to_datetime(v, allow_null=True)), ("deleted", to_bool),
    ("enabled", to_bool), ("title", lambda v: to_char(v, allow_blank=True, allow_null=True, max_length=100)),
    ("integration_id", lambda v: to_int(v, minimum=None, maximum=None, allow_null=True)),
    ("invite_message", lambda v: to_char(v, allow_blank=True, allow_null=True)),
    ("summary_enabled", to_bool),
    ("summary_prompt_guide", lambda v: to_char(v, allow_blank=True, max_length=500)),
)


class SubscriptionHandlers:
    def __init__(self) -> None:
        self._next_id = 1

    def list(self, req: Req) -> Reply:
        subs = list(req.project_data.subscriptions.values())
        if "deleted" in req.query:
            wanted = (req.q("deleted") or "").lower() in ("y", "yes", "t", "true", "on", "1")
            subs = [s for s in subs if s["deleted"] == wanted]
        else:
            subs = [s for s in subs if not s["deleted"]]
        for key in ("insight", "dashboard"):
            if key in req.query:
                wanted_id = parse_int(req.q(key) or "")
                if wanted_id is None:  # PostHog would crash on a non-integer here
                    raise validation_error("A valid integer is required.", attr=key)
                subs = [s for s in subs if s[key] == wanted_id]
        if "target_type" in req.query:
            if req.q("target_type") not in TARGETS:
                raise validation_error(f"Must be one of: {', '.join(TARGETS)}", attr="target_type")
            subs = [s for s in subs if s["target_type"] == req.q("target_type")]
        return drf_page(req, subs, self._json)

    def create(self, req: Req) -> Reply:
        attrs = _validate(req.body(), partial=False)
        _check(req, attrs, None)
        sid, self._next_id = self._next_id, self._next_id + 1
        sub: dict[str, Any] = {name: None for name, _ in _FIELDS}
        sub.update(dashboard_export_insights=[], deleted=False, enabled=True, summary_enabled=False,
                   summary_prompt_guide="", byweekday=None)
        sub.update(attrs, id=sid, created_at=req.now)
        sub["invite_message"] = None
        req.project_data.subscriptions[sid] = sub
        return 201, self._json(sub)

    def _find(self, req: Req) -> dict[str, Any]:
        """Soft-deleted rows are found too (only the list hides them)."""
        sid = parse_int(req.params["id"])
        found = req.project_data.subscriptions.get(sid) if sid is not None else None
        if found is None:
            raise not_found()
        return found

    def retrieve(self, req: Req) -> Reply:
        return 200, self._json(self._find(req))

    def update(self, req: Req) -> Reply:
        found = self._find(req)
        attrs = _validate(req.body(), partial=req.method == "PATCH")
        _check(req, attrs, found)
        attrs.pop("invite_message", None)
        found.update(attrs)
        return 200, self._json(found)

    def destroy(self, req: Req) -> Reply:
        """``ForbidDestroyModel``: 405 with no body at all."""
        raise FakeAPIError.raw(405, None)

    @staticmethod
    def _json(sub: dict[str, Any]) -> dict[str, Any]:
        kind = "insight" if sub["insight"] else "dashboard" if sub["dashboard"] else "ai_prompt"
        unit = {"daily": "day", "weekly": "week", "monthly": "month", "yearly": "year"}[sub["frequency"]]
        summary = (f"sent {sub['frequency']}" if sub["interval"] == 1
                   else f"sent every {sub['interval']} {unit}s")
        return {
            **sub, "resource_type": kind, "created_by": OWNER_BASIC, "summary": summary,
            "insight_short_id": f"ins{sub['insight']:05d}" if sub["insight"] else None,
            "resource_name": (f"Insight {sub['insight']}" if sub["insight"] else
                              f"Dashboard {sub['dashboard']}" if sub["dashboard"] else None),
            "next_delivery_date": None if sub["deleted"] or not sub["enabled"] else sub["start_date"],
        }


def _validate(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for name, check in _FIELDS:
        if name not in body:
            if not partial and name in _REQUIRED:
                raise validation_error("This field is required.", attr=name, code="required")
            continue
        try:
            attrs[name] = check(body[name])
        except FieldError as err:
            raise field_error(name, err) from None
        except _Nested as nested:
            raise field_error(nested.attr, nested.err) from None
    return attrs


def _check(req: Req, attrs: dict[str, Any], existing: dict[str, Any] | None) -> None:
    """``SubscriptionSerializer.validate``."""
    def now_or_then(name: str) -> Any:
        return attrs[name] if name in attrs else (existing or {}).get(name)

    if existing is None and not (attrs.get("dashboard") or attrs.get("insight") or attrs.get("prompt")):
        raise validation_error("A subscription must have an insight, a dashboard, or a prompt.")
    insight, dashboard, prompt = now_or_then("insight"), now_or_then("dashboard"), now_or_then("prompt")
    if insight:
        if attrs.get("dashboard") or attrs.get("prompt"):
            raise validation_error("Insight subscriptions cannot also set dashboard or prompt.",
                                   attr="insight")
    elif dashboard:
        if attrs.get("insight") or attrs.get("prompt"):
            raise validation_error("Dashboard subscriptions cannot also set insight or prompt.",
                                   attr="dashboard")
    elif not (prompt or "").strip():
        raise validation_error("Prompt is required for AI subscriptions.", attr="prompt")
    chosen = attrs.get("dashboard_export_insights")
    if not dashboard:
        if chosen:
            raise validation_error("Cannot set insights selection without a dashboard.",
                                   attr="dashboard_export_insights")
    elif (existing is None and not chosen) or ("dashboard_export_insights" in attrs and not chosen):
        raise validation_error("Select at least one insight for this subscription.",
                               attr="dashboard_export_insights")
    elif chosen and len(set(chosen)) > MAX_ASSETS:
        raise validation_error(f"Cannot select more than {MAX_ASSETS} insights.",
                               attr="dashboard_export_insights")
    until = now_or_then("until_date")
    if until and (existing is None or "until_date" in attrs):
        start = now_or_then("start_date") or req.now
        latest = max(datetime.now(timezone.utc), parse_iso(start) or datetime.now(timezone.utc))
        if (parse_iso(until) or latest) < latest:
            raise validation_error(f"{_END}.", attr="start_date" if existing is None else None)
    if now_or_then("target_type") == "slack":
        integration = now_or_then("integration_id")
        if not integration:
            raise validation_error("A Slack integration is required for Slack subscriptions.",
                                   attr="integration_id")
        if integration not in req.project_data.slack_integrations:
            raise validation_error("This integration does not exist or does not belong to your team.",
                                   attr="integration_id")
    if attrs.get("summary_prompt_guide"):
        raise permission_denied("Setting AI summary context is not enabled for this organization.")
    if attrs.get("summary_enabled"):
        raise permission_denied(
            "AI data processing must be approved by your organization before enabling AI summaries")
