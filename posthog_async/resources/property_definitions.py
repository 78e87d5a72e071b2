"""``ph.property_definitions``: the catalogue of event, person, group and session properties."""

from __future__ import annotations

from typing import Any, Literal, Sequence

from .._models import JSON, PropertyDefinition
from .._pagination import AsyncPaginator
from .._validation import require_choice, require_text
from ._base import Resource

__all__ = ["PropertyDefinitions"]

PropertyType = Literal["event", "person", "group", "session"]
PROPERTY_TYPES = ("event", "person", "group", "session")


def _csv(values: str | Sequence[str] | None) -> str | None:
    if values is None or isinstance(values, str):
        return values
    return ",".join(values)


class PropertyDefinitions(Resource):
    def _path(self, project_id: str | int | None, suffix: str = "") -> str:
        return f"{self._base(project_id)}/property_definitions/{suffix}"

    def list(
        self,
        *,
        type: PropertyType | None = None,
        search: str | None = None,
        event_names: str | Sequence[str] | None = None,
        filter_by_event_names: bool | None = None,
        is_numerical: bool | None = None,
        is_feature_flag: bool | None = None,
        exclude_core_properties: bool | None = None,
        exclude_hidden: bool | None = None,
        excluded_properties: str | Sequence[str] | None = None,
        group_type_index: int | None = None,
        properties: str | Sequence[str] | None = None,
        verified: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
        project_id: str | int | None = None,
    ) -> AsyncPaginator[PropertyDefinition]:
        """``GET property_definitions/`` (scope ``property_definition:read``).

        ``type`` is one of event (the server's default), person, group or session; ``group``
        needs ``group_type_index``. List-valued filters may be given as lists.

        Example::

            async for d in ph.property_definitions.list(type="person", search="email"):
                print(d.name, d.property_type)
        """
        if type is not None:
            require_choice(type, "type", PROPERTY_TYPES)
        if type == "group" and group_type_index is None:
            raise ValueError("type='group' needs group_type_index")
        params: dict[str, Any] = dict(
            type=type, search=search, event_names=_json_list(event_names),
            filter_by_event_names=filter_by_event_names, is_numerical=is_numerical,
            is_feature_flag=is_feature_flag, exclude_core_properties=exclude_core_properties,
            exclude_hidden=exclude_hidden, excluded_properties=_json_list(excluded_properties),
            group_type_index=group_type_index, properties=_csv(properties), verified=verified,
            limit=limit, offset=offset,
        )
        return self._paginate(self._path(project_id), PropertyDefinition, params)

    async def retrieve(self, id: str, *, project_id: str | int | None = None) -> PropertyDefinition:
        """``GET property_definitions/:id/`` (scope ``property_definition:read``)."""
        result: PropertyDefinition = await self._call(
            "GET", self._path(project_id, f"{require_text(id, 'id')}/"), PropertyDefinition
        )
        return result

    async def update(
        self,
        id: str,
        *,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        verified: bool | None = None,
        hidden: bool | None = None,
        property_type: str | None = None,
        project_id: str | int | None = None,
        **fields: Any,
    ) -> PropertyDefinition:
        """``PATCH property_definitions/:id/`` (scope ``property_definition:write``).

        Example: ``await ph.property_definitions.update(def_id, description="Plan name")``
        """
        body = {
            k: v
            for k, v in dict(
                description=description, tags=None if tags is None else list(tags),
                verified=verified, hidden=hidden, property_type=property_type, **fields,
            ).items()
            if v is not None
        }
        if not body:
            raise ValueError("update needs at least one field to change")
        result: PropertyDefinition = await self._call(
            "PATCH", self._path(project_id, f"{require_text(id, 'id')}/"), PropertyDefinition,
            json=body,
        )
        return result

    async def delete(self, id: str, *, project_id: str | int | None = None) -> None:
        """``DELETE property_definitions/:id/`` (scope ``property_definition:write``); 204."""
        await self._call("DELETE", self._path(project_id, f"{require_text(id, 'id')}/"), JSON)

    async def seen_together(
        self,
        *,
        event_names: Sequence[str],
        property_name: str,
        project_id: str | int | None = None,
    ) -> dict[str, bool]:
        """``GET property_definitions/seen_together/``: for each event, whether it carries the property.

        Example: ``await ph.property_definitions.seen_together(event_names=["$pageview"], property_name="$browser")``
        """
        if isinstance(event_names, str) or not event_names:
            raise ValueError("event_names must be a non-empty list of event names")
        params = dict(
            event_names=list(event_names), property_name=require_text(property_name, "property_name")
        )
        result: dict[str, bool] = await self._call(
            "GET", self._path(project_id, "seen_together/"), dict[str, bool], params=params
        )
        return result


def _json_list(values: str | Sequence[str] | None) -> str | list[str] | None:
    """PostHog parses ``event_names`` and ``excluded_properties`` as JSON arrays."""
    if values is None or isinstance(values, str):
        return values
    return list(values)
