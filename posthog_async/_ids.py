"""Turning raw id input into chunks the server accepts, counting everything that was dropped.

One cleaner serves the bulk helpers and the deletion job: strip, drop blanks, refuse what
cannot be an id (:func:`~posthog_async._validation.clean_id`), and optionally drop duplicates.
Input is read in batches rather than id by id, so a million ids cost a few list operations
per thousand instead of a chain of generator steps per id.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from . import _constants as C
from ._validation import InvalidIdError, clean_id

__all__ = ["IdSource", "InputStats", "RejectedId", "IdCleaner", "cleaned_chunks"]

T = TypeVar("T")
IdSource = Iterable[str] | AsyncIterable[str]
"""Where ids come from: any iterable or async iterable of strings, read lazily."""


@dataclass
class InputStats:
    """What cleaning the input dropped, so that ``requested = unique + blank + duplicates + invalid``."""

    requested: int = 0
    blank: int = 0
    duplicates: int = 0
    invalid: int = 0

    @property
    def unique(self) -> int:
        return self.requested - self.blank - self.duplicates - self.invalid


@dataclass(frozen=True)
class RejectedId:
    """An input value that was never sent, and why. ``value`` is cut to 200 characters;
    ``line`` is where it was in an input file, when known."""

    value: str
    reason: str
    line: int | None = None


class IdCleaner:
    """Cleans batches of raw ids, counting in ``stats`` and reporting each refusal to ``on_reject``.

    ``dedupe`` keeps a set of the ids seen (about 100 bytes an id); the deletion job passes
    ``False`` and de-duplicates in SQLite instead, so its memory stays flat.
    """

    def __init__(
        self,
        *,
        uuids: bool,
        dedupe: bool = True,
        stats: InputStats | None = None,
        on_reject: Callable[[RejectedId], object] | None = None,
    ) -> None:
        self.uuids = uuids
        self.stats = stats if stats is not None else InputStats()
        self._seen: set[str] | None = set() if dedupe else None
        self._on_reject = on_reject

    def clean(self, batch: Iterable[object], *, lines: list[int] | None = None) -> list[str]:
        """The clean ids of ``batch``; ``lines`` (parallel to it) names refused ones' places."""
        if isinstance(batch, list) and _already_clean(batch, uuids=self.uuids):
            return self._count_clean(batch)
        stats, seen, uuids = self.stats, self._seen, self.uuids
        out: list[str] = []
        for index, raw in enumerate(batch):
            stats.requested += 1
            try:
                value = clean_id(raw, uuid=uuids)
            except InvalidIdError as exc:
                stats.invalid += 1
                if self._on_reject is not None:
                    shown = raw if isinstance(raw, str) else repr(raw)
                    line = None if lines is None else lines[index]
                    self._on_reject(RejectedId(shown[:200], str(exc), line))
                continue
            if value is None:
                stats.blank += 1
            elif seen is None:
                out.append(value)
            elif value in seen:
                stats.duplicates += 1
            else:
                seen.add(value)
                out.append(value)
        return out

    def _count_clean(self, batch: list[str]) -> list[str]:
        """:meth:`clean` for a batch :func:`_already_clean` passed: only duplicates to drop
        (the first of each kept, as id by id), with set operations instead of a loop per id."""
        stats, seen = self.stats, self._seen
        stats.requested += len(batch)
        if seen is None:
            return list(batch)
        if seen.isdisjoint(batch):
            before = len(seen)
            seen.update(batch)
            if len(seen) - before == len(batch):
                return list(batch)
            unique = list(dict.fromkeys(batch))  # repeats within the batch
        else:  # some seen in earlier batches: first occurrences, minus those
            unique = [value for value in dict.fromkeys(batch) if value not in seen]
            seen.update(unique)
        stats.duplicates += len(batch) - len(unique)
        return unique


#: Canonical UUIDs, one per line: a whole batch checked by one regex match.
_CANONICAL_UUID_LINES = re.compile(
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n)*")


def _already_clean(batch: list[object], *, uuids: bool) -> bool:
    """True when :func:`clean_id` would return every id of ``batch`` unchanged, checked for the
    whole batch at once (a few passes in C instead of a Python call per id). False says only
    "check id by id", which applies the same rules and reports each refusal.

    The same rules: every item a ``str`` (not a subclass: ``clean_id`` returns plain ``str``);
    with ``uuids``, each a canonical lower-case UUID; otherwise none blank, none longer than
    the maximum, all printable, no U+FFFD, and nothing for ``strip()`` to remove. A printable
    string can only have ASCII spaces around it (every other whitespace character is
    non-printable), so the last rule holds when no id contains a space, or when the batch
    joined by spaces neither starts nor ends with one nor holds two in a row.
    """
    if set(map(type, batch)) != {str}:
        return False
    ids: list[str] = batch  # type: ignore[assignment]  # every item is a str
    if uuids:  # lines of 37 characters: as many lines as ids, so no id holds a line break
        text = "\n".join(ids) + "\n"
        return len(text) == 37 * len(ids) and _CANONICAL_UUID_LINES.fullmatch(text) is not None
    text = " ".join(ids)
    return (all(ids) and max(map(len, ids)) <= C.MAX_DISTINCT_ID_LENGTH
            and text.isprintable() and "\ufffd" not in text
            and (text.count(" ") == len(ids) - 1  # only the separators: no id has a space
                 or not (text.startswith(" ") or text.endswith(" ") or "  " in text)))


async def _raw_batches(source: Iterable[T] | AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    if isinstance(source, AsyncIterable):
        batch: list[T] = []
        async for item in source:
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
        return
    iterator = iter(source)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


async def cleaned_chunks(
    source: Iterable[object] | AsyncIterable[object], cleaner: IdCleaner, size: int
) -> AsyncIterator[list[str]]:
    """Lists of at most ``size`` clean ids, never an empty one, reading ``source`` lazily."""
    if size <= 0:
        raise ValueError("chunk size must be positive")
    pending: list[str] = []
    async for batch in _raw_batches(source, size):
        clean = cleaner.clean(batch)
        if not pending and len(clean) == size:  # the usual case: a whole chunk, as it is
            yield clean
            continue
        pending.extend(clean)
        while len(pending) >= size:
            yield pending[:size]
            del pending[:size]
    if pending:
        yield pending
