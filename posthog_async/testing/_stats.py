"""Counters a test can read from a running fake server."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ServerStats"]


@dataclass
class ServerStats:
    """``by_endpoint`` keys look like ``"GET persons/:id/"``; ``bodies`` (with ``record_bodies``)
    maps ``"POST /api/projects/1/persons/bulk_delete/"`` to the parsed bodies, in order."""

    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0
    throttled: int = 0
    errors_injected: int = 0
    dropped: int = 0
    #: Requests whose client went away before the answer (processed all the same, as on
    #: PostHog), or before its body was in (not processed).
    disconnects: int = 0
    bodies: dict[str, list[Any]] = field(default_factory=dict)
