"""``ph.property_definitions``: the catalogue of event, person, group and session properties.

PostHog serves these under ``/api/projects/:id/`` only (there is no environments route), so an
environment view uses the same id under ``projects``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from .._models import PropertyDefinition
from .._pagination import AsyncPaginator
from .._transport import Repeated
from .._validation import require_choice, require_text
from ._base import Resource

__all__ = ["PropertyDefinitions"]

PropertyType = Literal["event", "person", "group", "session"]
PROPERTY_TYPES = ("event", "person", "group", "session")


def _json_list(values: str | Sequence[str] | None) -> str | None:
    """``event_names`` and ``excluded_properties`` are JSON-encoded lists for the list endpoint."""
    if values is None or isinstance(values, str):
        return values
    return msgspec.json.encode(list(values)).decode()


class PropertyDefinitions(Resource):
    """``ph.property_definitions``: list, read, update and delete property definitions."""

    bucket = "general"

    def _path(self, suffix: str = "") -> str:
        return f"{self._base('projects')}/property_definitions/{suffix}"

    def _one(self, id: str) -> str:
        return self._path(f"{quote(require_text(id, 'id'), safe='$')}/")

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
    ) -> AsyncPaginator[PropertyDefinition]:
        """``GET property_definitions/`` (scope ``property_definition:read``).

        ``type`` is event (the server's default), person, group or session; ``group`` needs
        ``group_type_index``; ``event_names`` goes only with ``event``. The last page of person
        and group lists may hold PostHog's virtual properties, whose ids are ``$builtin_<key>``.

        Example::

            async for d in ph.property_definitions.list(type="person", search="email"):
                print(d.name, d.property_type)
        """
        if type is not None:
            require_choice(type, "type", PROPERTY_TYPES)
        if type == "group" and group_type_index is None:
            raise ValueError("type='group' needs group_type_index")
        if event_names is not None and type not in (None, "event"):
            raise ValueError("event_names can only be used with type='event'")
        props = properties if properties is None or isinstance(properties, str) else ",".join(properties)
        params: dict[str, Any] = dict(
            type=type, search=search, event_names=_json_list(event_names),
            filter_by_event_names=filter_by_event_names, is_numerical=is_numerical,
            is_feature_flag=is_feature_flag, exclude_core_properties=exclude_core_properties,
            exclude_hidden=exclude_hidden, excluded_properties=_json_list(excluded_properties),
            group_type_index=group_type_index, properties=props, verified=verified,
            limit=limit, offset=offset,
        )
        return self._paginate(self._path(), PropertyDefinition, params)

    async def retrieve(self, id: str) -> PropertyDefinition:
        """``GET property_definitions/:id/`` (scope ``property_definition:read``)."""
        return await self._call("GET", self._one(id), cast_to=PropertyDefinition)

    async def update(
        self,
        id: str,
        *,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        verified: bool | None = None,
        hidden: bool | None = None,
        property_type: str | None = None,
        **fields: Any,
    ) -> PropertyDefinition:
        """``PATCH property_definitions/:id/`` (scope ``property_definition:write``).

        Changing anything but ``property_type`` needs PostHog's paid taxonomy feature (else 402).

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
        return await self._call("PATCH", self._one(id), cast_to=PropertyDefinition, json=body)

    async def delete(self, id: str) -> None:
        """``DELETE property_definitions/:id/`` (scope ``property_definition:write``); 204."""
        await self._call("DELETE", self._one(id), cast_to=None)

    async def seen_together(
        self, *, event_names: Sequence[str], property_name: str
    ) -> dict[str, bool]:
        """``GET property_definitions/seen_together/``: for each event, whether it carries the
        property. Event names go as repeated ``event_names`` parameters, as PostHog reads them.

        Example::

            await ph.property_definitions.seen_together(
                event_names=["$pageview", "$autocapture"], property_name="$browser")
        """
        if isinstance(event_names, str) or not event_names:
            raise ValueError("event_names must be a non-empty list of event names")
        names = Repeated(require_text(name, "event_names[]") for name in event_names)
        params = dict(event_names=names,
                      property_name=require_text(property_name, "property_name"))
        return await self._call("GET", self._path("seen_together/"), cast_to=dict[str, bool],
                                params=params)
