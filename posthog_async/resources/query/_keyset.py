"""Reading every row of a HogQL result bigger than one answer: keyset pagination.

PostHog cuts answers (100 rows without a LIMIT, 50,000 at most with one) and refuses OFFSET to
personal API keys ("use keyset pagination"). :class:`KeysetReader` builds each page's query
itself, so no page can be cut silently::

    SELECT <select> FROM <from> WHERE (<where>) AND <key> > {keyset_after_0}
    [GROUP BY <group_by>] ORDER BY <key> LIMIT <page_size>

The first page has no key condition (or starts after ``after``); each next page starts after
the last row's key, read from the answer's column ``key_column``. The key must be unique (a
person's ``id``, or a tuple such as ``("created_at", "id")``), or rows sharing a key across a
page boundary would be skipped. A page shorter than ``page_size`` is the last.

A long rate-limit wait between pages (PostHog's 120 HogQL queries an hour, spent) is waited
out, not raised (:mod:`._waits`): ``on_wait`` is told when the read resumes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from ... import _constants as C
from ..._exceptions import PostHogError
from ..._query_models import HogQLResponse
from ._waits import WaitCallback, patiently

__all__ = ["KeysetReader", "RunHogQL"]

#: ``run(sql, values)`` -> the answer of one HogQL query.
RunHogQL = Callable[[str, "dict[str, Any]"], Awaitable[HogQLResponse]]
_PLACEHOLDER = "keyset_after_{}"


class KeysetReader:
    """Every row of a keyset-paged HogQL query: ``async for row in reader``, or
    ``async for page in reader.pages()``; :attr:`last_key` is the key of the last row read
    (pass it as ``after=`` to resume).

    A rate-limit wait longer than ``max_retry_after`` (which one call refuses to sleep
    through) is waited out before the next page, ``on_wait(seconds, error)`` told first;
    cancel the task to stop during it (``last_key`` says where to resume)."""

    def __init__(
        self, run: RunHogQL, *, select: str | None = None, from_: str | None = None,
        key: str | Sequence[str], where: str | None = None, group_by: str | None = None,
        values: Mapping[str, Any] | None = None, page_size: int = C.KEYSET_PAGE_SIZE,
        after: Any = None, key_column: str | Sequence[str] | None = None,
        template: Callable[[str | None, int], str] | None = None,
        on_wait: WaitCallback | None = None, max_retry_after: float = C.DEFAULT_MAX_RETRY_AFTER,
    ) -> None:
        if not 1 <= page_size <= C.HOGQL_MAX_ROWS:
            raise ValueError(f"page_size must be between 1 and {C.HOGQL_MAX_ROWS} (PostHog "
                             "lowers any larger LIMIT to 50,000 without saying so)")
        keys = [key] if isinstance(key, str) else list(key)
        if not keys or not all(isinstance(k, str) and k.strip() for k in keys):
            raise ValueError("key must be a column expression or a sequence of them")
        columns = ([key_column] if isinstance(key_column, str) else list(key_column)
                   if key_column is not None else [_last_name(k) for k in keys])
        if len(columns) != len(keys):
            raise ValueError("key_column must name one answer column per key")
        clash = [name for name in (values or {}) if name.startswith("keyset_after_")]
        if clash:
            raise ValueError(f"placeholder names starting with keyset_after_ are reserved: {clash}")
        if template is None:
            for name, text in (("select", select), ("from_", from_)):
                if not isinstance(text, str) or not text.strip():
                    raise ValueError(f"{name} must be non-empty HogQL")
        self._run = run
        self._select, self._from, self._where, self._group_by = select, from_, where, group_by
        self._template = template
        self._keys, self._columns = keys, columns
        self._values = dict(values or {})
        self.page_size = page_size
        self.last_key: Any = after
        self.rows_read = 0
        self.on_wait, self.max_retry_after = on_wait, max_retry_after

    def condition(self) -> str:
        """``key > {keyset_after_0}``; for a composite key the same comparison column by
        column, ``(a > {k0}) OR (a = {k0} AND b > {k1})``, never a tuple comparison: the
        last key's values come back as JSON (a timestamp or a UUID as a string), and a
        tuple of strings does not compare with a tuple of a timestamp and a UUID, where
        each column compared with its own value converts it."""
        marks = [f"{{{_PLACEHOLDER.format(i)}}}" for i in range(len(self._keys))]
        if len(self._keys) == 1:
            return f"{self._keys[0]} > {marks[0]}"
        branches = []
        for i, key in enumerate(self._keys):
            equal = [f"{self._keys[j]} = {marks[j]}" for j in range(i)]
            branches.append("(" + " AND ".join([*equal, f"{key} > {marks[i]}"]) + ")")
        return "(" + " OR ".join(branches) + ")"

    def sql(self, *, first: bool) -> str:
        """The HogQL of a page (``first``: without the key condition)."""
        condition = None if first else self.condition()
        if self._template is not None:
            return self._template(condition, self.page_size)
        conditions = [f"({self._where})"] if self._where else []
        if condition:
            conditions.append(condition)
        parts = [f"SELECT {self._select}", f"FROM {self._from}"]
        if conditions:
            parts.append("WHERE " + " AND ".join(conditions))
        if self._group_by:
            parts.append(f"GROUP BY {self._group_by}")
        parts.append(f"ORDER BY {', '.join(self._keys)}")
        parts.append(f"LIMIT {self.page_size}")
        return "\n".join(parts)

    def _page_values(self) -> dict[str, Any]:
        values = dict(self._values)
        if self.last_key is not None:
            key = self.last_key if len(self._keys) > 1 else (self.last_key,)
            for index, part in enumerate(key):
                values[_PLACEHOLDER.format(index)] = part
        return values

    async def pages(self) -> AsyncIterator[HogQLResponse]:
        """Each page's answer, in key order, until a page is shorter than ``page_size``."""
        while True:
            fetch = functools.partial(self._run, self.sql(first=self.last_key is None),
                                      self._page_values())
            page = await patiently(fetch, max_retry_after=self.max_retry_after,
                                   on_wait=self.on_wait, what="keyset read", run=self._run)
            rows = page.results
            if len(rows) > self.page_size:
                raise PostHogError(f"a keyset page held {len(rows)} rows, more than its LIMIT "
                                   f"{self.page_size}: the query is not what it should be")
            if rows:
                indexes = self._key_indexes(page)
                last = rows[-1]
                key = (last[indexes[0]] if len(indexes) == 1
                       else tuple(last[i] for i in indexes))
                if key == self.last_key:
                    raise PostHogError(f"keyset pagination did not advance past {key!r}: the key "
                                       "must be unique and the query ordered by it")
                self.last_key = key
                self.rows_read += len(rows)
            yield page
            if len(rows) < self.page_size:
                return

    def _key_indexes(self, page: HogQLResponse) -> list[int]:
        names = [str(c) for c in page.columns or ()]
        try:
            return [names.index(column) for column in self._columns]
        except ValueError:
            raise ValueError(f"the answer's columns {names} lack the key column(s) "
                             f"{self._columns}: select the key, or pass key_column=") from None

    async def __aiter__(self) -> AsyncIterator[list[Any]]:
        pages = self.pages()
        try:
            async for page in pages:
                for row in page.results:
                    yield row
        finally:
            await pages.aclose()  # type: ignore[attr-defined]


def _last_name(expression: str) -> str:
    """``p.id`` -> ``id``; ``created_at`` -> ``created_at`` (the column name HogQL answers)."""
    match = re.search(r"([A-Za-z_$][\w$]*)`?\s*$", expression)
    return match.group(1) if match else expression
