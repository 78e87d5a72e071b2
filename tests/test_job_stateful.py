"""A state machine that hunts for the next wrong proof: ``DeletionJob`` against the offline PostHog on
loopback, through lost answers, 5xx and 429 storms, dropped connections, stops and kills at random
requests, resumed until done, with and without lookups, queued and synchronous deletion.

A world has one to three projects (the same distinct ids, different persons; a listed UUID names
a person in one project only). Verification runs too: killed, stopped, before and after PostHog's
batch, and at the end.

After every run: nobody outside the list was touched, nobody the journal calls deleted (or a
verification calls gone) is alive, and the key is nowhere. After every run to the end: the report
equals the fake's truth id by id, every exactness claim in it is true, and its totals add up (each
person counted once); a final verification's verdict is the one the truth calls for.

The kill is the in-process stand-in for SIGKILL: the job's task is cancelled from a server hook
when the N-th request arrives, after the server did the work or before. What is the same as a
SIGKILL: the call in flight is abandoned whether or not PostHog processed it, nothing of the job's
own code runs after it (it never catches ``CancelledError``), and the lock is released (the kernel
releases a dead process's lock too). What is not: a journal write already in its worker thread
completes (as if the kill came just after it; SQLite commits are atomic, so a real kill lands before
or after one, never inside), ``finally`` blocks run (the journal is closed cleanly), and a kill
cannot land between two statements of one journal call. ``test_sigkill_of_the_cli_resumes_to_the_truth``
kills the real CLI process with SIGKILL at a random request instead, with fewer examples.

``POSTHOG_ASYNC_STATEFUL_EXAMPLES`` sets the number of examples (default 12; the subprocess variant
runs a quarter of them), ``POSTHOG_ASYNC_STATEFUL_STEPS`` the runs in each (default 4).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

import posthog_async._chunk_step as chunk_step
from posthog_async.cli._delete import journal_loaded
from posthog_async import PostHogError
from posthog_async.jobs import DeletionJob, JobInterrupted, JobReport
from posthog_async.testing import FakePostHog

from ._cli import run as run_cli
from ._cli import spawn
from ._world import (
    BULK, Truth, World, check_journal_claims, check_no_key, check_report, check_untouched,
    check_verification, journal_bytes, populate, worlds,
)
from .conftest import fast_retries

EXAMPLES = int(os.environ.get("POSTHOG_ASYNC_STATEFUL_EXAMPLES", "12"))
#: Runs per example (faulty runs and runs to the end), before the last run to the end.
STEPS = int(os.environ.get("POSTHOG_ASYNC_STATEFUL_STEPS", "4"))
#: No "explain" phase: it reruns a failing case dozens of times to annotate it (a minute here).
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)
KEY = "phx_stateful_secret_0123456789abcdef"


class LogSink(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


# -- the in-process machine ------------------------------------------------------------------------

@dataclass
class Abort:
    """A server hook for one run: at the ``at``-th request, stop the job, or kill it (after the
    server did the work, its answer then lost; or before, the request dropped)."""

    server: FakePostHog
    at: int
    mode: str  # "kill", "kill-unprocessed", "stop"
    job: DeletionJob | None = None
    scope: anyio.CancelScope | None = None  # made in the run's event loop
    seen: int = 0

    def __call__(self, request: web.Request) -> str | None:
        self.seen += 1
        if self.seen != self.at:
            return None
        if self.mode == "stop":
            assert self.job is not None
            self.job.request_stop()
            return None
        assert self.scope is not None
        self.scope.cancel()
        if self.mode == "kill-unprocessed":
            return "drop"
        if BULK in request.path:
            self.server.fail_next(None, lose_answer=True, path_contains=request.path)
        return None


class DeletionJobMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="job-machine-"))
        self.journal = self.tmp / "job.sqlite"
        self.server: FakePostHog | None = None
        self.notes: list[str] = []
        self.logs = LogSink()
        logging.getLogger().addHandler(self.logs)
        self._backoff = chunk_step._backoff
        chunk_step._backoff = lambda attempt: 0.001  # real retries, without the waits

    @initialize(world=worlds())
    def begin(self, world: World) -> None:
        self.world, self.truth = world, Truth(world)
        self.server = FakePostHog(api_key=KEY, rate_limits=None, queue_person_deletions=world.queued,
                                  queued_deletion_delay=0.02, bulk_delete_version=world.version,
                                  project_ids=world.project_ids)
        self.loop.run_until_complete(self.server.start())
        populate(self.server, world)
        self.inputs = {"distinct_ids": self.tmp / "erase.txt"}
        self.inputs["distinct_ids"].write_text("\n".join(world.listed) + "\n", encoding="utf-8")
        if world.listed_uuids:
            self.inputs["ids"] = self.tmp / "uuids.txt"
            self.inputs["ids"].write_text("\n".join(world.listed_uuids) + "\n", encoding="utf-8")

    def job(self, ph: Any, **kwargs: Any) -> DeletionJob:
        o = self.world.options()
        return DeletionJob(ph, distinct_ids=self.inputs["distinct_ids"], ids=self.inputs.get("ids"),
                           journal=self.journal, resolve=o["resolve"], projects=job_projects(self.world),
                           delete_events=o["delete_events"], delete_recordings=o["delete_recordings"],
                           keep_person=o["keep_person"], chunk_size=o["chunk_size"],
                           concurrency=o["concurrency"], on_notice=self.notes.append, **kwargs)

    async def _run(self, abort: Abort | None, *, verify: bool = False,
                   **kwargs: Any) -> JobReport | None:
        assert self.server is not None
        async with self.server.client(rate_limits=None, retry_policy=fast_retries(),
                                      max_retry_after=0.01) as ph:
            job = self.job(ph, **kwargs)
            run = job.verify if verify else job.run
            if abort is None:
                return await run()
            abort.job, abort.scope = job, anyio.CancelScope()
            with abort.scope:
                return await run()
            return None

    @staticmethod
    async def _quietly(run: Any) -> JobReport | None:
        """A faulty run may end in what will not heal within its patience: a storm through the
        discovery of its projects (raised: a discovery that did not finish never passes for a
        complete one), or a stop before its input was loaded (nothing was sent)."""
        try:
            result: JobReport | None = await run
            return result
        except (PostHogError, JobInterrupted):
            return None

    def complete_rows(self) -> None:
        """PostHog's weekly batch has run: every event-deletion row is verified."""
        assert self.server is not None
        for project in self.world.project_ids:
            self.server.verify_event_deletions(project)

    def settle(self) -> None:
        assert self.server is not None
        self.server.injector.failures.clear()
        self.server.injector.hooks.clear()
        self.loop.run_until_complete(self.server.wait_for_deletions())

    @rule(lose=st.integers(0, 3), drop=st.integers(0, 2),
          storm=st.sampled_from([None, 429, 500, 502, 503, 504]), storm_size=st.integers(1, 6),
          storm_on=st.sampled_from([BULK, "batch", None]),
          abort=st.sampled_from([None, None, "kill", "kill-unprocessed", "stop"]),
          at=st.integers(1, 8), retry_failed=st.booleans())
    def faulty_run(self, lose: int, drop: int, storm: int | None, storm_size: int,
                   storm_on: str | None, abort: str | None, at: int, retry_failed: bool) -> None:
        server = self.server
        assert server is not None
        if lose:
            server.fail_next(None, lose_answer=True, times=lose, path_contains=BULK)
        if drop:
            server.fail_next(drop=True, times=drop, path_contains=BULK)
        if storm is not None:
            server.fail_next(storm, times=storm_size, path_contains=storm_on,
                             retry_after=0 if storm == 429 else None)
        hook = Abort(server, at, abort) if abort else None
        if hook is not None:
            server.add_hook(hook)
        report = self.loop.run_until_complete(self._quietly(self._run(
            hook, patience=0.2, retry_failed=retry_failed)))
        self.settle()
        self.check_safety()
        if report is not None:  # stopped, or some chunks failed: what it settled is true
            check_report(report.to_dict(per_id=True), server, self.truth, partial=True)

    @precondition(lambda self: self.server is not None)
    @rule()
    def run_to_the_end(self) -> None:
        report = self.loop.run_until_complete(self._run(None, retry_failed=True))
        assert report is not None
        self.settle()
        self.check_safety()
        data = report.to_dict(per_id=True)
        t, exact = report.totals, report.exactness
        event(f"per id exact: {exact['per_id_outcomes_exact']}, person totals exact: "
              f"{exact['person_totals_exact']}")
        event(f"lost answers: {min(t['lost_answers'], 2)}+, unresolved: {t['unresolved'] > 0}")
        check_report(data, self.server, self.truth)  # type: ignore[arg-type]
        csv_path = report.write(self.tmp / "report.csv")
        check_no_key(KEY, ("the JSON report", json.dumps(data)), ("the CSV report", csv_path.read_bytes()),
                     *journal_bytes(self.journal), ("the notes", "\n".join(self.notes)),
                     ("the logs", "\n".join(self.logs.lines)))
        if not report.totals["failed"]:  # a finished job, resumed, sends nothing
            before = self.server.stats.by_endpoint.copy()  # type: ignore[union-attr]
            again = self.loop.run_until_complete(self._run(None))
            assert again is not None and again.totals == report.totals
            sent = self.server.stats.by_endpoint  # type: ignore[union-attr]
            assert {k: v for k, v in sent.items() if BULK in k} == {
                k: v for k, v in before.items() if BULK in k}

    @precondition(lambda self: self.server is not None)
    @rule(abort=st.sampled_from([None, "kill", "kill-unprocessed", "stop"]), at=st.integers(1, 6),
          batch_ran=st.booleans(), storm=st.sampled_from([None, 429, 502]))
    def verify_run(self, abort: str | None, at: int, batch_ran: bool, storm: int | None) -> None:
        """A verification, maybe killed or stopped at the N-th request, before or after
        PostHog's batch: what it records is never a lie about a living person."""
        if not journal_loaded(self.journal):
            return
        server = self.server
        assert server is not None
        if batch_ran:
            self.complete_rows()
        if storm is not None:
            server.fail_next(storm, times=2, path_contains="batch_by",
                             retry_after=0 if storm == 429 else None)
        hook = Abort(server, at, abort) if abort else None
        if hook is not None:
            server.add_hook(hook)
        report = self.loop.run_until_complete(self._quietly(self._run(hook, verify=True)))
        self.settle()
        self.check_safety()
        if report is not None and report.verification is not None:  # None: stopped at once
            check_verification(report.to_dict(per_id=True), server, self.truth, final=False)

    def verify_to_the_end(self) -> None:
        self.complete_rows()
        report = self.loop.run_until_complete(self._run(None, verify=True))
        assert report is not None and self.server is not None
        data = report.to_dict(per_id=True)
        event(f"verified: {data['verification']['state']}")
        check_verification(data, self.server, self.truth, final=True)
        self.check_safety()

    def check_safety(self) -> None:
        assert self.server is not None
        check_untouched(self.server, self.truth)
        if self.journal.exists():
            check_journal_claims(self.journal, self.server, self.truth)
            check_no_key(KEY, *journal_bytes(self.journal))

    def teardown(self) -> None:
        try:
            if self.server is not None:
                self.run_to_the_end()  # every example ends with a resume to the end
                self.verify_to_the_end()  # and a verification once PostHog's batch ran
        finally:
            chunk_step._backoff = self._backoff
            logging.getLogger().removeHandler(self.logs)
            if self.server is not None:
                self.loop.run_until_complete(self.server.stop())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


DeletionJobMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_deletion_job_state_machine = DeletionJobMachine.TestCase


def job_projects(world: World) -> Any:
    """One project: the client's (as before projects existed); several: named, or discovered."""
    if world.projects == 1:
        return None
    return world.project_ids if world.chunk_size % 2 else "all"


# -- the same with a real process killed by SIGKILL --------------------------------------------------

def cli_args(world: World, inputs: dict[str, Path], journal: Path) -> list[str]:
    args = ["persons", "delete", "--distinct-ids-file", str(inputs["distinct_ids"]),
            "--journal", str(journal), "--chunk-size", str(world.chunk_size),
            "--concurrency", str(world.concurrency), "--patience", "1"]
    projects = job_projects(world)
    if projects == "all":
        args.append("--all-projects")
    for project in projects if isinstance(projects, list) else ():
        args += ["--project-id", str(project)]
    if "ids" in inputs:
        args += ["--ids-file", str(inputs["ids"])]
    for flag, on in (("--no-resolve", not world.resolve), ("--delete-events", world.delete_events),
                     ("--delete-recordings", world.delete_recordings),
                     ("--keep-person", world.keep_person)):
        if on:
            args.append(flag)
    return args


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@settings(max_examples=max(2, EXAMPLES // 4), deadline=None, phases=PHASES,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(world=worlds(), kills=st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=1,
                                     max_size=2))
def test_sigkill_of_the_cli_resumes_to_the_truth(world: World, kills: list[tuple[int, bool]]) -> None:
    """The CLI is killed with SIGKILL when the N-th request arrives (PostHog does the work first,
    or never sees it), resumed, killed again, then resumed to the end."""
    with tempfile.TemporaryDirectory(prefix="job-sigkill-") as tmp:
        asyncio.run(_sigkill_scenario(Path(tmp), world, kills))


async def _sigkill_scenario(tmp: Path, world: World, kills: list[tuple[int, bool]]) -> None:
    truth = Truth(world)
    inputs = {"distinct_ids": tmp / "erase.txt"}
    inputs["distinct_ids"].write_text("\n".join(world.listed) + "\n", encoding="utf-8")
    if world.listed_uuids:
        inputs["ids"] = tmp / "uuids.txt"
        inputs["ids"].write_text("\n".join(world.listed_uuids) + "\n", encoding="utf-8")
    journal = tmp / "job.sqlite"
    async with FakePostHog(api_key=KEY, rate_limits=None, queue_person_deletions=world.queued,
                           queued_deletion_delay=0.02, bulk_delete_version=world.version,
                           project_ids=world.project_ids) as server:
        populate(server, world)
        args = cli_args(world, inputs, journal)
        for n, (at, processed) in enumerate(kills):
            seen = {"n": 0}
            proc = await spawn(server, *args, *(["--resume"] if n else []))

            def kill(request: web.Request, proc: Any = proc, seen: dict[str, int] = seen,
                     at: int = at, processed: bool = processed) -> str | None:
                seen["n"] += 1
                if seen["n"] == at and proc.returncode is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    return None if processed else "drop"
                return None

            server.injector.hooks[:] = [kill]
            await proc.communicate()
            server.injector.hooks.clear()
            await server.wait_for_deletions()
            check_untouched(server, truth)
            if journal.exists():
                check_journal_claims(journal, server, truth)
        report = tmp / "report.json"
        code, _, err = await run_cli(server, *args, "--resume", "--retry-failed", "--report",
                                     str(report), "--per-id")
        await server.wait_for_deletions()
        data = json.loads(report.read_text())
        t = data["totals"]
        assert code == (1 if t["failed"] or t["invalid"] else 0), err
        check_report(data, server, truth)
        check_untouched(server, truth)
        check_no_key(KEY, ("the report", report.read_bytes()), ("stderr", err),
                     *journal_bytes(journal))
