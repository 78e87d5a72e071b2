"""``ph.integrations``: the Domain Connect check.

PostHog refuses it to personal API keys (403 "This action does not support personal API key
access", raised as :class:`~posthog_async.PersonalAPIKeyNotAllowedError`, never retried); it is
here for completeness of the reference and for servers that allow it.
"""

from __future__ import annotations

from .._models import JSON
from .._validation import require_text
from ._base import Resource

__all__ = ["Integrations"]


class Integrations(Resource):
    """``ph.integrations``: the Domain Connect check (refused to personal API keys)."""

    bucket = "general"

    async def domain_connect_check(self, *, domain: str) -> JSON:
        """``GET integrations/domain-connect/check/?domain=``: whether a domain supports Domain
        Connect (``{"supported", "provider_name", "available_providers"}``)."""
        return await self._call(
            "GET", f"{self._base()}/integrations/domain-connect/check/", cast_to=JSON,
            params={"domain": require_text(domain, "domain")},
        )
