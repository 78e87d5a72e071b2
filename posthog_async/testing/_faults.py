"""Fault injection: scripted failures (``fail_next``), hooks, seeded random errors, latency, drops.

Injected answers carry the bodies PostHog would send for that status (a 503 is the
``DatabaseUnavailable`` answer, which real servers send with ``Retry-After: 1``), so clients are
tested against realistic failures, not placeholders.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ._request import respond
from ._stats import ServerStats
from ._throttle import throttled

__all__ = ["Faults", "FaultInjector", "Hook", "injected_body"]

Hook = Callable[[web.Request], web.StreamResponse | str | None]


@dataclass
class Faults:
    """Seeded random faults. ``error_rate`` of requests get one of ``error_statuses``;
    ``drop_rate`` have their connection closed without an answer; ``lose_answer_rate`` are
    processed and then lose their answer (the connection closes after the work is done, as when
    a network or proxy fails on the way back); ``latency`` seconds are added to every request
    (plus up to ``jitter``)."""

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    drop_rate: float = 0.0
    lose_answer_rate: float = 0.0
    latency: float = 0.0
    jitter: float = 0.0
    seed: int = 0
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def delay(self) -> float:
        return self.latency + (self.rng.random() * self.jitter if self.jitter else 0.0)

    def pick(self) -> str | int | None:
        """``"drop"``, an error status, or ``None`` for a normal answer."""
        if self.drop_rate and self.rng.random() < self.drop_rate:
            return "drop"
        if self.error_rate and self.rng.random() < self.error_rate:
            return self.rng.choice(self.error_statuses)
        return None

    def loses_answer(self) -> bool:
        return bool(self.lose_answer_rate) and self.rng.random() < self.lose_answer_rate


@dataclass
class _Failure:
    status: int | None
    times: int
    method: str | None
    path_contains: str | None
    retry_after: int | None
    drop: bool
    lose_answer: bool = False

    def matches(self, request: web.Request) -> bool:
        return (self.method is None or request.method == self.method) and (
            self.path_contains is None or self.path_contains in request.path
        )


def injected_body(status: int, retry_after: int | None = None) -> Any:
    """The body PostHog sends with ``status``."""
    if status == 429:
        return throttled(retry_after).body
    if status == 503:
        return {"type": "server_error", "code": "database_unavailable",
                "detail": "We couldn't reach the database just now. Please try again in a moment.",
                "attr": None}
    if status >= 500:
        return {"type": "server_error", "code": "error", "detail": "A server error occurred.",
                "attr": None}
    kinds = {400: ("validation_error", "invalid_input", "Invalid input."),
             401: ("authentication_error", "authentication_failed",
                   "Personal API key found in request Authorization header is invalid."),
             403: ("authentication_error", "permission_denied",
                   "You do not have permission to perform this action."),
             404: ("invalid_request", "not_found", "Not found.")}
    kind, code, detail = kinds.get(status, ("invalid_request", "error", "Injected failure."))
    return {"type": kind, "code": code, "detail": detail, "attr": None}


class FaultInjector:
    """Decides, before dispatch, whether a request is answered normally."""

    def __init__(self, faults: Faults, stats: ServerStats) -> None:
        self.faults = faults
        self.stats = stats
        self.failures: list[_Failure] = []
        self.hooks: list[Hook] = []

    def fail_next(self, status: int | None, times: int, method: str | None, path_contains: str | None,
                  retry_after: int | None, drop: bool, lose_answer: bool = False) -> None:
        if status is None and not (drop or lose_answer):
            raise ValueError("fail_next needs a status, drop=True or lose_answer=True")
        self.failures.append(_Failure(status, times, method, path_contains, retry_after, drop,
                                      lose_answer))

    def intercept(self, request: web.Request) -> web.StreamResponse | None:
        """A response (or a dropped connection) that replaces the real answer, else ``None``."""
        for hook in self.hooks:
            outcome = hook(request)
            if outcome == "drop":
                return self._drop(request)
            if isinstance(outcome, web.StreamResponse):
                return outcome
        for failure in self.failures:
            if failure.times > 0 and not failure.lose_answer and failure.matches(request):
                failure.times -= 1
                self.stats.errors_injected += 1
                if failure.drop:
                    return self._drop(request)
                assert failure.status is not None
                headers = ({} if failure.retry_after is None
                           else {"Retry-After": str(failure.retry_after)})
                return respond(failure.status, injected_body(failure.status, failure.retry_after),
                               headers)
        self.failures = [f for f in self.failures if f.times > 0]
        pick = self.faults.pick()
        if pick == "drop":
            return self._drop(request)
        if isinstance(pick, int):
            self.stats.errors_injected += 1
            return respond(pick, injected_body(pick))
        return None

    def answer_lost(self, request: web.Request) -> bool:
        """Decided after the work is done: close the connection instead of answering?"""
        for failure in self.failures:
            if failure.times > 0 and failure.lose_answer and failure.matches(request):
                failure.times -= 1
                self.stats.errors_injected += 1
                return True
        return self.faults.loses_answer()

    def drop(self, request: web.Request) -> web.StreamResponse:
        return self._drop(request)

    def _drop(self, request: web.Request) -> web.StreamResponse:
        self.stats.dropped += 1
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)
