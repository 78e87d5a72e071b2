"""What a verification needs of the deletion job it verifies.

``DeletionJob.verify()`` hands the job to :func:`~posthog_async.jobs.verify_job`; naming the
job's side of that exchange here, as a protocol, lets the verification be written without
importing the job that calls it (the job imports the verification, never the reverse).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .._admission import WaitStop
from .._client import ScopedPostHog
from ._input import InputSpec
from ._job_projects import Projects
from ._loading import IterableInput

__all__ = ["VerifiableJob"]


class VerifiableJob(Protocol):
    """A :class:`~posthog_async.jobs.DeletionJob`, as its verification uses it."""

    client: ScopedPostHog
    sources: list[InputSpec | IterableInput]
    journal_path: Path
    concurrency: int
    notes: list[str]
    _stop: WaitStop

    @property
    def stopping(self) -> bool: ...

    def _notice(self, message: str) -> None: ...

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    async def _journaled(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    def _projects(self) -> Projects: ...
