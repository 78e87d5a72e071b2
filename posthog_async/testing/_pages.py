"""Pagination as PostHog answers it: DRF's ``LimitOffsetPagination`` and the persons list's own links.

The two differ on purpose. DRF's links re-encode the query (sorted) and know the total count;
the persons list rewrites only ``offset=`` in the URL as sent, sets ``next`` whenever the query
found ``limit`` ids, and keeps the URL unchanged when the new offset would be 0.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from ._request import Reply, Req, parse_int

__all__ = ["drf_page", "drf_limit_offset", "persons_link", "to_csv"]

_OFFSET = re.compile(r"([&?]offset=)(\d+)")


def _positive(raw: str | None, *, strict: bool) -> int | None:
    """DRF's ``_positive_int``: anything unparsable or out of range means "use the default"."""
    if raw is None:
        return None
    value = parse_int(raw)
    if value is None or value < 0 or (strict and value == 0):
        return None
    return value


def drf_limit_offset(req: Req, default_limit: int = 100) -> tuple[int, int]:
    limit = _positive(req.q("limit"), strict=True)
    offset = _positive(req.q("offset"), strict=False)
    return (default_limit if limit is None else limit), (offset or 0)


def _replace(url: str, key: str, value: int | None) -> str:
    """DRF's ``replace_query_param`` (``None``: ``remove_query_param``); the query comes back sorted."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    if value is None:
        params.pop(key, None)
    else:
        params[key] = [str(value)]
    return urlunsplit((scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment))


def drf_page(req: Req, items: Sequence[Any], serialize: Callable[[Any], Any] = dict, *,
             default_limit: int = 100) -> Reply:
    """``{"count", "next", "previous", "results"}`` exactly as DRF builds it."""
    limit, offset = drf_limit_offset(req, default_limit)
    count = len(items)
    window = items[offset: offset + limit] if offset <= count else []
    url = _replace(req.absolute, "limit", limit)
    next_url = None if offset + limit >= count else _replace(url, "offset", offset + limit)
    if offset <= 0:
        previous = None
    elif offset - limit <= 0:
        previous = _replace(url, "offset", None)
    else:
        previous = _replace(url, "offset", offset - limit)
    return 200, {"count": count, "next": next_url, "previous": previous,
                 "results": [serialize(item) for item in window]}


def persons_link(req: Req, offset: int) -> str:
    """PostHog's ``format_query_params_absolute_url``: rewrite (or append) ``offset=`` in the URL as
    sent; an offset of 0 changes nothing, which gives page 2 a ``previous`` equal to itself."""
    url = req.absolute
    if offset:
        if _OFFSET.search(url):
            url = _OFFSET.sub(rf"\g<1>{offset}", url)
        else:
            url = url + ("&" if "?" in url else "?") + f"offset={offset}"
    return url


def to_csv(rows: Sequence[Any]) -> str:
    """djangorestframework-csv's rendering: nested objects and lists flattened into ``a.b`` and
    ``a.0`` columns, the header sorted."""
    flat = [_flatten(row, "") for row in rows]
    header = sorted({key for row in flat for key in row})
    buf = io.StringIO()
    writer = csv.writer(buf)
    if flat:
        writer.writerow(header)
        writer.writerows([row.get(key) for key in header] for row in flat)
    return buf.getvalue()


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix.rstrip("."): value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(_flatten(item, f"{prefix}{key}."))
    return out
