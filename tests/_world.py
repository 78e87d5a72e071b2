"""The proof's test world: persons (some with many ids), bystanders, an erase list with ghosts,
duplicates and bad lines, and the checks that hold a deletion's report to the fake's truth. Shared
by the job's state machine and the bulk helper's property test."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from posthog_async._chunk_result import POSTHOG_FAILED
from posthog_async.testing import FakePostHog

BULK = "bulk_delete"

# -- the world: persons, bystanders, and an erase list ---------------------------------------------

@dataclass
class World:
    persons: list[list[str]]  # each person's distinct ids; index i has uuid uuid_of(i)
    listed: list[str]  # the distinct-id input, line by line (bad lines and duplicates included)
    listed_uuids: list[str]  # the UUID input (empty: none given)
    failing: set[int]  # persons whose deletion PostHog fails (synchronous path only)
    queued: bool
    resolve: bool
    delete_events: bool
    delete_recordings: bool
    keep_person: bool
    chunk_size: int
    concurrency: int
    version: str = "P-D"  # bulk_delete's answer shape (P-A: a bare 202)

    def options(self) -> dict[str, Any]:
        return {"resolve": self.resolve, "delete_events": self.delete_events,
                "delete_recordings": self.delete_recordings, "keep_person": self.keep_person,
                "chunk_size": self.chunk_size, "concurrency": self.concurrency}


def uuid_of(i: int) -> str:
    return f"00000000-0000-4000-8000-{i + 1:012d}"


GHOST_UUIDS = [f"ffffffff-0000-4000-8000-{i:012d}" for i in range(3)]
BAD_LINES = ["", "   ", "bad\tid", "a,b"]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    persons = [[f"p{i}-{j}" for j in range(draw(st.integers(1, 3)))]
               for i in range(draw(st.integers(1, 5)))]
    if draw(st.integers(0, 5)) == 0:  # a person with more ids than a lookup shows
        persons.append([f"w{len(persons)}-{j:02d}" for j in range(12)])
    persons += [[f"bystander-{i}"] for i in range(draw(st.integers(0, 2)))]
    named = [key for ids in persons for key in ids if not key.startswith("bystander")]
    listed = draw(st.lists(st.sampled_from(named), max_size=10))  # repeats are duplicates
    listed += [f"ghost-{i}" for i in range(draw(st.integers(0, 3)))]
    listed += draw(st.lists(st.sampled_from(BAD_LINES), max_size=2))
    listed = draw(st.permutations(listed)) or ["ghost-x"]
    uuids: list[str] = []
    if draw(st.booleans()):
        owners = [i for i, ids in enumerate(persons) if not ids[0].startswith("bystander")]
        spelled = st.tuples(st.sampled_from([uuid_of(i) for i in owners] + GHOST_UUIDS),
                            st.booleans()).map(lambda pair: pair[0].upper() if pair[1] else pair[0])
        uuids = draw(st.lists(spelled, min_size=1, max_size=4))
    version = draw(st.sampled_from(["P-D", "P-D", "P-C", "P-B", "P-A"]))
    queued = version in ("P-C", "P-D") and draw(st.booleans())
    keep = draw(st.integers(0, 6)) == 0
    # P-A reports no failures: a person it fails to delete would be a 500, not a silent 202
    failing = set() if keep or version == "P-A" else draw(
        st.sets(st.integers(0, len(persons) - 1), max_size=1))
    events = draw(st.booleans()) or keep  # keeping the person and deleting nothing is refused
    return World(persons, listed, uuids, failing, queued, draw(st.booleans()), events,
                 draw(st.booleans()), keep, draw(st.integers(1, 4)), draw(st.integers(1, 3)),
                 version)


def populate(server: FakePostHog, world: World) -> None:
    """The world's persons in the fake (uuid ``uuid_of(i)``), failing where the world says."""
    for i, ids in enumerate(world.persons):
        server.add_person(ids, uuid=uuid_of(i))
        if i in world.failing:
            server.fail_deletion_of(uuid_of(i))  # never reported on the queued path


class Truth:
    """What the fake held when the job began: who each id named, and who is outside the list."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.owner = {key: uuid_of(i) for i, ids in enumerate(world.persons) for key in ids}
        self.all = {uuid_of(i) for i in range(len(world.persons))}
        self.wide = {uuid_of(i) for i, ids in enumerate(world.persons) if len(ids) > 10}
        self.failing = {uuid_of(i) for i in world.failing}
        listed = [k.strip() for k in world.listed]
        self.listed = {self.named("distinct_ids", k) for k in listed if k} | {
            self.named("ids", k) for k in world.listed_uuids}
        self.listed.discard(None)
        self.bystanders = self.all - self.listed  # type: ignore[operator]

    def named(self, kind: str, key: str) -> str | None:
        if kind == "ids":
            return key if key in self.all else None
        return self.owner.get(key)


# -- checks ----------------------------------------------------------------------------------------

def check_untouched(server: FakePostHog, truth: Truth) -> None:
    project = server.project()
    events = {row["person_uuid"] for row in project.deletion_status}
    for person in truth.bystanders:
        assert person in project.persons, f"a person outside the list was deleted: {person}"
        assert person not in events and person not in project.recording_deletions


def check_journal_claims(journal: Path, server: FakePostHog, truth: Truth) -> None:
    """What the journal says so far (even after a kill) is never a lie about a living person."""
    db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT kind, id, outcome, reason FROM ids").fetchall()
    finally:
        db.close()
    alive = set(server.project().persons)
    for kind, key, outcome, reason in rows:
        person = truth.named(kind, key)
        if outcome == "deleted":
            assert person is not None and person not in alive, (key, outcome, reason)
        elif outcome in ("queued", "kept"):
            assert person is not None, (key, outcome)
        elif outcome == "failed" and reason.startswith(POSTHOG_FAILED):
            assert person is not None and person in alive, (key, outcome)


def check_no_key(key: str, *places: tuple[str, bytes | str]) -> None:
    for where, text in places:
        needle: bytes | str = key.encode() if isinstance(text, bytes) else key
        assert needle not in text, f"the API key leaked into {where}"  # type: ignore[operator]


def journal_bytes(journal: Path) -> Iterator[tuple[str, bytes]]:
    for suffix in ("", "-wal", "-shm", ".lock"):
        path = Path(f"{journal}{suffix}")
        if path.exists():
            yield path.name, path.read_bytes()


def check_report(data: dict[str, Any], server: FakePostHog, truth: Truth, *,
                 partial: bool = False) -> None:
    """A report against the fake's truth, id by id, claim by claim: of a run to the end, or
    (``partial``) of a run that stopped or failed some chunks, whose settled ids must be true."""
    world, t, exact = truth.world, data["totals"], data["exactness"]
    project = server.project()
    alive = set(project.persons)
    per_id, valid = exact["per_id_outcomes_exact"], exact["person_totals_exact"]
    assert partial or (t["pending"] == 0 and not data["stopped"]), (t, data["stopped"])
    assert t["requested"] == t["unique"] + t["blank"] + t["duplicates"] + t["invalid"], t
    outcome_names = ("deleted", "queued", "kept", "found", "not_found", "unresolved", "failed",
                     "pending")
    assert sum(t[name] for name in outcome_names) == t["unique"], t
    rows = data["ids"]
    assert sum(r["outcome"] == "invalid" for r in rows) == t["invalid"]
    assert len(rows) == t["unique"] + t["invalid"]
    for row in rows:
        kind, key, outcome, reason = row["kind"], row["id"], row["outcome"], row["reason"]
        if outcome == "invalid" or (partial and outcome in ("pending", "failed")
                                    and not str(reason).startswith(POSTHOG_FAILED)):
            continue
        person = truth.named(kind, key)
        if person is None:  # an id that never named anybody
            allowed = {"not_found"} | (set() if per_id else {"unresolved"})
        elif world.keep_person:
            allowed = {"kept"} | (set() if per_id else {"unresolved"})
        elif person in truth.failing and not world.queued:
            allowed = {"failed"}
        else:
            allowed = ({"queued", "deleted"} if world.queued else {"deleted"}) | (
                set() if per_id else {"unresolved"})
            if person in truth.wide and not per_id:
                allowed.add("not_found")  # flagged: lookups show only 10 of their ids
        assert outcome in allowed, (kind, key, outcome, reason, sorted(allowed), exact["why"])
        if outcome == "failed":
            assert reason.startswith(POSTHOG_FAILED) and person in alive
        if outcome == "unresolved" and person is not None and not world.queued:
            assert (person in alive) == world.keep_person, (key, reason)  # deleted (kept), or nobody
    found, deleted, queued = t["persons_found"], t["persons_deleted"], t["persons_queued_for_deletion"]
    assert deleted + queued <= found, t
    assert t["lost_answers"] <= t["delete_calls"] and t["resent_chunks"] <= t["lost_answers"]
    if partial:
        return
    listed = truth.listed
    failing_stay = truth.failing if not world.queued else set()
    for person in listed:
        gone = person not in alive
        assert gone != (world.keep_person or person in truth.failing), person
    if valid:
        assert found == len(listed), (t, len(listed), exact["why"])
        removed = set() if world.keep_person else listed - failing_stay
        assert deleted + queued == len(removed), (t, exact["why"])
        if not world.queued:
            assert queued == 0
    events = {row["person_uuid"] for row in project.deletion_status}
    assert events <= listed and project.recording_deletions <= listed  # type: ignore[operator]
    if world.delete_events:
        assert events == listed
        if valid:
            assert t["events_queued_for_persons"] == len(events), (t, exact["why"])
    else:
        assert not events and t["events_queued_for_persons"] == 0
    if world.delete_recordings and valid:
        assert t["recordings_queued_for_persons"] == len(project.recording_deletions)


