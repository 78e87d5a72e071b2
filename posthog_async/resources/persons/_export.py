"""``ph.persons.export()``: every person once, with distinct ids and properties, over HogQL.

The persons list is the wrong tool for "everyone": its pages can be short while ``next`` is
set, and deep offsets time out. This reads PostHog's ClickHouse copy of persons through the
query API instead, by keyset on the person's ``id`` (OFFSET is refused to personal keys), a
page of persons and their distinct ids in one HogQL query::

    SELECT p.id, p.created_at, p.is_identified, p.properties, d.distinct_ids
    FROM (SELECT ... FROM persons WHERE id > {after} ORDER BY id LIMIT n) AS p
    LEFT JOIN (SELECT person_id, groupArray(distinct_id) AS distinct_ids
               FROM person_distinct_ids WHERE person_id IN (<the same ids>)
               GROUP BY person_id) AS d ON d.person_id = p.id
    ORDER BY p.id

The page's persons are chosen first and only their distinct ids are grouped, so a page costs
the same at the start and at the end of a big project. ``after`` resumes after a person id.

Each page is one HogQL query, and PostHog allows 120 an hour: an export of more than ~120
pages meets an hour-long wait, which it waits out before the next page (``on_wait`` is told
when it resumes; cancelling the task stops it there, and ``last_key`` says where to resume).

HogQL lags PostHog's database (deletes reach ClickHouse later, through Kafka): an export is a
snapshot of what ClickHouse holds, never proof that someone was deleted. The deletion job keeps
its proof on the persons endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from ... import _constants as C
from ..._query_models import ExportedPerson
from ..query import KeysetReader, Query
from ..query._waits import WaitCallback

__all__ = ["PersonsExport", "export_sql"]

_COLUMNS = ("id", "created_at", "is_identified", "properties", "distinct_ids")


def export_sql(condition: str | None, limit: int) -> str:
    """One page of the export (``condition``: the keyset's ``id > {...}``, none on page one)."""
    where = f"WHERE {condition} " if condition else ""
    persons = (f"SELECT id, created_at, is_identified, properties FROM persons {where}"
               f"ORDER BY id LIMIT {limit}")
    ids = f"SELECT id FROM persons {where}ORDER BY id LIMIT {limit}"
    return (
        "SELECT p.id AS id, p.created_at AS created_at, p.is_identified AS is_identified, "
        "p.properties AS properties, d.distinct_ids AS distinct_ids\n"
        f"FROM ({persons}) AS p\n"
        "LEFT JOIN (SELECT person_id, groupArray(distinct_id) AS distinct_ids "
        f"FROM person_distinct_ids WHERE person_id IN ({ids}) GROUP BY person_id) AS d "
        "ON d.person_id = p.id\n"
        f"ORDER BY p.id LIMIT {limit}")


def _properties(value: Any) -> dict[str, Any]:
    """HogQL answers ``properties`` as JSON text (a dict on some paths)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, (str, bytes)) and value:
        try:
            decoded = msgspec.json.decode(value)
        except msgspec.DecodeError:
            return {"$unparsed_properties": value}
        return decoded if isinstance(decoded, dict) else {"$properties": decoded}
    return {}


class PersonsExport:
    """``async for person in export`` (an :class:`ExportedPerson` each), or ``pages()`` (lists,
    for writers that record progress per page). ``last_key`` is the id of the last person read:
    pass it as ``after=`` to resume. A rate-limit wait longer than one call sleeps through is
    waited out between pages, ``on_wait(seconds, error)`` told first."""

    def __init__(self, query: Query, *, page_size: int = C.KEYSET_PAGE_SIZE,
                 after: str | None = None, on_wait: WaitCallback | None = None) -> None:
        self._reader = KeysetReader(query.hogql_runner(), key="id", page_size=page_size,
                                    after=after, template=export_sql, on_wait=on_wait,
                                    max_retry_after=query.max_retry_after)

    @property
    def last_key(self) -> str | None:
        key = self._reader.last_key
        return None if key is None else str(key)

    @property
    def rows_read(self) -> int:
        return self._reader.rows_read

    async def pages(self) -> AsyncIterator[list[ExportedPerson]]:
        pages = self._reader.pages()
        try:
            async for page in pages:
                names = [str(c) for c in page.columns or _COLUMNS]
                at = {name: names.index(name) for name in _COLUMNS if name in names}
                if "id" not in at:
                    raise ValueError(f"the export's answer has no id column: {names}")
                yield [_person(row, at) for row in page.results]
        finally:
            await pages.aclose()  # type: ignore[attr-defined]

    async def __aiter__(self) -> AsyncIterator[ExportedPerson]:
        pages = self.pages()
        try:
            async for page in pages:
                for person in page:
                    yield person
        finally:
            await pages.aclose()  # type: ignore[attr-defined]


def _person(row: list[Any], at: dict[str, int]) -> ExportedPerson:
    def cell(name: str) -> Any:
        index = at.get(name)
        return row[index] if index is not None else None

    ids = cell("distinct_ids") or []
    identified = cell("is_identified")
    return ExportedPerson(
        id=str(cell("id")),
        distinct_ids=[str(d) for d in ids if d not in (None, "")],  # LEFT JOIN misses: ''
        properties=_properties(cell("properties")),
        created_at=None if cell("created_at") is None else str(cell("created_at")),
        is_identified=None if identified is None else bool(identified))
