"""What every resource shares: its scope (project or environment) and typed request helpers.

Every call names its rate-limit bucket and what its answer decodes to (``cast_to``): a model,
``JSON`` for endpoints PostHog leaves untyped, or ``None`` for answers that carry nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar, overload
from urllib.parse import quote

import msgspec

from .. import _constants as C
from .._exceptions import ConfigurationError, UnexpectedResponseError
from .._config import NO_OPTIONS, RequestOptions
from .._models import JSON, decode, decode_accepted
from .._pagination import AsyncPaginator
from .._ratelimit import Bucket
from .._transport import Transport
from .._validation import require_choice

__all__ = ["Scope", "Resource", "Format", "FORMATS"]

T = TypeVar("T")
Format = Literal["json", "csv"]
#: The ``format`` values every persons endpoint accepts.
FORMATS = ("json", "csv")
_READS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Scope:
    """Which path family and id project-scoped calls use."""

    family: Literal["projects", "environments"] = "projects"
    id: str | None = None
    #: This view's overrides of the client's timeout, deadline, retries and max_wait.
    options: RequestOptions = NO_OPTIONS

    @property
    def timeout(self) -> float | None:
        """Per-attempt timeout for this view (``None``: the client's default)."""
        return self.options.timeout


class Resource:
    """Base class of ``ph.persons``, ``ph.subscriptions``, ...; holds the shared transport."""

    #: The rate-limit bucket PostHog counts this resource's calls in.
    bucket: ClassVar[Bucket] = "general"

    def __init__(self, transport: Transport, scope: Scope) -> None:
        self._transport = transport
        self._scope = scope
        self._bases: dict[str, str] = {}

    def _base(self, family: Literal["projects", "environments"] | None = None) -> str:
        """``/api/<family>/<id>``, built once per family (it is on every call's path)."""
        chosen = family or self._scope.family
        base = self._bases.get(chosen)
        if base is None:
            pid = self._scope.id
            if pid is None or pid == "":
                raise ConfigurationError(
                    "no project id: set AsyncPostHog(project_id=...) or the POSTHOG_PROJECT_ID "
                    "environment variable, or use ph.project(id)"
                )
            base = self._bases[chosen] = f"/api/{chosen}/{quote(pid, safe='@')}"
        return base

    async def _raw(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        json: Any = None, bucket: Bucket | None = None, idempotent: bool | None = None,
    ) -> bytes:
        raw = await self._transport.request(
            method, path, bucket=bucket or self.bucket, params=params, json=json,
            idempotent=idempotent, options=self._scope.options,
        )
        return raw.content

    @overload
    async def _call(self, method: str, path: str, *, cast_to: type[T],
                    params: Mapping[str, Any] | None = ..., json: Any = ...,
                    bucket: Bucket | None = ..., idempotent: bool | None = ...,
                    read: bool | None = ...) -> T: ...

    @overload
    async def _call(self, method: str, path: str, *, cast_to: None,
                    params: Mapping[str, Any] | None = ..., json: Any = ...,
                    bucket: Bucket | None = ..., idempotent: bool | None = ...,
                    read: bool | None = ...) -> None: ...

    async def _call(
        self, method: str, path: str, *, cast_to: type[T] | None,
        params: Mapping[str, Any] | None = None, json: Any = None, bucket: Bucket | None = None,
        idempotent: bool | None = None, read: bool | None = None,
    ) -> T | None:
        """Send and decode into ``cast_to`` (``JSON``: plain values; ``None``: ignore the body).

        The answer to a call that changed state is never an error because of its shape (see
        :func:`~posthog_async._models.decode_accepted`); a read (GET, or ``read=True`` for a
        POST that only reads, like the batch lookups) that does not decode raises
        :class:`UnexpectedResponseError`: a lookup nobody can read must never pass for "nobody".
        """
        answer = await self._transport.request(
            method, path, bucket=bucket or self.bucket, params=params, json=json,
            idempotent=idempotent, options=self._scope.options)
        content = answer.content
        if cast_to is None:
            return None
        if not (method in _READS if read is None else read):
            return decode_accepted(content, cast_to, what=f"{method} {path}", status=answer.status)
        if cast_to is JSON and not content.strip():
            return None
        try:
            return decode(content, cast_to)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            body = content[:2000].decode("utf-8", "replace")
            raise UnexpectedResponseError(
                f"{method} {path}: the answer is not the documented shape ({exc})",
                method=method, path=path, status_code=200, body=body) from None

    async def _json_or_csv(
        self, method: str, path: str, format: Format, *, params: Mapping[str, Any] | None = None,
        json: Any = None, bucket: Bucket | None = None,
    ) -> JSON:
        """Endpoints that answer untyped JSON, or CSV text with ``format="csv"``."""
        require_choice(format, "format", FORMATS)
        query = dict(params or {})
        if format == "csv":
            query["format"] = "csv"
            content = await self._raw(method, path, params=query, json=json, bucket=bucket,
                                      idempotent=True)
            return content.decode("utf-8")
        return await self._call(method, path, cast_to=JSON, params=query, json=json,
                                bucket=bucket, idempotent=True)

    async def _stream(
        self, path: str, *, params: Mapping[str, Any] | None = None, bucket: Bucket | None = None,
        chunk_size: int = 65536,
    ) -> AsyncIterator[bytes]:
        async with self._transport.stream(
            "GET", path, bucket=bucket or self.bucket, params=params, chunk_size=chunk_size,
            options=self._scope.options,
        ) as chunks:
            async for chunk in chunks:
                yield chunk

    def _paginate(
        self, path: str, item_type: type[T], params: Mapping[str, Any], *,
        bucket: Bucket | None = None, iteration_limit: int | None = C.ITERATION_PAGE_LIMIT,
    ) -> AsyncPaginator[T]:
        chosen = bucket or self.bucket

        async def fetch(path_or_url: str, query: Mapping[str, Any] | None) -> bytes:
            return await self._raw("GET", path_or_url, params=query, bucket=chosen)

        return AsyncPaginator(fetch, path, item_type, params=params,
                              iteration_limit=iteration_limit)
