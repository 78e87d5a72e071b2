"""Personal API keys as the fake knows them: how a request's key is checked, its scopes, the
projects and organisations a key is limited to, and the record
``/api/personal_api_keys/@current/`` shows.

``APIScopePermission`` (``posthog/permissions.py@001027ce``): ``*`` grants every scope and
``x:write`` also grants ``x:read``. The record follows ``PersonalAPIKeySerializer``
(``posthog/api/personal_api_key.py``, index id 120643241): ``value`` is shown only at creation
(``null`` after), ``mask_value`` is the first and last four characters, and a key without scopes
shows ``["*"]``.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._errors import FakeAPIError

__all__ = ["FakeKey", "authenticate"]

_CREATED = "2024-01-01T00:00:00Z"


@dataclass
class FakeKey:
    """A personal API key the offline PostHog accepts: its scopes, the projects and organisations
    it is limited to, and the record ``personal_api_keys/@current/`` shows."""

    scopes: frozenset[str]
    #: ``scoped_teams``: the only projects the key may call (``None``: no limit).
    projects: frozenset[int] | None = None
    #: ``scoped_organizations``: the only organisations (UUIDs) the key may call.
    organizations: frozenset[str] | None = None
    label: str = "posthog-async tests"
    id: str = field(default_factory=lambda: str(uuidlib.uuid4()))

    def grants(self, scope: str) -> bool:
        """``APIScopePermission``: ``*`` grants all, ``x:write`` also grants ``x:read``."""
        if "*" in self.scopes or scope in self.scopes:
            return True
        return scope.endswith(":read") and f"{scope[:-5]}:write" in self.scopes

    def record(self, value: str) -> dict[str, Any]:
        """The key's own record, as ``GET /api/personal_api_keys/@current/`` answers it."""
        return {
            "id": self.id, "label": self.label, "value": None,
            "mask_value": f"{value[:4]}...{value[-4:]}", "created_at": _CREATED,
            "last_used_at": None, "user_id": 1, "scopes": sorted(self.scopes) or ["*"],
            "scoped_teams": None if self.projects is None else sorted(self.projects),
            "scoped_organizations": (None if self.organizations is None
                                     else sorted(self.organizations)),
            "last_rolled_at": None,
        }


_UNAUTHENTICATED = "Authentication credentials were not provided."


def authenticate(request: web.Request, keys: Mapping[str, FakeKey]) -> str:
    """The personal API key of a request's ``Authorization: Bearer`` header, as PostHog checks
    it: 401 ``not_authenticated`` without one, ``authentication_failed`` for an unknown one."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token:
        raise FakeAPIError(401, "authentication_error", "not_authenticated", _UNAUTHENTICATED)
    if token not in keys:
        raise FakeAPIError(401, "authentication_error", "authentication_failed",
                           "Personal API key found in request Authorization header is invalid.")
    return token
