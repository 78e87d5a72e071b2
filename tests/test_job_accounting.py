"""The deletion job's figures stay true on the paths a probe broke (issue 17): "not found" without
lookups, a lost call's events, lost answers across runs, persons both deleted and queued, and the
bulk helper's memory when ids are not found. Each test failed on the code before its fix."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from posthog_async._chunk_result import MAYBE_DELETED
from posthog_async.jobs import DeletionJob
from posthog_async.jobs._journal import Journal
from posthog_async.jobs._lock import JournalError
from posthog_async.jobs._schema import SCHEMA_VERSION
from posthog_async.testing import FakePostHog
from posthog_async.testing._request import respond

from ._old_journals import downgrade
from .conftest import API_KEY
from .test_job_proof import per_id, rec, write_ids

__all__ = ["rec"]  # the fixture, shared with test_job_proof


def seed_with_anon(server: FakePostHog, n: int) -> None:
    """``user-0..user-{n-1}``, every third also ``anon-N`` (as ``python -m posthog_async.testing``)."""
    for i in range(n):
        server.add_person([f"user-{i}"] + ([f"anon-{i}"] if i % 3 == 0 else []))


# -- 2. without lookups, "not found" is claimed only where it is proven ---------------------------

async def test_no_resolve_does_not_call_an_id_of_a_person_it_deleted_not_found(
        rec: FakePostHog, tmp_path: Path) -> None:
    """user-0..user-299, then anon-0, anon-3, ... in a later chunk: the anon ids named persons
    the first chunk deleted. Without lookups that cannot be told from "never there"."""
    seed_with_anon(rec, 300)
    anon = [f"anon-{i}" for i in range(0, 300, 3)]
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(300)] + anon)
    notes: list[str] = []
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, resolve=False, chunk_size=300,
                                   concurrency=1, on_notice=notes.append).run()
    assert any(note.startswith("100 ids were not found after") for note in notes)
    outcomes = per_id(report)
    assert {outcomes[key] for key in anon} == {("unresolved", MAYBE_DELETED)}
    assert report.totals["not_found"] == 0 and report.totals["deleted"] == 300
    assert not report.exactness["per_id_outcomes_exact"]
    assert any("100 ids were not found when sent" in why for why in report.exactness["why"])


async def test_no_resolve_not_found_stays_exact_where_nothing_was_deleted_before(
        rec: FakePostHog, tmp_path: Path) -> None:
    """Ghosts sent before any deletion are proven absent; unknown UUIDs after deletions by UUID
    too (a UUID names one person, deleted only through itself)."""
    seed_with_anon(rec, 10)
    source = write_ids(tmp_path / "erase.txt", ["ghost-1", "ghost-2", "user-1", "user-2"])
    uuids = [p.uuid for p in rec.project().persons.values()][5:7]
    unknown = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]
    by_uuid = write_ids(tmp_path / "uuids.txt", uuids + unknown)
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, resolve=False, chunk_size=2,
                                   concurrency=1).run()
        assert per_id(report)["ghost-1"] == ("not_found", None)
        assert report.exactness["per_id_outcomes_exact"] and report.ok
        report = await DeletionJob(ph, ids=by_uuid, resolve=False, chunk_size=2,
                                   concurrency=1).run()
    assert {per_id(report)[key] for key in unknown} == {("not_found", None)}
    assert report.totals["deleted"] == 2 and report.exactness["per_id_outcomes_exact"]


async def test_bulk_helper_without_lookups_says_the_same(rec: FakePostHog) -> None:
    seed_with_anon(rec, 30)
    anon = [f"anon-{i}" for i in range(0, 30, 3)]
    async with rec.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(
            distinct_ids=[f"user-{i}" for i in range(30)] + anon, chunk_size=30, concurrency=1)
    assert report.not_found == [] and sorted(report.unresolved) == sorted(anon)
    assert report.outcomes["unresolved"] == 10 and report.outcomes["deleted"] == 30


async def test_bulk_helper_with_repeats_cannot_prove_a_uuid_absent(rec: FakePostHog) -> None:
    """dedupe=False sends a UUID twice: the second call finds nobody because the first deleted it."""
    person = rec.add_person(["solo"])
    async with rec.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(ids=[person.uuid, person.uuid], chunk_size=1,
                                                  concurrency=1, dedupe=False)
    assert report.outcomes["deleted"] == 1 and report.outcomes["unresolved"] == 1
    assert report.not_found == []


# -- 3. a lost call's events ---------------------------------------------------------------------

async def test_events_queued_by_calls_whose_answers_were_lost_are_counted(
        rec: FakePostHog, tmp_path: Path) -> None:
    """Every bulk_delete answer is lost after processing; the lookups settle each chunk. The
    events the lost calls queued are the report's, not the re-send's zero."""
    rec.seed_persons(10)
    rec.fail_next(None, lose_answer=True, path_contains="bulk_delete", times=1000)
    names = sorted({d for p in rec.project().persons.values() for d in p.distinct_ids
                    if d.startswith("user-")})
    source = write_ids(tmp_path / "erase.txt", names)
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, delete_events=True,
                                   delete_recordings=True, chunk_size=4).run()
    t = report.totals
    truth = {row["person_uuid"] for row in rec.project().deletion_status}
    assert len(truth) == 10 and not rec.project().persons
    assert t["events_queued_for_persons"] == 10 and t["recordings_queued_for_persons"] == 10
    assert t["lost_answers"] == 3 and t["persons_deleted"] == 10 and report.ok


# -- 4. lost answers across runs ------------------------------------------------------------------

async def test_a_lost_answer_before_a_stop_is_counted_by_the_resumed_run(
        rec: FakePostHog, tmp_path: Path) -> None:
    """The call deleted all five and its answer was lost; its recheck was refused (the job
    stopped); the resumed run settles it. The lost answer and the re-send are in the report."""
    rec.seed_persons(5)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 6)])
    rec.fail_next(None, lose_answer=True, path_contains="bulk_delete")
    refused = {"left": 1, "deleted": False}

    def refuse(request: web.Request) -> web.StreamResponse | None:
        if "bulk_delete" in request.path:
            refused["deleted"] = True
        elif refused["deleted"] and refused["left"] and "batch" in request.path:
            refused["left"] -= 1
            return respond(401, {"type": "authentication_error", "code": "authentication_failed",
                                 "detail": "Personal API key is invalid.", "attr": None})
        return None

    rec.add_hook(refuse)
    async with rec.client(rate_limits=None) as ph:
        stopped = await DeletionJob(ph, distinct_ids=source).run()
        assert stopped.stopped and stopped.totals["lost_answers"] == 1
        report = await DeletionJob(ph, distinct_ids=source).run()
    t = report.totals
    # settled by the resumed run's lookup: nothing was sent again (resent_chunks counts re-sends)
    assert (t["lost_answers"], t["resent_chunks"], t["delete_calls"]) == (1, 0, 1)
    assert report.ok and t["deleted"] == 5


class Killer:
    """Cancels the job (the in-process stand-in for SIGKILL) when the ``at``-th bulk_delete
    arrives; ``processed`` lets the server do the work first (its answer is then lost)."""

    def __init__(self, server: FakePostHog, at: int = 1, *, processed: bool = True) -> None:
        self.server, self.at, self.processed, self.seen = server, at, processed, 0
        self.scope = anyio.CancelScope()
        server.add_hook(self)

    def __call__(self, request: web.Request) -> str | None:
        if "bulk_delete" not in request.path:
            return None
        self.seen += 1
        if self.seen != self.at:
            return None
        self.scope.cancel()
        if not self.processed:
            return "drop"
        self.server.fail_next(None, lose_answer=True, path_contains=request.path)
        return None


async def killed_at(server: FakePostHog, source: Path, at: int) -> None:
    """A two-id-a-chunk job on ``source``, killed when the ``at``-th bulk_delete arrives."""
    killer = Killer(server, at)
    async with server.client(rate_limits=None) as ph:
        with killer.scope:
            await DeletionJob(ph, distinct_ids=source, chunk_size=2, concurrency=1).run()
    assert killer.scope.cancelled_caught


async def test_a_kill_during_a_call_is_a_lost_answer_on_resume(rec: FakePostHog,
                                                               tmp_path: Path) -> None:
    rec.seed_persons(6)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 7)])
    await killed_at(rec, source, 2)
    assert len(rec.project().persons) == 2
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, chunk_size=2, concurrency=1).run()
    t = report.totals
    assert (t["lost_answers"], t["resent_chunks"], t["delete_calls"]) == (1, 0, 3)  # see above
    assert report.ok and t["deleted"] == 6 and t["persons_deleted"] == 6
    assert per_id(report)["user-3"] == ("deleted", "deleted by a call whose answer was lost")


@pytest.mark.parametrize("version", [3, 4])
async def test_an_older_journal_is_migrated_and_resumes(rec: FakePostHog, tmp_path: Path,
                                                        version: int) -> None:
    """A journal written before in_flight existed (format 3) or before projects were recorded
    (format 4), killed with a call out: the chunk still 'sent' counts one lost answer, the
    journal takes the project this run names, and the job resumes to the end."""
    rec.seed_persons(4)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 5)])
    await killed_at(rec, source, 1)
    journal = Path(f"{source}.journal.sqlite")
    downgrade(journal, version)
    notes: list[str] = []
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, chunk_size=2, concurrency=1,
                                   on_notice=notes.append).run()
    assert report.ok and report.totals["deleted"] == 4 and report.totals["lost_answers"] == 1
    assert [p["id"] for p in report.projects] == [1] and report.selection["ids"] == [1]
    assert any("did not record its project" in note for note in notes)
    holder = Journal(journal)
    try:
        assert holder.get_meta("schema_version") == SCHEMA_VERSION
        assert {row[0] for row in holder.connection.execute("SELECT project FROM ids")} == {1}
    finally:
        holder.close()


@pytest.mark.parametrize("version", [2, 99])
def test_a_journal_of_another_format_is_refused_and_left_alone(tmp_path: Path, version: int) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    db.commit()
    db.close()
    with pytest.raises(JournalError, match=f"journal format {version}"):
        Journal(path)
    with pytest.raises(JournalError, match=f"journal format {version}"):  # the lock was released
        Journal(path)


# -- 5. a person is deleted or queued, never both -------------------------------------------------

async def test_a_person_queued_by_one_call_and_deleted_by_a_lost_one_counts_once(
        tmp_path: Path) -> None:
    """Alice's two ids are in two chunks sent at once: one call's answer is lost and its recheck
    finds her gone (the queue ran); the other answered "queued". One person, deleted."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None, queue_person_deletions=True,
                           queued_deletion_delay=0.1) as server:
        server.add_person(["alice-web", "alice-app"])
        server.fail_next(None, lose_answer=True, path_contains="bulk_delete")
        source = write_ids(tmp_path / "erase.txt", ["alice-web", "alice-app"])
        async with server.client(rate_limits=None) as ph:
            report = await DeletionJob(ph, distinct_ids=source, chunk_size=1, concurrency=2).run()
        await server.wait_for_deletions()
    t = report.totals
    assert sorted(o for o, _ in per_id(report).values()) == ["deleted", "queued"]
    assert (t["persons_found"], t["persons_deleted"], t["persons_queued_for_deletion"]) == (1, 1, 0)
    assert report.ok


async def test_without_lookups_queued_sums_that_may_count_a_person_twice_are_not_exact(
        tmp_path: Path) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, queue_person_deletions=True,
                           queued_deletion_delay=5.0) as server:
        server.add_person(["alice-web", "alice-app"])
        source = write_ids(tmp_path / "erase.txt", ["alice-web", "alice-app"])
        async with server.client(rate_limits=None) as ph:
            report = await DeletionJob(ph, distinct_ids=source, chunk_size=1, concurrency=1,
                                       resolve=False).run()
    assert report.totals["persons_queued_for_deletion"] == 2  # PostHog's sums, said so
    assert not report.exactness["person_totals_exact"]
    assert any("counted twice" in why for why in report.exactness["why"])


# -- 15. the bulk helper's memory does not grow with ids not found --------------------------------

async def test_bulk_helper_names_a_bounded_sample_of_ids_not_found(rec: FakePostHog) -> None:
    async with rec.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(
            distinct_ids=(f"ghost-{i}" for i in range(5000)), dedupe=False)
    assert report.outcomes["not_found"] == 5000 and len(report.not_found) == 1000 == report.named
    assert all(key.startswith("ghost-") for key in report.not_found) and report.ok


async def test_bulk_helper_counts_a_queued_person_once_or_says_it_cannot() -> None:
    """Alice's deletion is queued by the first call; the second call, by her other id, finds
    her again. With lookups she is one person; without, the sums are PostHog's, said inexact."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None, queue_person_deletions=True,
                           queued_deletion_delay=5.0) as server:
        server.add_person(["alice-web", "alice-app"])
        async with server.client(rate_limits=None) as ph:
            resolved = await ph.persons.bulk_delete_all(
                distinct_ids=["alice-web", "alice-app"], chunk_size=1, concurrency=1, resolve=True)
            blind = await ph.persons.bulk_delete_all(
                distinct_ids=["alice-web", "alice-app"], chunk_size=1, concurrency=1)
    assert (resolved.persons_found, resolved.persons_queued_for_deletion) == (1, 1)
    assert resolved.exact and resolved.outcomes["queued"] == 2
    assert blind.persons_queued_for_deletion == 2 and not blind.exact


# -- found by the state machine ---------------------------------------------------------------------

async def test_a_chunk_that_repeats_an_id_accounts_for_every_copy(rec: FakePostHog) -> None:
    """dedupe=False with an id twice in one chunk: both copies are accounted for (the lookup's
    outcomes were keyed by id, so one copy vanished from the counts)."""
    rec.add_person(["alice"])
    async with rec.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(distinct_ids=["alice", "alice", "ghost"],
                                                  dedupe=False, resolve=True)
    assert report.outcomes == {"deleted": 2, "not_found": 1} and report.not_found == ["ghost"]
    assert report.persons_deleted == 1 and report.exact


async def test_unresolved_ids_of_kept_persons_are_not_called_gone(rec: FakePostHog,
                                                                   tmp_path: Path) -> None:
    rec.add_person(["alice"])
    source = write_ids(tmp_path / "erase.txt", ["alice", "ghost"])
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, resolve=False, keep_person=True,
                                   delete_events=True).run()
    assert report.totals["unresolved"] == 2 and len(rec.project().persons) == 1
    why = " ".join(report.exactness["why"])
    assert "gone from PostHog" not in why and "a person this job kept, or nobody" in why
