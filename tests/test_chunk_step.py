"""The one per-chunk deletion step, with two plain callables and no client: every id settled
exactly, whatever happens to the answers (posthog-api-notes.md, bulk_delete)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from posthog_async import (
    APIConnectionError,
    AuthenticationError,
    BulkDeleteResult,
    InternalServerError,
    Person,
    RateLimitError,
)
from posthog_async._chunk_result import ChunkState
from posthog_async._chunk_step import ChunkAbandoned, ChunkIncomplete, ChunkStep, is_fatal
from posthog_async._exceptions import make_status_error
from posthog_async._models import DeletionError


class Store:
    """Persons by distinct id, and a delete that can lose its answer after doing the work."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = dict(owners)  # distinct id -> person uuid
        self.lose_next = 0
        self.fail_next: list[Exception] = []
        self.queue = False
        self.errors: dict[str, str] = {}  # person uuid -> step it fails at
        self.calls: list[list[str]] = []

    async def lookup(self, ids: list[str]) -> dict[str, Person]:
        return {i: Person(uuid=self.owners[i]) for i in ids if i in self.owners}

    async def delete(self, ids: list[str]) -> BulkDeleteResult:
        self.calls.append(list(ids))
        if self.fail_next:
            raise self.fail_next.pop(0)
        persons = {self.owners[i] for i in ids if i in self.owners}
        failed = {p for p in persons if p in self.errors}
        if not self.queue:
            for key in [k for k, p in self.owners.items() if p in persons - failed]:
                del self.owners[key]
        if self.lose_next:
            self.lose_next -= 1
            raise APIConnectionError("dropped after processing", method="POST", path="/x/")
        return BulkDeleteResult(
            persons_found=len(persons), persons_deleted=0 if self.queue else len(persons - failed),
            persons_queued_for_deletion=len(persons) if self.queue else 0,
            events_queued_for_deletion=False, recordings_queued_for_deletion=False,
            deletion_errors=[DeletionError(person_uuid=p, step=self.errors[p]) for p in failed])


def step(store: Store, *, resolve: bool, **kwargs: Any) -> ChunkStep:
    return ChunkStep(delete=store.delete, lookup=store.lookup, lookup_size=2, resolve=resolve,
                     **kwargs)


IDS = ["a", "b", "c", "d", "e"]
OWNERS = {"a": "P1", "b": "P2", "c": "P2", "x": "P9"}  # b and c are one person; d, e unknown


def outcomes(result: Any) -> dict[str, str]:
    return {k: v[0] for k, v in result.outcomes.items()}


async def test_resolved_outcomes_are_exact() -> None:
    store = Store(OWNERS)
    result = await step(store, resolve=True).run(ChunkState(IDS))
    assert outcomes(result) == {"a": "deleted", "b": "deleted", "c": "deleted",
                                "d": "not_found", "e": "not_found"}
    assert (result.persons_found, result.persons_deleted, result.exact) == (2, 2, True)


@pytest.mark.parametrize("resolve", [True, False])
async def test_a_lost_answer_is_looked_up_before_the_resend(resolve: bool) -> None:
    """The first call deleted P1 and P2 but its answer was lost: a blind re-send would find
    nobody and call them not found."""
    store = Store(OWNERS)
    store.lose_next = 1
    result = await step(store, resolve=resolve, patience=5).run(ChunkState(IDS))
    assert result.lost_answers == 1
    if resolve:
        assert outcomes(result) == {"a": "deleted", "b": "deleted", "c": "deleted",
                                    "d": "not_found", "e": "not_found"}
        assert (result.persons_found, result.persons_deleted, result.exact) == (2, 2, True)
        assert store.calls[1] == ["d", "e"]  # only what was not settled is sent again
    else:
        # without a lookup first, gone ids cannot be told from never-there ones: said so
        assert set(outcomes(result).values()) == {"unresolved"} and not result.exact
        assert len(store.calls) == 1  # nobody left to delete: nothing re-sent


async def test_a_server_error_after_processing_is_settled_too() -> None:
    store = Store(OWNERS)
    store.fail_next = [make_status_error(status_code=502, method="POST", path="/x/",
                                         raw_body=b"", headers={})]
    result = await step(store, resolve=True, patience=5).run(ChunkState(IDS))
    assert outcomes(result)["a"] == "deleted" and result.lost_answers == 1


async def test_resume_after_a_crash_uses_the_journaled_lookup() -> None:
    """A chunk found 'sent' on resume: the lookup made before the crash says who existed."""
    store = Store({"b": "P2", "c": "P2"})  # P1 ("a") was deleted by the call the crash lost
    state = ChunkState(IDS, found={"a": "P1", "b": "P2", "c": "P2"}, answer_lost=True)
    result = await step(store, resolve=True).run(state)
    assert outcomes(result) == {"a": "deleted", "b": "deleted", "c": "deleted",
                                "d": "not_found", "e": "not_found"}
    assert result.persons_found == 2 and result.persons_deleted == 2


async def test_without_lookups_all_or_nothing_chunks_are_still_exact() -> None:
    store = Store({"a": "P1", "b": "P2"})
    result = await step(store, resolve=False).run(ChunkState(["a", "b"]))
    assert outcomes(result) == {"a": "deleted", "b": "deleted"} and result.exact
    result = await step(store, resolve=False).run(ChunkState(["y", "z"]))
    assert outcomes(result) == {"y": "not_found", "z": "not_found"}
    store = Store({"a": "P1"})
    result = await step(store, resolve=False).run(ChunkState(["a", "b"]))
    assert set(outcomes(result).values()) == {"unresolved"}
    assert result.persons_found == 1 and result.exact  # the count is PostHog's


async def test_deletion_errors_name_the_failed_ids() -> None:
    store = Store(OWNERS)
    store.errors = {"P2": "delete_postgres"}
    result = await step(store, resolve=False).run(ChunkState(IDS))
    got = outcomes(result)
    assert got["b"] == got["c"] == "failed" and "delete_postgres" in result.outcomes["b"][1]
    assert result.deletion_errors[0].step == "delete_postgres"
    # the lookup made after the send only names the failures: "a" was deleted, not "not found"
    assert got["a"] == got["d"] == got["e"] == "unresolved"
    store = Store({"a": "P1", "b": "P2"})
    store.errors = {"P2": "tombstone_clickhouse"}
    result = await step(store, resolve=False).run(ChunkState(["a", "b"]))
    assert outcomes(result) == {"a": "deleted", "b": "failed"}


async def test_queued_deletions_are_reported_as_queued() -> None:
    store = Store(OWNERS)
    store.queue = True
    result = await step(store, resolve=True).run(ChunkState(IDS))
    assert outcomes(result)["a"] == "queued" and result.persons_queued == 2


async def test_keep_person_outcome_is_kept() -> None:
    store = Store(OWNERS)
    store.queue = True  # nothing is deleted
    result = await step(store, resolve=True, keep_person=True).run(ChunkState(["a", "d"]))
    assert outcomes(result) == {"a": "kept", "d": "not_found"}


async def test_an_answer_without_counts() -> None:
    """The oldest PostHog answers 202 with no body: only a lookup can say what happened."""
    store = Store(OWNERS)

    async def empty_202(ids: list[str]) -> BulkDeleteResult:
        await store.delete(ids)
        return BulkDeleteResult()

    s = ChunkStep(delete=empty_202, lookup=store.lookup, lookup_size=2, resolve=False)
    result = await s.run(ChunkState(["a", "d"]))
    assert set(outcomes(result).values()) == {"unresolved"} and result.persons_found is None
    store = Store(OWNERS)
    s = ChunkStep(delete=empty_202, lookup=store.lookup, lookup_size=2, resolve=True)
    assert outcomes(await s.run(ChunkState(["a", "d"]))) == {"a": "deleted", "d": "not_found"}


async def test_a_long_retry_after_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("posthog_async._chunk_step.anyio.sleep", fake_sleep)
    store = Store(OWNERS)
    store.fail_next = [make_status_error(status_code=429, method="POST", path="/x/", raw_body=b"",
                                         headers={}, retry_after=1800.0)]
    waits: list[float] = []
    result = await step(store, resolve=False, on_wait=lambda s, e: waits.append(s)).run(
        ChunkState(["a"]))
    assert waits == [1800.0] and slept == [1800.0] and outcomes(result) == {"a": "deleted"}


async def test_what_will_not_heal_is_raised_at_once() -> None:
    store = Store(OWNERS)
    error = make_status_error(status_code=401, method="POST", path="/x/", raw_body=b"", headers={})
    store.fail_next = [error]
    with pytest.raises(AuthenticationError):
        await step(store, resolve=False).run(ChunkState(["a"]))
    assert is_fatal(error)
    refused = APIConnectionError("refused", method="POST", path="/x/", maybe_processed=False)
    assert is_fatal(refused) and not is_fatal(APIConnectionError("dropped", method="POST", path="/x/"))
    assert not is_fatal(InternalServerError("x", method="POST", path="/x/", status_code=500))
    assert not is_fatal(RateLimitError("x", method="POST", path="/x/", status_code=429))


async def test_patience_bounds_retrying() -> None:
    store = Store(OWNERS)
    store.fail_next = [InternalServerError("boom", method="POST", path="/x/", status_code=500)] * 50
    with pytest.raises(InternalServerError):
        await step(store, resolve=False, patience=0.0).run(ChunkState(["a"]))
    assert len(store.calls) == 1


async def test_a_dry_run_only_looks_up() -> None:
    store = Store(OWNERS)
    s = ChunkStep(delete=None, lookup=store.lookup, lookup_size=2, resolve=True)
    result = await s.run(ChunkState(IDS))
    assert outcomes(result) == {"a": "found", "b": "found", "c": "found", "d": "not_found",
                                "e": "not_found"}
    assert store.calls == [] and result.persons_found == 2


async def test_giving_up_keeps_what_was_settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lost call deleted P1 and P2; the re-send then keeps failing until patience runs out:
    a1..c are reported deleted (the recheck proved it), only what is still there failed."""
    monkeypatch.setattr("posthog_async._chunk_step._backoff", lambda attempt: 0.01)
    store = Store(OWNERS)
    store.lose_next = 1
    calls = 0

    async def delete(ids: list[str]) -> BulkDeleteResult:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise InternalServerError("boom", method="POST", path="/x/", status_code=500)
        return await store.delete(ids)

    s = ChunkStep(delete=delete, lookup=store.lookup, lookup_size=2, resolve=True, patience=0.1)
    with pytest.raises(ChunkIncomplete) as info:
        await s.run(ChunkState(IDS))
    partial = info.value.partial
    assert outcomes(partial) == {"a": "deleted", "b": "deleted", "c": "deleted"}  # d, e: failed
    assert partial.persons_deleted == 2 and isinstance(info.value.cause, InternalServerError)
    assert not is_fatal(info.value) and calls > 2


async def test_a_processed_send_is_marked_before_anything_else_can_fail() -> None:
    store = Store({"a": "P1", "b": "P2"})
    store.errors = {"P2": "delete_postgres"}
    calls = 0

    async def lookup(ids: list[str]) -> dict[str, Person]:
        nonlocal calls
        calls += 1
        raise APIConnectionError("refused", method="POST", path="/x/", maybe_processed=False)

    state = ChunkState(["a", "b"])
    s = ChunkStep(delete=store.delete, lookup=lookup, lookup_size=2, resolve=False)
    with pytest.raises(APIConnectionError):
        await s.run(state)  # the delete went through; naming its failures did not
    assert state.answer_lost and calls == 1  # so a resume looks the chunk up before re-sending


async def test_a_stale_lookup_is_not_passed_off_as_exact() -> None:
    """The lookup found one person; by the send a second id had a person again."""
    store = Store({"a": "P1", "b": "P2"})
    state = ChunkState(["a", "b"], found={"a": "P1"})  # journaled before a long pause
    result = await step(store, resolve=True).run(state)
    assert outcomes(result) == {"a": "deleted", "b": "unresolved"} and not result.exact
    assert "data changed" in (result.outcomes["b"][1] or "")


async def test_a_long_wait_refreshes_the_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr("posthog_async._chunk_step.anyio.sleep", no_sleep)
    store = Store({"a": "P1"})
    store.fail_next = [make_status_error(status_code=429, method="POST", path="/x/", raw_body=b"",
                                         headers={}, retry_after=3600.0)]
    state = ChunkState(["a", "b"])
    original = store.delete

    async def delete_after_b_appears(ids: list[str]) -> BulkDeleteResult:
        store.owners["b"] = "P2"  # created while we waited an hour
        return await original(ids)

    s = ChunkStep(delete=delete_after_b_appears, lookup=store.lookup, lookup_size=2, resolve=True)
    result = await s.run(state)
    assert outcomes(result) == {"a": "deleted", "b": "deleted"} and result.exact


async def test_patience_does_not_count_waits_for_the_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr("posthog_async._chunk_step.anyio.sleep", fake_sleep)
    monkeypatch.setattr("posthog_async._chunk_step.anyio.current_time", lambda: clock[0])
    store = Store(OWNERS)
    store.fail_next = [
        InternalServerError("boom", method="POST", path="/x/", status_code=500),
        make_status_error(status_code=429, method="POST", path="/x/", raw_body=b"", headers={},
                          retry_after=1000.0),
    ]
    result = await step(store, resolve=False, patience=10.0).run(ChunkState(["a"]))
    assert outcomes(result) == {"a": "deleted"}  # the hour-long wait did not use up patience


async def test_the_lookup_names_every_id_of_the_persons_it_found() -> None:
    store = Store({"a": "P1", "anon-a": "P1"})

    async def lookup(ids: list[str]) -> dict[str, Person]:
        return {i: Person(uuid=store.owners[i], distinct_ids=["a", "anon-a"])
                for i in ids if i in store.owners}

    s = ChunkStep(delete=store.delete, lookup=lookup, lookup_size=2, resolve=True)
    result = await s.run(ChunkState(["a"]))
    assert result.aliases == {"a": "P1", "anon-a": "P1"} and result.persons == {"P1"}


async def test_a_person_deleted_by_an_earlier_chunk_does_not_make_counts_stale() -> None:
    """Chunk 2 looked "a2" up as P1 before chunk 1 deleted P1 through "a1": PostHog then counts
    nobody for it. That is explained by chunk 1, not by data changing under us."""
    store = Store({"a1": "P1", "a2": "P1", "b": "P2"})
    s = step(store, resolve=True)
    second = ChunkState(["a2", "b", "z"])
    await s._look_up(second, None)  # looked up before chunk 1 ran
    first = await s.run(ChunkState(["a1"]))
    assert first.persons == {"P1"} and s.deleted == {"P1"}
    result = await s.run(second)
    assert result.exact and outcomes(result)["z"] == "not_found"
    assert outcomes(result)["a2"] == "deleted" and result.persons_found == 1


async def test_a_stop_abandons_a_chunk_waiting_out_a_rate_limit() -> None:
    """Ctrl-C during an hour-long Retry-After must not wait the hour: the chunk is abandoned
    unsent (and says so), to be sent by the resumed run."""
    store = Store(OWNERS)
    stop = False
    store.fail_next = [make_status_error(status_code=429, method="POST", path="/x/",
                                         raw_body=b"", headers={}, retry_after=3600.0)]

    def on_wait(seconds: float, error: RateLimitError) -> None:
        nonlocal stop
        stop = True

    state = ChunkState(IDS)
    s = step(store, resolve=True, on_wait=on_wait, should_stop=lambda: stop)
    with anyio.fail_after(5):
        with pytest.raises(ChunkAbandoned):
            await s.run(state)
    assert len(store.calls) == 1 and not state.answer_lost  # the 429 was not processed


async def test_giving_up_after_the_lost_call_did_everything_is_success() -> None:
    """Patience ran out, but the last look finds every person gone: the chunk is done."""
    store = Store(OWNERS)
    store.lose_next = 1
    s = ChunkStep(delete=store.delete, lookup=store.lookup, lookup_size=2, resolve=True,
                  patience=0.0)
    result = await s.run(ChunkState(["a", "b", "c"]))
    assert outcomes(result) == {"a": "deleted", "b": "deleted", "c": "deleted"}
    assert result.persons_deleted == 2 and result.lost_answers == 1
