"""``ph.personal_api_keys``: the key's own record (``/api/personal_api_keys/@current/``).

PostHog lets a personal API key read only itself: the list, other keys and every write answer
403 "This action does not support Personal API Key access" (``PersonalApiKeySelfAccessPermission``
in ``posthog/api/personal_api_key.py``, index id 120643241). The record needs no scope, and a
key scoped to projects may read it too, so it is where an organisation-wide job starts.
Counted in PostHog's default ``burst``/``sustained`` throttles (the ``general`` bucket).
"""

from __future__ import annotations

from .._org_models import PersonalAPIKey
from ._base import Resource

__all__ = ["PersonalAPIKeys"]


class PersonalAPIKeys(Resource):
    """Everything under ``/api/personal_api_keys/`` a key may call."""

    async def current(self) -> PersonalAPIKey:
        """``GET /api/personal_api_keys/@current/``: this key's scopes, ``scoped_teams`` and
        ``scoped_organizations``.

        Example::

            key = await ph.personal_api_keys.current()
            if key.team_scoped:
                print("this key reaches only projects", key.scoped_teams)
        """
        return await self._call("GET", "/api/personal_api_keys/@current/", cast_to=PersonalAPIKey)
