"""``ph.users``: the users of the organisation the key belongs to (not project-scoped)."""

from __future__ import annotations

from urllib.parse import quote

from .._models import User
from .._pagination import AsyncPaginator
from .._validation import require_uuid
from ._base import Resource

__all__ = ["Users"]


class Users(Resource):
    def list(
        self,
        *,
        email: str | None = None,
        is_staff: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> AsyncPaginator[User]:
        """``GET /api/users/`` (scope ``user:read``).

        Example: ``async for user in ph.users.list(email="a@acme.com"): ...``
        """
        params = dict(email=email, is_staff=is_staff, limit=limit, offset=offset)
        return self._paginate("/api/users/", User, params)

    async def retrieve(self, uuid: str = "@me") -> User:
        """``GET /api/users/:uuid/`` (scope ``user:read``); ``"@me"`` is the key's owner.

        Example: ``me = await ph.users.retrieve("@me")``
        """
        key = uuid if uuid == "@me" else require_uuid(uuid, "uuid")
        result: User = await self._call("GET", f"/api/users/{quote(key, safe='@')}/", User)
        return result
