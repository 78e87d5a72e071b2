"""What a fake-server handler sees of a request, and the helpers every handler shares."""

from __future__ import annotations

import csv
import io
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from multidict import MultiMapping
from yarl import URL

from ._errors import validation_error
from ._store import ProjectData

__all__ = ["Req", "Reply", "paginate", "to_csv", "flag", "int_param", "is_uuid"]

#: (status, JSON-able body | CSV text | None)
Reply = tuple[int, Any]


@dataclass
class Req:
    method: str
    url: URL
    query: MultiMapping[str]
    body: Any
    params: Mapping[str, str]
    project: ProjectData | None
    key: str
    now: str

    def json_body(self) -> dict[str, Any]:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise validation_error("Expected a JSON object.", code="parse_error")
        return self.body

    @property
    def project_data(self) -> ProjectData:
        """The project of a project-scoped route (the router resolved it before the handler)."""
        assert self.project is not None
        return self.project

    @property
    def wants_csv(self) -> bool:
        return self.query.get("format") == "csv"


def flag(value: Any) -> bool:
    """DRF's boolean parsing for query strings and JSON bodies."""
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "yes", "on")


def int_param(req: Req, name: str, default: int, *, minimum: int = 0) -> int:
    raw = req.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_error("A valid integer is required.", attr=name) from None
    if value < minimum:
        raise validation_error(f"Ensure this value is greater than or equal to {minimum}.", attr=name)
    return value


def is_uuid(value: Any) -> bool:
    try:
        uuidlib.UUID(str(value))
    except ValueError:
        return False
    return True


def paginate(
    req: Req,
    items: Sequence[Any],
    serialize: Callable[[Any], Any],
    *,
    default_limit: int = 100,
    with_count: bool = False,
    short_pages: bool = False,
) -> Reply:
    """Limit/offset pagination with absolute ``next`` URLs, set only when the page was full.

    ``short_pages`` drops the last item of every full page while keeping ``next``, as the real
    server does when rows are filtered out after the query: clients must follow ``next``.
    """
    limit = int_param(req, "limit", default_limit, minimum=1)
    offset = int_param(req, "offset", 0)
    window = items[offset: offset + limit]
    full = len(window) == limit
    if short_pages and full:
        window = window[:-1]
    body: dict[str, Any] = {
        "next": str(req.url.update_query(offset=offset + limit, limit=limit)) if full else None,
        "previous": (
            str(req.url.update_query(offset=max(0, offset - limit), limit=limit)) if offset else None
        ),
        "results": [serialize(item) for item in window],
    }
    if with_count or "include_total" in req.query:
        body["count"] = len(items)
    if req.wants_csv:
        return 200, to_csv(body["results"])
    return 200, body


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Flatten rows (nested ``properties`` become ``properties.<key>`` columns) into CSV."""
    flat: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    for row in rows:
        out: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    out[f"{key}.{sub}"] = v
            elif isinstance(value, list):
                out[key] = ",".join(map(str, value))
            else:
                out[key] = value
        columns.update(dict.fromkeys(out))
        flat.append(out)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()
