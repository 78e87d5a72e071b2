"""``ph.integrations``: integration helpers (the Domain Connect check)."""

from __future__ import annotations

from typing import Any

from .._models import JSON
from ._base import Resource

__all__ = ["Integrations"]


class Integrations(Resource):
    async def domain_connect_check(
        self, *, project_id: str | int | None = None, **params: Any
    ) -> JSON:
        """``GET integrations/domain-connect/check/``: whether a domain supports Domain Connect.

        The docs leave the answer untyped, so it is returned as plain JSON.

        Example: ``await ph.integrations.domain_connect_check(domain="acme.com")``
        """
        return await self._call(
            "GET", f"{self._base(project_id)}/integrations/domain-connect/check/", JSON,
            params=params,
        )
