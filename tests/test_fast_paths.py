"""The bulk hot paths' shortcuts must give exactly what the plain paths give.

- ``IdCleaner.clean``: a list may take the batch fast path; a tuple of the same items always
  goes id by id (the fast path only takes lists), so comparing the two checks every rule of
  ``clean_id`` on every batch shape.
- ``ChunkResult`` groups: counts and names per group give what a per-id dict would.
"""

from __future__ import annotations

import random
import sys
import uuid

import pytest

from posthog_async._bulk import BulkDeleteReport
from posthog_async._chunk_result import ChunkResult
from posthog_async._ids import IdCleaner, _already_clean
from posthog_async._validation import clean_id


class Sub(str):
    pass


U = "0190f7a2-1b2c-7d3e-8f40-123456789abc"
ODD = [
    "", " ", "  a", "a ", " a ", "a  b", "a b", "\tx", "x\n", "x\u00a0", "\u3000x", "x\ufffd",
    "é", "日本", "a" * 400, "a" * 401, "\u200bx", "\x7f", Sub("sub"), 7, None, b"bytes",
    U, U.upper(), "{" + U + "}", U.replace("-", ""), U[:-1], " " + U, U + " ",
]


def run(cleaner: IdCleaner, batches: list[list[object]], as_list: bool) -> tuple[object, ...]:
    rejected: list[object] = []
    cleaner._on_reject = rejected.append
    outs = [cleaner.clean(b if as_list else tuple(b)) for b in batches]
    return outs, vars(cleaner.stats), rejected, [type(i) for out in outs for i in out]


@pytest.mark.parametrize("uuids", [False, True])
@pytest.mark.parametrize("dedupe", [False, True])
@pytest.mark.parametrize("seed", range(40))
def test_fast_path_matches_id_by_id(uuids: bool, dedupe: bool, seed: int) -> None:
    rng = random.Random(seed)
    pool: list[object] = [str(uuid.UUID(int=rng.getrandbits(128))) if uuids else f"user-{i}"
                          for i in range(60)]
    batches = []
    for _ in range(6):
        size = rng.choice([0, 1, 2, 10, 50])
        batch = [rng.choice(pool) for _ in range(size)]
        if rng.random() < 0.4 and batch:  # most batches clean, some with one odd item
            batch[rng.randrange(len(batch))] = rng.choice(ODD)
        batches.append(batch)
    fast = run(IdCleaner(uuids=uuids, dedupe=dedupe), batches, as_list=True)
    slow = run(IdCleaner(uuids=uuids, dedupe=dedupe), batches, as_list=False)
    assert fast == slow


@pytest.mark.parametrize("item", ODD)
def test_the_fast_path_takes_only_ids_clean_id_leaves_unchanged(item: object) -> None:
    for uuids in (False, True):
        try:
            same = type(item) is str and clean_id(item, uuid=uuids) == item
        except ValueError:
            same = False
        for where in range(3):
            batch: list[object] = ["user-1" if not uuids else U] * 2
            batch.insert(where, item)
            if _already_clean(batch, uuids=uuids):
                assert same, (item, where, uuids)


def test_usual_batches_take_the_fast_path() -> None:
    assert _already_clean([f"user-{i}" for i in range(1000)], uuids=False)
    assert _already_clean(["a b", "c d e", "ö", "a" * 400], uuids=False)
    assert _already_clean([str(uuid.uuid4()) for _ in range(1000)], uuids=True)
    assert not _already_clean([], uuids=False)


def test_only_the_ascii_space_is_printable_and_stripped() -> None:
    # The fast path's strip rule rests on this property of str.
    found = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isprintable() and c.isspace()]
    assert found == [" "]


def test_dedupe_counts_repeats_within_and_across_batches() -> None:
    cleaner = IdCleaner(uuids=False)
    assert cleaner.clean(["a", "b", "a", "c"]) == ["a", "b", "c"]
    assert cleaner.clean(["d", "b", "e", "d"]) == ["d", "e"]
    assert cleaner.stats.duplicates == 3 and cleaner.stats.requested == 8


@pytest.mark.parametrize("outcome", [("deleted", None), ("not_found", None),
                                     ("unresolved", "why")])
def test_a_group_reads_as_the_dict_it_stands_for(outcome: tuple[str, str | None]) -> None:
    ids = [f"user-{i}" for i in range(5)]
    grouped, each = ChunkResult(persons_found=5), ChunkResult(persons_found=5)
    grouped.add(list(ids), *outcome)  # type: ignore[arg-type]
    each.add_each(dict.fromkeys(ids, outcome))  # type: ignore[arg-type]
    assert grouped.counts() == each.counts() == {outcome[0]: 5}
    for name in ("deleted", "not_found", "unresolved", "failed"):
        assert grouped.ids_with(name) == each.ids_with(name)  # type: ignore[arg-type]
    reports = [BulkDeleteReport(), BulkDeleteReport()]
    reports[0].add(grouped)
    reports[1].add(each)
    assert reports[0] == reports[1]
    assert grouped.outcomes == each.outcomes == dict.fromkeys(ids, outcome)


def test_an_empty_group_is_no_group() -> None:
    result = ChunkResult()
    result.add([], "deleted")
    assert result.groups == [] and result.counts() == {} and result.outcomes == {}


def test_mixed_outcomes_are_counted_per_id() -> None:
    result = ChunkResult()
    result.add_each({"a": ("deleted", None), "b": ("not_found", None),
                     "c": ("deleted", None), "d": ("unresolved", "r")})
    assert result.counts() == {"deleted": 2, "not_found": 1, "unresolved": 1}
    assert result.ids_with("deleted") == ["a", "c"]
