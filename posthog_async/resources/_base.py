"""What every resource shares: its scope (project or environment) and typed request helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Mapping, TypeVar
from urllib.parse import quote

from .._exceptions import ConfigurationError
from .._pagination import AsyncPaginator, decoder_for
from .._transport import Transport

__all__ = ["Scope", "Resource"]

T = TypeVar("T")

FAMILIES = ("projects", "environments")
#: The ``format`` values every persons endpoint accepts.
FORMATS = ("json", "csv")


@dataclass(frozen=True)
class Scope:
    """Which path family and id project-scoped calls use by default."""

    family: str = "projects"
    id: str | None = None
    #: Per-request timeout for this view (``None``: the client's default).
    timeout: float | None = None


class Resource:
    """Base class of ``ph.persons``, ``ph.subscriptions``, ...; holds the shared transport."""

    def __init__(self, transport: Transport, scope: Scope) -> None:
        self._transport = transport
        self._scope = scope

    def _base(self, project_id: str | int | None) -> str:
        pid = self._scope.id if project_id is None else str(project_id)
        if pid is None or pid == "":
            raise ConfigurationError(
                "no project id: pass project_id=..., set AsyncPostHog(project_id=...) or the "
                "POSTHOG_PROJECT_ID environment variable, or use ph.project(id)"
            )
        return f"/api/{self._scope.family}/{quote(pid, safe='@')}"

    async def _call(
        self,
        method: str,
        path: str,
        type_: Any,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        category: str = "crud",
        idempotent: bool | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send and decode into ``type_`` (``Any`` gives plain JSON; empty bodies give ``None``)."""
        raw = await self._transport.request(
            method, path, params=params, json=json, category=category,
            idempotent=idempotent, timeout=timeout or self._scope.timeout,
        )
        if not raw.content.strip():
            return None
        return decoder_for(type_).decode(raw.content)

    async def _text(
        self, path: str, *, params: Mapping[str, Any] | None = None, category: str = "crud",
        timeout: float | None = None,
    ) -> str:
        raw = await self._transport.request(
            "GET", path, params=params, category=category, timeout=timeout or self._scope.timeout
        )
        return raw.content.decode("utf-8")

    async def _stream(
        self, path: str, *, params: Mapping[str, Any] | None = None, category: str = "crud",
        chunk_size: int = 65536, timeout: float | None = None,
    ) -> AsyncIterator[bytes]:
        async with self._transport.stream(
            "GET", path, params=params, category=category, timeout=timeout or self._scope.timeout
        ) as body:
            async for chunk in body.iter_chunked(chunk_size):
                yield chunk

    def _paginate(
        self, path: str, item_type: type[T], params: Mapping[str, Any], category: str = "crud"
    ) -> AsyncPaginator[T]:
        return AsyncPaginator(self._transport, path, item_type, params=params, category=category,
                              timeout=self._scope.timeout)
