"""What a deletion chunk is and becomes: its state before a (re)send, and its settled result.

:class:`ChunkState` is what is known of a chunk before it is sent (the deletion job rebuilds it
from its journal); :class:`ChunkResult` is every id's outcome, kept as groups of ids sharing one
outcome, with PostHog's person counts; :func:`settle_answer` turns PostHog's answer into one.
:class:`RunLedger` is what the chunks of one job know of each other: the persons they deleted,
and which of their calls may have removed a person. The step that looks up, sends and retries
is :mod:`posthog_async._chunk_step`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from . import _constants as C
from ._models import BulkDeleteResult, DeletionError

__all__ = ["Outcome", "Kind", "Group", "ChunkState", "ChunkResult", "RunLedger", "settle_answer",
           "settle_uncounted", "wide_persons"]

Outcome = Literal["deleted", "queued", "kept", "found", "not_found", "failed", "unresolved"]
"""What happened to one id (``found``: a dry run's lookup matched it)."""

#: What a chunk's ids are: PostHog distinct ids, or person UUIDs.
Kind = Literal["distinct_ids", "ids"]

#: How the reason of an id whose person PostHog could not delete begins (its person was found).
POSTHOG_FAILED = "PostHog could not delete person"

#: The reason of an id a call without lookups found nobody for, when another call of the run
#: may already have deleted its person (through another of its ids): "not found" would be a guess.
MAYBE_DELETED = ("not found when sent, but this job had already deleted persons through other "
                 "ids, and one of them may have been this id's (look ups first, --resolve, "
                 "make this exact)")
#: The reason of an id a lookup found nobody for, when a call of the job sent before that lookup
#: ended deleted (or queued) a person with 10 or more distinct ids: PostHog's lookups show 10 of
#: a person's ids, so this id may have been one of the others, deleted with them.
MAYBE_WIDE = ("not found when looked up, but this job had already deleted a person with 10 or "
              "more distinct ids, of whom PostHog's lookups show only 10: this id may have been "
              "one of the others, deleted with them")
#: How the reasons of ids settled by a lookup after a call PostHog accepted without counts begin.
UNCOUNTED = "PostHog accepted the call without saying whom it found"


@dataclass
class ChunkState:
    """What is known of a chunk before it is (re)sent; the job rebuilds it from its journal.

    ``found`` maps each id a lookup matched to its person's uuid (``None``: not looked up);
    ``answer_lost`` says an earlier send may have been processed without our hearing of it.
    """

    ids: list[str]
    found: dict[str, str] | None = None
    answer_lost: bool = False
    #: Every distinct id the lookup saw on the persons it found (a person's other ids: an id
    #: of a person deleted through another of its ids is not "not found").
    aliases: dict[str, str] = field(default_factory=dict)
    #: Persons this chunk itself already settled as deleted (a partial run before a retry).
    own: set[str] = field(default_factory=set)
    #: The calls of the job sent (:attr:`RunLedger.next_seq`) when its last lookup ended: a call
    #: numbered from it on was sent after PostHog answered that lookup.
    bound: int | None = None


#: Ids that share one outcome and reason.
Group = tuple[list[str], Outcome, "str | None"]


@dataclass
class ChunkResult:
    """The settled chunk: its ids' outcomes, and the person counts PostHog gave (or we derived).

    Outcomes are kept as groups of ids sharing one outcome and reason: a chunk settled by
    PostHog's counts alone is one group, so a thousand ids cost no per-id work.
    """

    groups: list[Group] = field(default_factory=list)
    persons_found: int | None = 0
    persons_deleted: int = 0
    persons_queued: int = 0
    events_queued: bool = False
    recordings_queued: bool = False
    deletion_errors: list[DeletionError] = field(default_factory=list)
    delete_calls: int = 0
    lost_answers: int = 0
    #: True when every outcome and count came from PostHog or a lookup, not from inference.
    exact: bool = True
    #: The uuids of the persons this chunk deleted (or queued, or kept), when a lookup named them.
    persons: set[str] = field(default_factory=set)
    #: The lookup's distinct ids of the persons it found (see :attr:`ChunkState.aliases`).
    aliases: dict[str, str] = field(default_factory=dict)
    #: The calls sent (:attr:`RunLedger.next_seq`) when its "not found" ids were settled (with
    #: lookups: when the lookup that found nobody for them ended); they are proven absent only if
    #: none of those calls may have removed their person (:meth:`RunLedger.proves_absent`).
    #: ``None``: no "not found" id to prove.
    bound: int | None = None

    def add(self, ids: list[str], outcome: Outcome, reason: str | None = None) -> None:
        if ids:
            self.groups.append((ids, outcome, reason))

    def add_each(self, outcomes: dict[str, tuple[Outcome, str | None]]) -> None:
        """Per-id outcomes, grouped."""
        grouped: dict[tuple[Outcome, str | None], list[str]] = {}
        for key, pair in outcomes.items():
            grouped.setdefault(pair, []).append(key)
        for (outcome, reason), ids in grouped.items():
            self.add(ids, outcome, reason)

    def counts(self) -> Counter[str]:
        """Ids per outcome."""
        tally: Counter[str] = Counter()
        for ids, outcome, _ in self.groups:
            tally[outcome] += len(ids)
        return tally

    def ids_with(self, outcome: Outcome) -> list[str]:
        found: list[str] = []
        for ids, o, _ in self.groups:
            if o == outcome:
                found.extend(ids)  # a group at a time, not an id at a time
        return found

    def repeat(self, ids: list[str]) -> None:
        """``ids`` held some ids more than once and each was settled once: give every copy its
        id's outcome (``bulk_delete_all(dedupe=False)`` sends an id once a chunk)."""
        copies = Counter(ids)
        copies.subtract(dict.fromkeys(copies, 1))
        for group, outcome, reason in list(self.groups):
            self.add([key for key in group for _ in range(copies[key])], outcome, reason)

    @property
    def outcomes(self) -> dict[str, tuple[Outcome, str | None]]:
        """``{id: (outcome, reason)}``, built on demand."""
        return {key: (outcome, reason) for ids, outcome, reason in self.groups for key in ids}


@dataclass
class RunLedger:
    """What the chunks of a job (both kinds of ids) know of each other; their steps share it.

    ``deleted`` holds the persons the job's chunks deleted or queued, by uuid, when lookups named
    them (a job seeds it from its journal).

    The rest makes "not found" honest without lookups. A call that found nobody (or a lookup
    that found an id nowhere) proves the id named nobody *then*; it may still have been an id
    of a person another call of the job had removed through another id. Every ``bulk_delete``
    call takes a sequence number as it is sent (:meth:`take`); ``removals`` keeps, per kind of
    ids, the lowest number of a call that may have removed a person (answered with deletions
    or queued ones, answered without counts, or lost). A "not found" settled when ``bound``
    calls had been sent is proven (:meth:`proves_absent`) once every call numbered below
    ``bound`` is known, if none of them removed a person who could have owned the id.
    """

    deleted: set[str] = field(default_factory=set)
    next_seq: int = 0
    removals: dict[str, int] = field(default_factory=dict)
    #: The lowest number of a call that deleted (or queued) a person whose lookup showed 10
    #: distinct ids, all a lookup shows: they may have more, which no lookup names.
    wide_removal: int | None = None
    #: The same id may be sent twice (``bulk_delete_all(dedupe=False)``): even a UUID may have
    #: been deleted by an earlier call.
    repeats: bool = False

    def take(self) -> int:
        """The sequence number of a call about to be sent."""
        self.next_seq += 1
        return self.next_seq - 1

    def removed(self, kind: Kind, seq: int) -> None:
        """Call ``seq``, of ``kind``, may have removed a person."""
        self.removals[kind] = min(self.removals.get(kind, seq), seq)

    def removed_wide(self, seq: int) -> None:
        """Call ``seq`` deleted (or queued) a person with 10 or more distinct ids."""
        self.wide_removal = seq if self.wide_removal is None else min(self.wide_removal, seq)

    def proves_absent(self, kind: Kind, bound: int, *, looked_up: bool = False) -> bool:
        """Does "found nobody", settled once calls ``0 .. bound - 1`` were sent, prove that an id
        of ``kind`` named nobody this job deleted? (Ask once all those calls are known.)

        Without lookups (the call found nobody): a distinct id can name any person, so no call
        below ``bound`` may have removed one; a UUID names one person, whom only a distinct-id
        call (or, with repeats, the same UUID sent before) can have removed.

        With lookups (``looked_up``: a lookup that ended when ``bound`` calls were sent found
        nobody), a person the job deleted earlier is known by the distinct ids its lookup showed
        (the job credits those), which are all of them unless it showed 10: then no call below
        ``bound`` may have deleted such a person. A UUID lookup finds its person, whatever ids.
        """
        if looked_up:
            return kind == "ids" or self.wide_removal is None or self.wide_removal >= bound
        rivals: tuple[str, ...] = ("distinct_ids", "ids") if kind == "distinct_ids" or \
            self.repeats else ("distinct_ids",)
        return all(self.removals.get(k, bound) >= bound for k in rivals)


def settle_answer(ids: list[str], found: dict[str, str] | None, answer: BulkDeleteResult,
                  after: dict[str, str] | None = None, *, success: Outcome,
                  deleted: set[str]) -> ChunkResult:
    """Each id's outcome after ``bulk_delete`` answered: from the lookup before the send (exact),
    else from PostHog's counts (with ``after``, a lookup after the send that names the persons
    PostHog failed on). ``success`` is what a person PostHog found and did not fail on became;
    ``deleted`` the persons other chunks of the job deleted (PostHog no longer counts them)."""
    errors = {e.person_uuid: e.step for e in answer.deletion_errors}
    result = ChunkResult(
        persons_found=answer.persons_found, persons_deleted=answer.persons_deleted or 0,
        persons_queued=answer.persons_queued_for_deletion or 0,
        events_queued=bool(answer.events_queued_for_deletion),
        recordings_queued=bool(answer.recordings_queued_for_deletion),
        deletion_errors=list(answer.deletion_errors))

    def failure(person: str) -> tuple[Outcome, str | None]:
        step = errors[person] or "unknown"
        return "failed", f"{POSTHOG_FAILED} {person} (step: {step})"

    if found is not None:
        looked_up = {found[key] for key in ids if key in found}
        gone = len(looked_up & deleted)  # deleted meanwhile by another chunk of ours
        stale = answer.persons_found is not None and answer.persons_found not in (
            len(looked_up), len(looked_up) - gone)
        missing: tuple[Outcome, str | None] = (
            ("unresolved", f"PostHog found {answer.persons_found} persons where the lookup "
                           f"before the send found {len(looked_up)}: the data changed between")
            if stale else ("not_found", None))
        result.add_each({key: missing if (p := found.get(key)) is None else
                         failure(p) if p in errors else (success, None) for key in ids})
        result.persons = looked_up - set(errors)
        result.exact = not stale
        return result
    matched = answer.persons_found
    if after is not None:
        failed = {key: after[key] for key in ids if after.get(key) in errors}
        result.add_each({key: failure(person) for key, person in failed.items()})
        ids = [key for key in ids if key not in failed]
        if matched is not None:
            matched -= len(set(failed.values()))
    if matched is None:
        result.add(ids, "unresolved", UNCOUNTED)
        result.exact = False
    elif matched == 0:
        result.add(ids, "not_found")
    elif matched == len(ids):  # every id named a different person
        result.add(ids, success)
    else:
        result.add(ids, "unresolved",
                   f"PostHog matched {matched} of these {len(ids)} ids; look ups first to name them")
    return result


def settle_uncounted(ids: list[str], found: dict[str, str] | None, *,
                     delete_events: bool) -> ChunkResult:
    """Each id's outcome after ``bulk_delete`` was accepted without counts (an old PostHog's
    bare 202, or a 2xx body that is not a bulk_delete answer), once a lookup after the send
    found none of them (the caller stops the job otherwise): such an answer proves nothing, the
    lookups do. An id the lookup before found was deleted; one it did not find was not found;
    without a lookup before, an id nobody has now was deleted by the call, or never there.
    Events are counted as queued for the persons deleted (as asked); recordings are not
    (PostHog's oldest ``bulk_delete`` never queued them). Persons are counted as the lookups
    name them; without a lookup before, the counts stay unknown."""
    result = ChunkResult(persons_found=None, exact=found is not None)
    if found is None:
        result.add(ids, "unresolved", f"{UNCOUNTED}, and nobody has this id now: deleted by "
                                      "the call, or never there (look ups first make this exact)")
        return result
    result.add([key for key in ids if key in found], "deleted",
               f"{UNCOUNTED}; gone when looked up after it")
    result.add([key for key in ids if key not in found], "not_found")
    result.persons = {found[key] for key in ids if key in found}
    result.persons_found = result.persons_deleted = len(result.persons)  # as the lookups count
    result.events_queued = delete_events and bool(result.persons)
    return result


def wide_persons(aliases: dict[str, str]) -> set[str]:
    """The persons a lookup showed 10 or more distinct ids of (all it shows: maybe more)."""
    seen = Counter(aliases.values())
    return {person for person, count in seen.items() if count >= C.MAX_LOOKUP_DISTINCT_IDS}
