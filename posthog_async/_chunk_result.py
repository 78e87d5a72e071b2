"""What a deletion chunk is and becomes: its state before a (re)send, and its settled result.

:class:`ChunkState` is what is known of a chunk before it is sent (the deletion job rebuilds it
from its journal); :class:`ChunkResult` is every id's outcome, kept as groups of ids sharing one
outcome, with PostHog's person counts. The step that turns one into the other is
:mod:`posthog_async._chunk_step`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ._models import DeletionError

__all__ = ["Outcome", "Group", "ChunkState", "ChunkResult"]

Outcome = Literal["deleted", "queued", "kept", "found", "not_found", "failed", "unresolved"]
"""What happened to one id (``found``: a dry run's lookup matched it)."""


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

    @property
    def outcomes(self) -> dict[str, tuple[Outcome, str | None]]:
        """``{id: (outcome, reason)}``, built on demand."""
        return {key: (outcome, reason) for ids, outcome, reason in self.groups for key in ids}
