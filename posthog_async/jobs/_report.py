"""The job's report, its proof: totals that add up, how exact they are, and every id's outcome.

It is built from the journal alone (:mod:`._report_build`), so it can be (re)written at any
time, and it never holds the API key (the journal never sees it). Per project and in total it
says what was asked, what PostHog did, what was verified and when, what is still pending, and
which projects were not covered and why; per id (CSV) the same, with the project. Files are
written to a temporary name and renamed, so a crash never leaves a half-written report over a
good one; paths are checked before the job deletes anything.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ._tally import OUTCOME, PERSON

__all__ = ["JobReport", "check_report_path", "ReportPathError", "OUTCOMES", "ID_COLUMNS"]

OUTCOMES = ("deleted", "queued", "kept", "found", "not_found", "unresolved", "failed", "pending",
            "not_covered")
#: The per-id proof's columns (CSV, and ``to_dict(per_id=True)``): the job's outcome (the
#: first six, as reports have always begun), the project, then what ``verify`` found
#: (``person_check``: gone, found_again, still_queued, not_deleted, check_failed, or
#: id_names_another_person for an erased distinct id PostHog gave to a new person; ``events``:
#: completed, pending, missing, missing_after_batch, unverifiable, check_failed).
ID_COLUMNS = ("kind", "id", "outcome", "reason", "person", "chunk", "project", "person_check",
              "gone_at", "events", "delete_verified_at")


class ReportPathError(ValueError):
    """A report cannot be written where asked (checked before anything is deleted)."""


def _refuse_special(target: Path) -> None:
    """A report replaces its path (a temporary file renamed over it): an existing path must be
    a regular file, never a directory, a FIFO or a device such as /dev/null."""
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ReportPathError(f"report path {target}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise ReportPathError(f"report path {target} is {kind}: give the path of a regular file")


def check_report_path(path: str | Path) -> Path:
    """Raise :class:`ReportPathError` unless a report can be created at ``path``."""
    target = Path(path)
    _refuse_special(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ReportPathError(f"report folder {folder} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.", delete=True):
            pass
    except OSError as exc:
        raise ReportPathError(f"cannot write in {folder}: {exc.strerror or exc}") from None
    return target


def _write_atomically(target: Path, write: Callable[[IO[str]], object]) -> None:
    _refuse_special(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".",
                               prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _outcomes(journal_path: Path) -> Iterator[tuple[Any, ...]]:
    """Every id's row (see :data:`ID_COLUMNS`), read from a read-only connection (the job may
    still hold the lock)."""
    db = sqlite3.connect(f"{journal_path.resolve().as_uri()}?mode=ro", uri=True)
    check = "COALESCE(cp.{0}, ci.{0})"
    try:
        yield from db.execute(
            f"SELECT ids.kind, ids.id, {OUTCOME}, "
            "CASE WHEN ids.outcome IS NULL AND pr.state = 'not_covered' THEN "
            "'project not covered: PostHog answered ' || COALESCE(pr.status_code, '?') || ': ' "
            "|| COALESCE(pr.message, '') ELSE ids.reason END, ids.person, ids.chunk, ids.project, "
            + "CASE WHEN ic.state = 'reused' THEN 'id_names_another_person' ELSE "
            + check.format("person_state") + " END, "
            + ", ".join(check.format(c) for c in ("gone_at", "events_state",
                                                   "delete_verified_at"))
            + " FROM ids LEFT JOIN projects AS pr ON pr.project = ids.project "
            "LEFT JOIN id_checks AS ic ON ic.project = ids.project AND ids.kind = 'distinct_ids' "
            "AND ic.id = ids.id "
            "LEFT JOIN checks AS cp ON cp.project = ids.project AND cp.kind = 'person' "
            f"AND cp.target = {PERSON} "
            "LEFT JOIN checks AS ci ON ci.project = ids.project AND ci.kind = ids.kind "
            "AND ci.target = ids.id ORDER BY ids.project, ids.chunk, ids.id")
        for kind, line, value, reason in db.execute("SELECT kind, line, value, reason FROM rejects"):
            where = f"line {line}: " if line is not None else ""
            yield (kind, value, "invalid", where + reason) + (None,) * 7
    finally:
        db.close()


@dataclass
class JobReport:
    """What a deletion job asked, what PostHog did, and (after ``verify``) what is proven.

    ``totals`` count the input's ids (``unique``) and every (project, id) pair's outcome
    (``ids_in_projects``; one project: the same number). ``projects`` has a section per project
    (state, PostHog's message if not covered, its own totals and verification), ``not_covered``
    every project (or organisation) the key could not reach, ``excluded`` those left out on
    purpose, ``verification`` the last ``verify`` (``None`` before one).

    ``exactness`` says which figures are exact and why; ``ok`` is exit status 0. ``write()``
    saves it as JSON or as a per-id CSV.
    """

    totals: dict[str, int]
    exactness: dict[str, Any]
    options: dict[str, Any]
    inputs: list[dict[str, Any]]
    started_at: str
    finished_at: str
    interrupted: bool
    stopped: str | None
    journal: str
    chunk_states: dict[str, int]
    failed_chunks: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    deletion_status: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    selection: dict[str, Any] = field(default_factory=dict)
    projects: list[dict[str, Any]] = field(default_factory=list)
    not_covered: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[int] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    _journal_path: Path = field(default=Path(), repr=False)

    @property
    def complete(self) -> bool:
        """Every id has a final outcome in every project of the job (none pending, failed or in
        a project not covered) and the job was not stopped."""
        return (self.totals["pending"] == 0 and self.totals["failed"] == 0
                and not self.not_covered and not self.stopped)

    @property
    def ok(self) -> bool:
        """Complete, and no input value was refused: exit status 0."""
        return self.complete and self.totals["invalid"] == 0

    def to_dict(self, *, per_id: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        if per_id:
            out["ids"] = [dict(zip(ID_COLUMNS, row)) for row in _outcomes(self._journal_path)]
        return out

    def write(self, path: str | Path, *, per_id: bool = False) -> Path:
        """Write JSON (``.json``) or a per-id CSV (any other suffix), atomically.

        The CSV begins with ``#`` lines: the totals (``# name,number``), then the rest of the
        proof (:meth:`_comment_rows`: exactness and why, options, inputs, projects, stopped,
        notes), then one row per (project, id) (:data:`ID_COLUMNS`): the per-id proof, each id
        of a project not covered with PostHog's reason. The JSON holds the totals, projects and
        verification (and every id with ``per_id``, streamed from the journal a row at a time:
        a report of millions of ids costs no more memory than one of ten).
        """
        target = Path(path)
        if target.suffix.lower() == ".json":
            _write_atomically(target, lambda handle: self._write_json(handle, per_id=per_id))
            return target

        def write_csv(handle: IO[str]) -> None:
            writer = csv.writer(handle)
            for key, value in self.totals.items():
                writer.writerow([f"# {key}", value])
            writer.writerows(self._comment_rows())
            writer.writerow(ID_COLUMNS)
            writer.writerows(_outcomes(self._journal_path))

        _write_atomically(target, write_csv)
        return target

    def _write_json(self, handle: IO[str], *, per_id: bool) -> None:
        """``to_dict(per_id=per_id)`` as indented JSON, its ``ids`` written as they are read."""
        head = json.dumps(self.to_dict(), indent=2)
        if not per_id:
            handle.write(head + "\n")
            return
        handle.write(head[:-2] + ',\n  "ids": [')  # the object without its closing "\n}"
        first = True
        for row in _outcomes(self._journal_path):
            handle.write(("\n    " if first else ",\n    ")
                         + json.dumps(dict(zip(ID_COLUMNS, row))))
            first = False
        handle.write("\n  ]\n}\n" if not first else "]\n}\n")

    def _comment_rows(self) -> Iterator[list[Any]]:
        """The CSV's ``#`` lines after the totals: everything the JSON says besides the ids, so
        the per-id proof stands alone (a value that is not text or a number is JSON)."""
        def cell(value: Any) -> Any:
            return value if isinstance(value, (str, int)) and not isinstance(value, bool) \
                else json.dumps(value)

        for key in ("per_id_outcomes_exact", "person_totals_exact"):
            yield [f"# exactness {key}", "yes" if self.exactness.get(key) else "no"]
        for why in self.exactness.get("why", []):
            yield ["# exactness why", why]
        for key, value in self.options.items():
            yield [f"# option {key}", cell(value)]
        for source in self.inputs:
            yield ["# input", cell(source)]
        for section in self.projects:
            yield [f"# project {section.get('id', '')}".rstrip(), cell(section)]
        for key in ("not_covered", "excluded", "verification", "deletion_status"):
            if getattr(self, key):
                yield [f"# {key}", cell(getattr(self, key))]
        yield ["# stopped", self.stopped or ""]
        if self.interrupted:
            yield ["# interrupted", "yes"]
        for note in self.notes:
            yield ["# note", note]
        for key in ("started_at", "finished_at", "journal"):
            yield [f"# {key}", getattr(self, key)]
