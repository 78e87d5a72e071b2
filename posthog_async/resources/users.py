"""``ph.users``: the user a personal API key belongs to (``/api/users/``, not project-scoped).

PostHog shows a non-staff key only its own user: the list holds one entry and any uuid but
``@me`` is refused (403).
"""

from __future__ import annotations

from urllib.parse import quote

from .._models import User
from .._pagination import AsyncPaginator
from .._validation import require_uuid
from ._base import Resource

__all__ = ["Users"]


class Users(Resource):
    """``ph.users``: the user the personal API key belongs to (not project-scoped, not throttled)."""

    bucket = "users"

    def list(
        self,
        *,
        email: str | None = None,
        is_staff: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[User]:
        """``GET /api/users/`` (scope ``user:read``): for a non-staff key, only its own user.

        Example: ``me = (await ph.users.list()).results[0]``
        """
        params = dict(email=email, is_staff=is_staff, limit=limit, offset=offset)
        return self._paginate("/api/users/", User, params)

    async def retrieve(self, uuid: str = "@me") -> User:
        """``GET /api/users/:uuid/`` (scope ``user:read``); ``"@me"`` is the key's owner.

        Example: ``me = await ph.users.retrieve()``
        """
        key = uuid if uuid == "@me" else require_uuid(uuid, "uuid")
        return await self._call("GET", f"/api/users/{quote(key, safe='@')}/", cast_to=User)
