"""The proof's test world: persons (some with many ids), bystanders, an erase list with ghosts,
duplicates and bad lines, in one to three projects, and the checks that hold a deletion's report
(and its verification) to the fake's truth. Shared by the job's state machine and the bulk
helper's property test.

Each project holds its own copy of the world's persons (the same distinct ids, other uuids), less
a few that are absent from it: one distinct id names a different person in each project, or
nobody. A listed UUID names a person in one project only."""

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
    persons: list[list[str]]  # each person's distinct ids; index i has uuid uuid_of(i, project)
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
    version: str = "P-D"  # bulk_delete's answer shape (P-A: a bare 202, and no keep_person)
    projects: int = 1
    absent: frozenset[tuple[int, int]] = frozenset()  # (project, person) not in that project

    @property
    def keeps(self) -> bool:
        """Persons are kept: P-A has no ``keep_person`` and deletes them all the same."""
        return self.keep_person and self.version != "P-A"

    @property
    def project_ids(self) -> list[int]:
        return list(range(1, self.projects + 1))

    def options(self) -> dict[str, Any]:
        return {"resolve": self.resolve, "delete_events": self.delete_events,
                "delete_recordings": self.delete_recordings, "keep_person": self.keep_person,
                "chunk_size": self.chunk_size, "concurrency": self.concurrency}


def uuid_of(i: int, project: int = 1) -> str:
    return f"{project:08d}-0000-4000-8000-{i + 1:012d}"


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
    listed = draw(st.permutations(listed))
    if not any(line.strip() for line in listed):  # an input of blank lines only is refused
        listed.append("ghost-x")                  # before anything is sent (test_cli_inputs)
    projects = draw(st.sampled_from([1, 1, 2, 3]))
    absent = frozenset(draw(st.sets(st.tuples(st.integers(1, projects),
                                              st.integers(0, len(persons) - 1)), max_size=2))
                       if projects > 1 else set())
    uuids: list[str] = []
    if draw(st.booleans()):
        owners = [i for i, ids in enumerate(persons) if not ids[0].startswith("bystander")]
        spelled = st.tuples(st.sampled_from([uuid_of(i, p) for i in owners
                                             for p in range(1, projects + 1)] + GHOST_UUIDS),
                            st.booleans()).map(lambda pair: pair[0].upper() if pair[1] else pair[0])
        uuids = draw(st.lists(spelled, min_size=1, max_size=4))
    version = draw(st.sampled_from(["P-D", "P-D", "P-C", "P-B", "P-A"]))
    queued = version in ("P-C", "P-D") and draw(st.booleans())
    keep = draw(st.integers(0, 6)) == 0
    # P-A answers 500 when it reaches a person it cannot delete, again on every re-send: the
    # chunk fails with that 500 (tests/test_job_answers.py), not with a per-person reason
    failing = set() if keep or version == "P-A" else draw(
        st.sets(st.integers(0, len(persons) - 1), max_size=1))
    events = draw(st.booleans()) or keep  # keeping the person and deleting nothing is refused
    # P-A has no delete_recordings: a call whose answer was lost is credited with what it asked
    # for (the client cannot tell P-A from the others then), a limit the docs state
    recordings = draw(st.booleans()) and version != "P-A"
    return World(persons, listed, uuids, failing, queued, draw(st.booleans()), events,
                 recordings, keep, draw(st.integers(1, 4)), draw(st.integers(1, 3)),
                 version, projects, absent)


def populate(server: FakePostHog, world: World) -> None:
    """The world's persons in each project of the fake (uuid ``uuid_of(i, project)``), failing
    where the world says; the server was made with ``project_ids=world.project_ids``."""
    for project in world.project_ids:
        for i, ids in enumerate(world.persons):
            if (project, i) in world.absent:
                continue
            server.add_person(ids, uuid=uuid_of(i, project), project_id=project)
            if i in world.failing:
                server.fail_deletion_of(uuid_of(i, project))  # never reported when queued


class Truth:
    """What the fake held when the job began: who each id named in each project, and who is
    outside the list. Persons are uuids (unique across projects: ``uuid_of(i, project)``)."""

    def __init__(self, world: World) -> None:
        self.world = world
        here = [(p, i) for p in world.project_ids for i in range(len(world.persons))
                if (p, i) not in world.absent]
        self.owner = {(p, key): uuid_of(i, p) for p, i in here for key in world.persons[i]}
        self.project_of = {uuid_of(i, p): p for p, i in here}
        self.all = set(self.project_of)
        self.wide = {uuid_of(i, p) for p, i in here if len(world.persons[i]) > 10}
        self.failing = {uuid_of(i, p) for p, i in here if i in world.failing}
        listed = [k.strip() for k in world.listed]
        self.listed = {self.named("distinct_ids", k, p) for k in listed if k
                       for p in world.project_ids} | {
            self.named("ids", k, p) for k in world.listed_uuids for p in world.project_ids}
        self.listed.discard(None)
        self.bystanders = self.all - self.listed  # type: ignore[operator]

    def named(self, kind: str, key: str, project: int = 1) -> str | None:
        if kind == "ids":
            canonical = key.lower()
            return canonical if self.project_of.get(canonical) == project else None
        return self.owner.get((project, key))

    def alive(self, server: FakePostHog) -> set[str]:
        return {u for p in self.world.project_ids for u in server.project(p).persons}


# -- checks ----------------------------------------------------------------------------------------

def check_untouched(server: FakePostHog, truth: Truth) -> None:
    for person in truth.bystanders:
        project = server.project(truth.project_of[person])
        events = {row["person_uuid"] for row in project.deletion_status}
        assert person in project.persons, f"a person outside the list was deleted: {person}"
        assert person not in events and person not in project.recording_deletions


def check_journal_claims(journal: Path, server: FakePostHog, truth: Truth) -> None:
    """What the journal says so far (even after a kill) is never a lie about a living person."""
    db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT project, kind, id, outcome, reason FROM ids").fetchall()
        checks = db.execute("SELECT project, kind, target, person_state FROM checks").fetchall()
    finally:
        db.close()
    alive = truth.alive(server)
    for project, kind, key, outcome, reason in rows:
        person = truth.named(kind, key, project)
        if outcome == "deleted":
            assert person is not None and person not in alive, (key, outcome, reason)
        elif outcome in ("queued", "kept"):
            assert person is not None, (key, outcome)
        elif outcome == "failed" and reason.startswith(POSTHOG_FAILED):
            assert person is not None and person in alive, (key, outcome)
    for project, kind, target, state in checks:  # a verification never calls the living gone
        person = target if kind == "person" else truth.named(kind, target, project)
        if state == "gone":
            assert person is None or person not in alive, (project, kind, target)


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
    alive = truth.alive(server)
    per_id, valid = exact["per_id_outcomes_exact"], exact["person_totals_exact"]
    assert partial or (t["pending"] == 0 and not data["stopped"]), (t, data["stopped"])
    assert t["requested"] == t["unique"] + t["blank"] + t["duplicates"] + t["invalid"], t
    outcome_names = ("deleted", "queued", "kept", "found", "not_found", "unresolved", "failed",
                     "pending")
    assert sum(t[name] for name in outcome_names) == t["ids_in_projects"], t
    assert t["ids_in_projects"] == t["unique"] * world.projects and t["not_covered"] == 0, t
    rows = data["ids"]
    assert sum(r["outcome"] == "invalid" for r in rows) == t["invalid"]
    assert len(rows) == t["ids_in_projects"] + t["invalid"]
    for row in rows:
        kind, key, outcome, reason = row["kind"], row["id"], row["outcome"], row["reason"]
        if outcome == "invalid" or (partial and outcome in ("pending", "failed")
                                    and not str(reason).startswith(POSTHOG_FAILED)):
            continue
        person = truth.named(kind, key, row["project"])
        if person is None:  # an id that never named anybody
            allowed = {"not_found"} | (set() if per_id else {"unresolved"})
        elif world.keeps:
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
            assert (person in alive) == world.keeps, (key, reason)  # deleted (kept), or nobody
    found, deleted, queued = t["persons_found"], t["persons_deleted"], t["persons_queued_for_deletion"]
    assert deleted + queued <= found, t
    assert t["lost_answers"] <= t["delete_calls"] and t["resent_chunks"] <= t["lost_answers"]
    if partial:
        return
    listed = truth.listed
    failing_stay = truth.failing if not world.queued else set()
    for person in listed:
        gone = person not in alive
        assert gone != (world.keeps or person in truth.failing), person
    if valid:
        assert found == len(listed), (t, len(listed), exact["why"])
        removed = set() if world.keeps else listed - failing_stay
        assert deleted + queued == len(removed), (t, exact["why"])
        if not world.queued:
            assert queued == 0
    projects = [server.project(p) for p in world.project_ids]
    events = {row["person_uuid"] for project in projects for row in project.deletion_status}
    recordings = {u for project in projects for u in project.recording_deletions}
    assert events <= listed and recordings <= listed  # type: ignore[operator]
    if world.delete_events:
        assert events == listed
        if valid:
            assert t["events_queued_for_persons"] == len(events), (t, exact["why"])
    else:
        assert not events and t["events_queued_for_persons"] == 0
    if world.delete_recordings and valid:
        assert t["recordings_queued_for_persons"] == len(recordings)




def expected_verdict(data: dict[str, Any], server: FakePostHog, truth: Truth) -> str:
    """What a verification must conclude, from the report and the fake's truth (every event row
    already completed, every queued deletion already run)."""
    world, t = truth.world, data["totals"]
    if t["pending"] or t["failed"] or data["not_covered"] or data["stopped"]:
        return "failed"  # the job itself did not finish
    unverifiable = world.delete_events and any(
        r["outcome"] == "unresolved" or (r["kind"] == "distinct_ids" and not r["person"]
                                         and r["outcome"] in ("deleted", "queued", "kept"))
        for r in data["ids"])
    if unverifiable:
        return "failed"
    if not world.keeps and truth.listed & truth.alive(server):
        return "pending"  # queued deletions PostHog's task gave up on, within the grace period
    return "verified"


def check_verification(data: dict[str, Any], server: FakePostHog, truth: Truth, *,
                       final: bool) -> None:
    """A verification's report against the fake's truth, id by id: nobody called gone is alive,
    nobody called found is gone, no event row is called completed that is not; and (``final``:
    rows completed, deletions run) the verdict is the one the truth calls for."""
    verification = data["verification"]
    assert verification is not None
    alive = truth.alive(server)
    rows = {row["person_uuid"]: row for p in truth.world.project_ids
            for row in server.project(p).deletion_status}
    for row in data["ids"]:
        if row["outcome"] == "invalid":
            continue
        person = truth.named(row["kind"], row["id"], row["project"])
        check, events = row["person_check"], row["events"]
        if check == "gone":
            assert person is None or person not in alive, row
        elif check in ("found_again", "still_queued"):
            assert person is not None and person in alive, row
        if events == "completed":
            assert rows[row["person"] or row["id"].lower()]["status"] == "completed", row
        elif events in ("missing", "missing_after_batch"):
            assert (row["person"] or row["id"].lower()) not in rows, row
        if verification["state"] == "verified" and row["outcome"] in ("deleted", "queued"):
            assert check == "gone" and (events == "completed" or not truth.world.delete_events), row
    if verification["state"] == "verified":
        assert not (truth.listed & alive) or truth.world.keeps
    if final:
        assert verification["state"] == expected_verdict(data, server, truth), (
            verification["state"], verification["problems"], data["totals"])
