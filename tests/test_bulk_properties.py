"""``bulk_delete_all`` against the offline PostHog, with random erase lists and faults: every id is
accounted for, every id named "not found" named nobody, "unresolved" ids are gone or never were,
persons are counted once when the report says its counts are exact, and nobody outside the list
is touched. ``POSTHOG_ASYNC_STATEFUL_EXAMPLES`` sets the number of examples (default 12)."""

from __future__ import annotations

import asyncio
import os

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import posthog_async._chunk_step as chunk_step
from posthog_async import BulkDeleteReport
from posthog_async._validation import clean_id
from posthog_async.testing import FakePostHog

from ._world import BULK, Truth, World, check_untouched, populate, worlds
from .conftest import API_KEY, fast_retries

EXAMPLES = int(os.environ.get("POSTHOG_ASYNC_STATEFUL_EXAMPLES", "12"))


@settings(max_examples=EXAMPLES, deadline=None,
          phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
          suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds(), dedupe=st.booleans(), lose=st.integers(0, 3),
       storm=st.sampled_from([None, 429, 500, 503]), storm_size=st.integers(1, 4),
       storm_on=st.sampled_from([BULK, "batch"]))
def test_bulk_delete_all_accounts_for_every_id(world: World, dedupe: bool, lose: int,
                                                storm: int | None, storm_size: int,
                                                storm_on: str) -> None:
    backoff = chunk_step._backoff
    chunk_step._backoff = lambda attempt: 0.001  # real retries, without the waits
    try:
        asyncio.run(_scenario(world, dedupe, lose, storm, storm_size, storm_on))
    finally:
        chunk_step._backoff = backoff


async def _scenario(world: World, dedupe: bool, lose: int, storm: int | None, storm_size: int,
                    storm_on: str) -> None:
    truth = Truth(world)
    async with FakePostHog(api_key=API_KEY, rate_limits=None, queue_person_deletions=world.queued,
                           queued_deletion_delay=0.02, bulk_delete_version=world.version,
                           project_ids=world.project_ids) as server:
        populate(server, world)
        for kind, lines in (("distinct_ids", world.listed), ("ids", world.listed_uuids)):
            if not lines:
                continue
            if lose:
                server.fail_next(None, lose_answer=True, times=lose, path_contains=BULK)
            if storm is not None:
                server.fail_next(storm, times=storm_size, path_contains=storm_on,
                                 retry_after=0 if storm == 429 else None)
            alive = set(server.project().persons)
            async with server.client(rate_limits=None, retry_policy=fast_retries(),
                                     max_retry_after=0.01) as ph:
                report = await ph.persons.bulk_delete_all(
                    **{kind: lines}, resolve=world.resolve, dedupe=dedupe,  # type: ignore[arg-type]
                    delete_events=world.delete_events, keep_person=world.keep_person,
                    chunk_size=world.chunk_size, concurrency=world.concurrency)
            server.injector.failures.clear()
            await server.wait_for_deletions()
            _check(report, kind, lines, alive, set(server.project().persons), truth, dedupe)
            check_untouched(server, truth)


def _clean(kind: str, lines: list[str], dedupe: bool) -> list[str]:
    out: list[str] = []
    for line in lines:
        try:
            value = clean_id(line, uuid=kind == "ids")
        except ValueError:
            continue
        if value is not None and (not dedupe or value not in out):
            out.append(value)
    return out


def _check(report: BulkDeleteReport, kind: str, lines: list[str], alive_before: set[str],
           alive_after: set[str], truth: Truth, dedupe: bool) -> None:
    world = truth.world
    sent = _clean(kind, lines, dedupe)
    assert report.input.requested == len(lines)
    assert not report.stopped_early and not report.failed_chunks, report.failed_chunks
    assert sum(report.outcomes.values()) == len(sent), (report.outcomes, sent)

    def named(key: str) -> str | None:
        person = truth.named(kind, key)
        return person if person in alive_before else None

    for key in report.not_found:  # proven: it named nobody when the call began
        person = named(key)
        assert person is None or (person in truth.wide and not report.exact), (key, report)
    for key in report.unresolved:  # a person deleted (queued, kept), or nobody
        person = named(key)
        assert person is None or world.queued or (person in alive_after) == world.keep_person, (
            key, report)
    persons = {p for key in sent if (p := named(key)) is not None}
    success = report.outcomes["deleted"] + report.outcomes["queued"] + report.outcomes["kept"]
    assert success <= sum(named(key) is not None for key in sent)
    failed = persons & truth.failing if not world.queued else set()
    removed = set() if world.keep_person else persons - failed
    if world.keep_person:
        assert persons <= alive_after
    elif not world.queued:
        assert not removed & alive_after and failed <= alive_after
    assert report.persons_deleted + report.persons_queued_for_deletion <= report.persons_found
    if report.exact:
        assert report.persons_found == len(persons), (report, persons)
        assert report.persons_deleted + report.persons_queued_for_deletion == len(removed)
        if not report.unresolved and not (world.queued or world.keep_person):
            assert report.outcomes["failed"] == sum(named(k) in failed for k in sent)
