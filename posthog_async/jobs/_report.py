"""The job's report, its proof: totals that add up, how exact they are, and every id's outcome.

It is built from the journal alone, so it can be (re)written at any time, and it never holds
the API key (the journal never sees it). Files are written to a temporary name and renamed, so
a crash never leaves a half-written report over a good one; paths are checked before the job
deletes anything.
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

from . import _tally
from ._journal import Journal

__all__ = ["JobReport", "build_report", "check_report_path", "ReportPathError"]

OUTCOMES = ("deleted", "queued", "kept", "found", "not_found", "unresolved", "failed", "pending")


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
    """Every id's row, read from a read-only connection (the job may still hold the lock)."""
    db = sqlite3.connect(f"{journal_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield from db.execute(
            "SELECT kind, id, COALESCE(outcome, 'pending'), reason, person, chunk "
            "FROM ids ORDER BY chunk, id")
        for kind, line, value, reason in db.execute("SELECT kind, line, value, reason FROM rejects"):
            yield kind, value, "invalid", (f"line {line}: " if line is not None else "") + reason, None, None
    finally:
        db.close()


@dataclass
class JobReport:
    """What a ``DeletionJob`` did, read back from its journal: the proof.

    ``totals`` counts ids per outcome and PostHog's person counts; ``exactness`` says which
    figures are exact and why; ``ok`` is exit status 0. ``write()`` saves it as JSON or as a
    per-id CSV.
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
    _journal_path: Path = field(default=Path(), repr=False)

    @property
    def complete(self) -> bool:
        """Every id has a final outcome (none pending or failed) and the job was not stopped."""
        return self.totals["pending"] == 0 and self.totals["failed"] == 0 and not self.stopped

    @property
    def ok(self) -> bool:
        """Complete, and no input value was refused: exit status 0."""
        return self.complete and self.totals["invalid"] == 0

    def to_dict(self, *, per_id: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        if per_id:
            out["ids"] = [dict(zip(("kind", "id", "outcome", "reason", "person", "chunk"), row))
                          for row in _outcomes(self._journal_path)]
        return out

    def write(self, path: str | Path, *, per_id: bool = False) -> Path:
        """Write JSON (``.json``) or a per-id CSV (any other suffix), atomically.

        The CSV has ``# total`` lines, then one row per id (``kind,id,outcome,reason,person,
        chunk``): the per-id proof. The JSON holds the totals (and every id with ``per_id``).
        """
        target = Path(path)
        if target.suffix.lower() == ".json":
            body = json.dumps(self.to_dict(per_id=per_id), indent=2) + "\n"
            _write_atomically(target, lambda handle: handle.write(body))
            return target

        def write_csv(handle: IO[str]) -> None:
            writer = csv.writer(handle)
            for key, value in self.totals.items():
                writer.writerow([f"# {key}", value])
            writer.writerow(["kind", "id", "outcome", "reason", "person", "chunk"])
            writer.writerows(_outcomes(self._journal_path))

        _write_atomically(target, write_csv)
        return target


def build_report(journal: Journal, *, started_at: str, finished_at: str, interrupted: bool,
                 stopped: str | None, deletion_status: dict[str, Any] | None,
                 notes: list[str]) -> JobReport:
    options = journal.get_meta("options") or {}
    load = journal.get_meta("load_stats") or {}
    db = journal.connection
    summary = _tally.chunk_sums(db)
    if options.get("resolve") and not options.get("dry_run"):
        # Every settled id names its person: count persons once each, however many of their
        # ids (in however many chunks) were sent. PostHog's per-call sums are kept beside.
        summary["posthog_sums"] = {key: summary[key] for key in
                                   ("persons_found", "persons_deleted", "persons_queued")}
        summary.update(_tally.distinct_persons(db))
    else:
        summary["may_double_count"] = _tally.may_double_count(db)
    summary["wide_persons"] = _tally.wide_persons(db)
    summary["maybe_deleted"] = _tally.maybe_deleted(db)
    outcomes: dict[str, int] = summary["outcomes"]
    unique = sum(outcomes.values())
    totals = {
        "requested": load.get("requested", 0), "blank": load.get("blank", 0),
        "duplicates": load.get("duplicates", 0), "invalid": load.get("invalid", 0),
        "unique": unique,
        **{outcome: outcomes.get(outcome, 0) for outcome in OUTCOMES},
        "persons_found": summary["persons_found"],
        "persons_deleted": summary["persons_deleted"],
        "persons_queued_for_deletion": summary["persons_queued"],
        "events_queued_for_persons": summary["events_queued_persons"],
        "recordings_queued_for_persons": summary["recordings_queued_persons"],
        "delete_calls": summary["delete_calls"],
        "lost_answers": summary["lost_answers"],
        "resent_chunks": summary["resent_chunks"],
    }
    return JobReport(
        totals=totals, exactness=_exactness(options, totals, summary), options=options,
        inputs=journal.get_meta("inputs") or [], started_at=started_at, finished_at=finished_at,
        interrupted=interrupted, stopped=stopped, journal=str(journal.path),
        chunk_states=summary["chunk_states"], failed_chunks=_tally.failed_chunks(db),
        rejected=_tally.rejects(db), deletion_status=deletion_status, notes=notes,
        _journal_path=journal.path,
    )


def _exactness(options: dict[str, Any], totals: dict[str, int], summary: dict[str, Any]) -> dict[str, Any]:
    """Which figures are exact, and why: the part of the proof a reader must not guess."""
    why: list[str] = []
    per_id = totals["unresolved"] == 0
    counts = summary["chunks_without_counts"] == 0 and summary["inexact_chunks"] == 0
    if summary.get("may_double_count"):
        counts = False
        why.append("without lookups, PostHog's per-call counts are summed: a person whose "
                   "deletion was queued, kept or failed by one call was found again by another "
                   "call if the list named them twice (by two of their distinct ids), and is "
                   "then counted twice")
    sums = summary.get("posthog_sums")
    if sums is not None and (sums["persons_found"], sums["persons_deleted"],
                             sums["persons_queued"]) != (
            totals["persons_found"], totals["persons_deleted"],
            totals["persons_queued_for_deletion"]):
        why.append(f"PostHog's per-call counts sum to {sums['persons_found']} found, "
                   f"{sums['persons_deleted']} deleted, {sums['persons_queued']} queued; the "
                   "totals count each person once, by the ids that named them")
    if summary["wide_persons"] and totals["not_found"]:
        per_id = False
        why.append(f"{summary['wide_persons']} persons this job deleted have 10 or more distinct "
                   "ids and PostHog's lookups show at most 10: a 'not found' id may have been "
                   "one of theirs, deleted with them")
    if options.get("resolve"):
        why.append("every chunk was looked up before it was sent, so each id's outcome comes "
                   "from PostHog's own answer about that id")
    else:
        why.append("chunks were not looked up first (--no-resolve): found/deleted totals are "
                   "PostHog's per-call counts. An id is deleted (queued, kept) only where its "
                   "call found as many persons as it had ids; 'not found' only where its call "
                   "found nobody and no earlier call of this job can have deleted a person "
                   "through another of its ids (for a UUID: no distinct-id call); every other "
                   "id is 'unresolved'")
    if summary["maybe_deleted"]:
        why.append(f"{summary['maybe_deleted']} ids were not found when sent, after this job had "
                   "deleted persons through other ids: without a lookup, one of those persons "
                   "may have been theirs, so they are 'unresolved', not 'not found'")
    if totals["lost_answers"]:
        why.append(f"{totals['lost_answers']} answers were lost (dropped connections, server "
                   "errors, crashes); those chunks were looked up again before being re-sent, "
                   "so nobody a lost call deleted is counted as not found")
    if summary["chunks_without_counts"]:
        why.append(f"{summary['chunks_without_counts']} calls were accepted without counts "
                   "(an old PostHog answers 202 with no body)")
    if totals["unresolved"]:
        done = "kept" if options.get("keep_person") else "deleted or queued for deletion"
        why.append(f"{totals['unresolved']} ids are 'unresolved': each named a person this job "
                   f"{done}, or nobody, but which of the two is not known")
    if totals["queued"]:
        why.append(f"{totals['queued']} ids are 'queued': PostHog accepted their deletion and "
                   "runs it in the background")
    return {"per_id_outcomes_exact": per_id, "person_totals_exact": counts, "why": why}
