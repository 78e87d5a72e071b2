"""Paginators: awaitable for the first page, ``async for`` for every item, one page ahead.

PostHog's lists answer ``{"results": [...], "next": <absolute url>|null}``. Pages may be shorter
than ``limit`` while ``next`` is still set, so we stop only on a null ``next``. ``next`` is
followed only when it points at the configured host (the transport checks).

While the caller works on one page, the request for the next one is already on its way, so a
consumer that does real work per page is not also waiting for the network. At most two pages
are held at once; stopping early cancels the request in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import (
    Any,
    Generic,
    TypeVar,
)
from urllib.parse import urlsplit

import msgspec

from ._exceptions import UnexpectedResponseError
from ._models import Page, decoder_for

__all__ = ["AsyncPaginator", "FetchPage"]

T = TypeVar("T")
#: ``fetch(path_or_next_url, params)`` -> the page's response bytes.
FetchPage = Callable[[str, "Mapping[str, Any] | None"], Awaitable[bytes]]


class AsyncPaginator(Generic[T]):
    """A lazy list of ``T`` spread over pages.

    - ``await paginator`` gives the first :class:`Page` (the server's page size unless
      ``limit`` was given);
    - ``async for item in paginator`` streams every item, asking for ``iteration_limit`` items
      a page when no ``limit`` was given (fewer calls of the rate-limit budget);
    - ``async for page in paginator.pages()`` streams pages.
    """

    def __init__(
        self,
        fetch: FetchPage,
        path: str,
        item_type: type[T],
        *,
        params: Mapping[str, Any] | None = None,
        iteration_limit: int | None = None,
    ) -> None:
        self._fetch_bytes = fetch
        self._path = path
        self._params = {k: v for k, v in (params or {}).items() if v is not None}
        self._iteration_limit = iteration_limit
        self._decoder = decoder_for(Page[item_type])  # type: ignore[valid-type]

    async def _fetch(self, path_or_url: str, params: Mapping[str, Any] | None) -> Page[T]:
        content = await self._fetch_bytes(path_or_url, params)
        try:
            page: Page[T] = self._decoder.decode(content)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            # One of our errors, like any other failed read; the path only (a ``next`` link's
            # query string may carry filters such as an email).
            path = urlsplit(path_or_url).path
            raise UnexpectedResponseError(
                f"GET {path}: the page is not the documented shape ({exc})", method="GET",
                path=path, status_code=200, body=content[:2000].decode("utf-8", "replace"),
            ) from None
        return page

    async def first_page(self) -> Page[T]:
        return await self._fetch(self._path, self._params)

    def __await__(self) -> Generator[Any, None, Page[T]]:
        return self.first_page().__await__()

    async def pages(self) -> AsyncGenerator[Page[T], None]:
        params = dict(self._params)
        if self._iteration_limit is not None and "limit" not in params:
            params["limit"] = self._iteration_limit
        ahead: asyncio.Future[Page[T]] | None = None
        try:
            page = await self._fetch(self._path, params)
            while True:
                if page.next:
                    ahead = asyncio.ensure_future(self._fetch(page.next, None))
                    await asyncio.sleep(0)  # let it go out before the caller's work begins
                yield page
                if ahead is None:
                    return
                del page  # let the consumed page be freed while the next one arrives
                page = await ahead
                ahead = None
        finally:
            if ahead is not None:
                if not ahead.done():
                    ahead.cancel()
                    await asyncio.wait([ahead])
                if not ahead.cancelled():
                    ahead.exception()  # retrieved: an error of a page nobody wants is not news

    async def __aiter__(self) -> AsyncIterator[T]:
        pages = self.pages()
        try:
            async for page in pages:
                for item in page.results:
                    yield item
        finally:
            await pages.aclose()

    async def to_list(self, *, max_items: int | None = None) -> list[T]:
        """Collect items into a list (``max_items`` caps it; mind memory on large lists)."""
        out: list[T] = []
        pages = self.pages()
        try:
            async for page in pages:
                for item in page.results:
                    out.append(item)
                    if max_items is not None and len(out) >= max_items:
                        return out
        finally:
            await pages.aclose()
        return out
