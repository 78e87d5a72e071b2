"""Ctrl-C and SIGTERM during a deletion job.

First Ctrl-C or SIGTERM: stop after the chunks in flight (a job loading its input stops
loading, even from a silent standard input; chunks waiting, even inside the transport, are left
unsent at once). Second Ctrl-C or SIGTERM: abort now (the task is cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from ..jobs import DeletionJob
from ._progress import ProgressLine

__all__ = ["JobSignals", "run_with_signals", "on_stop_signals"]


class JobSignals:
    def __init__(self, job: DeletionJob, task: asyncio.Future[Any], progress: ProgressLine) -> None:
        self.job, self.task, self.progress = job, task, progress
        self.loop = asyncio.get_running_loop()
        self.installed: list[int] = []
        self.received = False  # a signal arrived: the job was interrupted (exit status 130)
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
                                    "(Ctrl-C or SIGTERM again to abort now)...")
            self.job.request_stop()
        elif not self.task.done():  # a second Ctrl-C or SIGTERM
            self.progress.interrupt("aborting: chunks in flight will be checked on resume")
            self.task.cancel()

    def remove(self) -> None:
        for sig in self.installed:
            self.loop.remove_signal_handler(sig)


async def run_with_signals(job: DeletionJob, work: Coroutine[Any, Any, Any],
                           progress: ProgressLine) -> tuple[asyncio.Future[Any], bool]:
    """Run ``work`` (the job's run or verification) with Ctrl-C and SIGTERM handled as above;
    returns its finished task and whether a signal arrived."""
    task = asyncio.ensure_future(work)
    signals = JobSignals(job, task, progress)
    try:
        await asyncio.wait([task])
    finally:
        signals.remove()
        progress.close()
    return task, signals.received


@contextlib.contextmanager
def on_stop_signals(handler: Callable[[int], object]) -> Iterator[None]:
    """``handler(sig)`` runs in the event loop on Ctrl-C and SIGTERM while inside (the commands
    that are not jobs: ``persons lookup``, ``persons export``); the handlers are removed after."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, threads
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
