"""Paginators: awaitable for the first page, ``async for`` for every item.

PostHog's lists answer ``{"results": [...], "next": <absolute url>|null}``. Pages may be shorter
than ``limit`` while ``next`` is still set, so we stop only on a null ``next``. ``next`` is
followed only when it points at the configured host (see ``Transport.url_for``).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Generator, Generic, Mapping, TypeVar

import msgspec

from ._models import Page
from ._transport import Transport

__all__ = ["AsyncPaginator"]

T = TypeVar("T")

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder_for(type_: Any) -> msgspec.json.Decoder[Any]:
    """A cached msgspec decoder for ``type_`` (building one costs more than decoding a page)."""
    dec = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = msgspec.json.Decoder(type_)
    return dec


class AsyncPaginator(Generic[T]):
    """A lazy list of ``T`` spread over pages.

    - ``await paginator`` gives the first :class:`Page`;
    - ``async for item in paginator`` streams every item, holding one page at a time;
    - ``async for page in paginator.pages()`` streams pages.
    """

    def __init__(
        self,
        transport: Transport,
        path: str,
        item_type: type[T],
        *,
        params: Mapping[str, Any] | None = None,
        category: str = "crud",
        timeout: float | None = None,
    ) -> None:
        self._transport = transport
        self._timeout = timeout
        self._path = path
        self._params = dict(params or {})
        self._category = category
        self._decoder = decoder_for(Page[item_type])  # type: ignore[valid-type]

    async def _fetch(self, path_or_url: str, params: Mapping[str, Any] | None) -> Page[T]:
        raw = await self._transport.request(
            "GET", path_or_url, params=params, category=self._category, timeout=self._timeout
        )
        page: Page[T] = self._decoder.decode(raw.content)
        return page

    async def first_page(self) -> Page[T]:
        return await self._fetch(self._path, self._params)

    def __await__(self) -> Generator[Any, None, Page[T]]:
        return self.first_page().__await__()

    async def pages(self) -> AsyncIterator[Page[T]]:
        page = await self._fetch(self._path, self._params)
        while True:
            yield page
            if not page.next:
                return
            next_url = page.next
            del page  # let the consumed page be freed before the next one arrives
            page = await self._fetch(next_url, None)

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.results:
                yield item

    async def to_list(self, *, max_items: int | None = None) -> list[T]:
        """Collect items into a list (``max_items`` caps it; mind memory on large lists)."""
        out: list[T] = []
        async for item in self:
            out.append(item)
            if max_items is not None and len(out) >= max_items:
                break
        return out
