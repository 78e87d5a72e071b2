"""Ctrl-C and SIGTERM during a deletion job.

First Ctrl-C or SIGTERM: stop after the chunks in flight. Second Ctrl-C: abort now (the task is
cancelled). A job still loading its input can be stuck in a read that no cancellation reaches
(standard input from a terminal or an idle pipe): if it has not ended shortly after the abort,
and nothing was loaded (so nothing was sent), ``on_stuck`` is called to leave at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from ..jobs import DeletionJob
from ._progress import ProgressLine

__all__ = ["JobSignals"]

ABORT_GRACE = 2.0  # seconds a cancelled job has to end before a stuck read is given up on


class JobSignals:
    def __init__(self, job: DeletionJob, task: asyncio.Future[Any], progress: ProgressLine) -> None:
        self.job, self.task, self.progress = job, task, progress
        self.loop = asyncio.get_running_loop()
        self.installed: list[int] = []
        self.received = False  # a signal arrived: the job was interrupted (exit status 130)
        self.aborted = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.loop.add_signal_handler(sig, self.handle, sig)
                self.installed.append(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, threads
                pass

    def handle(self, sig: int) -> None:
        self.received = True
        if not self.job.stopping:
            name = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
            self.progress.interrupt(f"{name}: stopping after the chunks in flight "
                                    "(Ctrl-C again to abort now)...")
            self.job.request_stop()
        elif sig == signal.SIGINT and not self.task.done():
            self.progress.interrupt("aborting: chunks in flight will be checked on resume")
            self.task.cancel()
            self.aborted.set()

    async def wait(self, nothing_sent: Callable[[], bool], on_stuck: Callable[[], object]) -> None:
        """Until the job's task is done; ``on_stuck()`` if an abort cannot end a loading job."""
        aborted = asyncio.ensure_future(self.aborted.wait())
        try:
            await asyncio.wait([self.task, aborted], return_when=asyncio.FIRST_COMPLETED)
        finally:
            aborted.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await aborted
        if not self.task.done():
            await asyncio.wait([self.task], timeout=ABORT_GRACE)
        if not self.task.done() and nothing_sent():
            on_stuck()
        await asyncio.wait([self.task])

    def remove(self) -> None:
        for sig in self.installed:
            self.loop.remove_signal_handler(sig)
