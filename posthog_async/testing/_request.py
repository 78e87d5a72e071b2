"""What a handler sees of a request (``Req``), how bodies are parsed, and how answers are written.

Bodies are parsed lazily, as DRF does: only a handler that reads ``req.data()`` can fail on a
malformed body, and it fails the way DRF's parsers fail (400 ``parse_error``, 415).
"""

from __future__ import annotations

import asyncio
import json
import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import StreamReader, web
from multidict import MultiMapping
from yarl import URL

from ._errors import FakeAPIError, not_a_dict, parse_error, unsupported_media_type
from ._store import ProjectData

__all__ = ["Req", "Reply", "respond", "qget", "parse_uuid", "parse_int", "media_type", "replay_body",
           "peek_body"]

#: (status, JSON-able body | CSV text | None for an empty body)
Reply = tuple[int, Any]

_FORM = "application/x-www-form-urlencoded"


@dataclass
class Req:
    """One request as a handler sees it: routed, authenticated, throttled, body not yet parsed."""

    method: str
    url: URL
    query: MultiMapping[str]
    params: Mapping[str, str]
    project: ProjectData | None
    key: str
    now: str
    #: The request's absolute URI as the client sent it (Django's ``build_absolute_uri``).
    absolute: str = ""
    raw: bytes = b""
    content_type: str = ""
    #: A pre-parsed multipart form, when the route accepts forms (or why it could not be parsed).
    form: dict[str, Any] | None = None
    form_error: FakeAPIError | None = None
    #: Whether the view accepts form bodies (PostHog's persons views parse JSON only).
    accepts_forms: bool = True
    #: Work to do ``apply_delay`` after the answer has been sent (PostHog applies many writes
    #: asynchronously, through events or Celery tasks).
    later: list[Callable[[], None]] = field(default_factory=list)
    #: Work to do as soon as the answer has been sent.
    after_send: list[Callable[[], None]] = field(default_factory=list)
    #: Extra response headers a handler wants sent.
    headers: dict[str, str] = field(default_factory=dict)
    _data: Any = None
    _parsed: bool = False

    @property
    def project_data(self) -> ProjectData:
        """The project of a project-scoped route (the router resolved it before the handler)."""
        assert self.project is not None
        return self.project

    def q(self, name: str, default: str | None = None) -> str | None:
        """A query parameter, Django style: the last value wins."""
        return qget(self.query, name, default)

    @property
    def format(self) -> str | None:
        return self.q("format")

    @property
    def wants_csv(self) -> bool:
        return self.format == "csv"

    def data(self) -> Any:
        """``request.data``: the parsed body (``{}`` when there is none)."""
        if not self._parsed:
            self._data = self._parse()
            self._parsed = True
        return self._data

    def body(self) -> dict[str, Any]:
        """The body as an object; any other JSON value is a 400, never a crash."""
        data = self.data()
        if not isinstance(data, dict):
            raise not_a_dict(data)
        return data

    def _parse(self) -> Any:
        if self.form_error is not None:
            raise self.form_error
        if self.form is not None:
            return self.form
        if not self.raw:
            return {}
        kind = media_type(self.content_type)
        if kind == "application/json":
            return _parse_json(self.raw, _charset(self.content_type))
        if self.accepts_forms and kind == _FORM:
            text = self.raw.decode(_charset(self.content_type), errors="replace")
            return dict(parse_qsl(text, keep_blank_values=True))
        raise unsupported_media_type(self.content_type)


def _parse_json(raw: bytes, charset: str) -> Any:
    """DRF's ``JSONParser``: strict about NaN/Infinity, errors as ``JSON parse error - ...``."""
    try:
        return json.loads(raw.decode(charset), parse_constant=_strict_constant)
    except (ValueError, LookupError, RecursionError) as exc:
        raise parse_error(f"JSON parse error - {exc}") from None


def _strict_constant(value: str) -> Any:
    raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def qget(query: MultiMapping[str], name: str, default: str | None = None) -> str | None:
    values = query.getall(name, [])
    return values[-1] if values else default


def parse_uuid(value: Any) -> str | None:
    """The canonical (lowercase, dashed) form of anything ``uuid.UUID`` accepts, else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        return None


def parse_int(value: str) -> int | None:
    """Python's ``int()``, which PostHog uses on ids: ``" 7"``, ``"+7"`` and ``"٧"`` are 7;
    ``"³"`` is not a number (``str.isdigit`` would say it is)."""
    try:
        return int(value)
    except ValueError:
        return None


def respond(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    """JSON for data, ``text/csv`` for a CSV string, no body at all for ``None``."""
    if body is None:
        return web.Response(status=status, headers=headers)
    if isinstance(body, str):
        return web.Response(status=status, text=body, content_type="text/csv", headers=headers)
    return web.Response(status=status, body=msgspec.json.encode(body),
                        content_type="application/json", headers=headers)


def replay_body(raw: bytes, request: web.Request) -> StreamReader:
    """The body again, as a stream aiohttp's multipart reader can parse."""
    stream = StreamReader(request.protocol, len(raw) + 1, loop=asyncio.get_running_loop())
    stream.feed_data(raw)
    stream.feed_eof()
    return stream


def peek_body(req: Req) -> Any:
    """The parsed body for ``stats.bodies`` (``None`` when there is none or it does not parse)."""
    if not req.raw and req.form is None:
        return None
    try:
        return req.data()
    except FakeAPIError:
        return None
