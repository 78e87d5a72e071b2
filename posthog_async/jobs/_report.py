"""The job's final report: totals that add up, failed chunks, options, times; JSON or CSV.

It is built from the journal alone, so it can be (re)written at any time, and it never holds
the API key: the journal never sees it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._journal import Journal

__all__ = ["JobReport", "build_report"]


@dataclass
class JobReport:
    totals: dict[str, int]
    options: dict[str, Any]
    inputs: dict[str, str]
    started_at: str
    finished_at: str
    interrupted: bool
    journal: str
    chunk_states: dict[str, int]
    failed_chunks: list[dict[str, Any]]
    rejected: list[dict[str, str]]
    deletion_status: dict[str, Any] | None = None
    not_found_is_exact: bool = False
    _journal_path: Path = field(default=Path(), repr=False)

    @property
    def complete(self) -> bool:
        """Every id is accounted for with a final outcome (none pending or failed)."""
        return self.totals["pending"] == 0 and self.totals["failed"] == 0

    @property
    def ok(self) -> bool:
        return self.complete and self.totals["invalid"] == 0

    def to_dict(self, *, per_id: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        if per_id:
            out["ids"] = [dict(zip(("kind", "id", "outcome", "chunk", "reason"), row))
                          for row in self._iter_outcomes()]
        return out

    def _iter_outcomes(self) -> Any:
        journal = Journal(self._journal_path)
        try:
            yield from journal.iter_outcomes()
        finally:
            journal.close()

    def write(self, path: str | Path, *, per_id: bool = False) -> Path:
        """Write JSON (``.json``) or a per-id CSV (any other suffix) and return the path.

        The CSV has one row per id (``kind,id,outcome,chunk,reason``) after ``# total`` lines,
        so it is the per-id proof; the JSON holds the totals (and every id with ``per_id``).
        """
        target = Path(path)
        if target.suffix.lower() == ".json":
            target.write_text(json.dumps(self.to_dict(per_id=per_id), indent=2) + "\n")
            return target
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            for key, value in self.totals.items():
                writer.writerow([f"# {key}", value])
            writer.writerow(["kind", "id", "outcome", "chunk", "reason"])
            for row in self._iter_outcomes():
                writer.writerow(row)
        return target


def build_report(journal: Journal, *, options: dict[str, Any], started_at: str,
                 finished_at: str, interrupted: bool, deletion_status: dict[str, Any] | None,
                 inputs: dict[str, str]) -> JobReport:
    load = journal.load_stats()
    summary = journal.summary()
    outcomes: dict[str, int] = summary["id_outcomes"]
    exact = bool(options.get("resolve"))
    done_ids = sum(n for k, n in outcomes.items() if k not in ("pending", "failed"))
    if exact:
        found = sum(n for k, n in outcomes.items() if k in ("deleted", "kept", "exists"))
        not_found = outcomes.get("not_found", 0)
    else:
        # Without lookups the server only says how many persons a chunk matched.
        found = summary["persons_found"]
        not_found = max(0, done_ids - found)
    totals = {
        "requested": load.requested,
        "blank": load.blank,
        "duplicates": load.duplicates,
        "invalid": load.invalid,
        "unique": load.unique,
        "found": found,
        "deleted": summary["persons_deleted"] + summary["persons_queued"],
        "persons_queued_for_deletion": summary["persons_queued"],
        "events_queued_for_deletion": summary["events_queued"],
        "recordings_queued_for_deletion": summary["recordings_queued"],
        "not_found": not_found,
        "failed": outcomes.get("failed", 0),
        "pending": outcomes.get("pending", 0),
        "requests_sent": summary["attempts"],
        # Chunks sent again after a crash left their outcome unknown: the second answer may
        # count 0 found for persons the first (lost) answer had already deleted.
        "resent_chunks": summary["resent_chunks"],
    }
    return JobReport(
        totals=totals, options=options, inputs=inputs, started_at=started_at,
        finished_at=finished_at, interrupted=interrupted, journal=str(journal.path),
        chunk_states=summary["chunk_states"], failed_chunks=journal.failed_chunks(),
        rejected=journal.rejects()[:1000], deletion_status=deletion_status,
        not_found_is_exact=exact, _journal_path=journal.path,
    )
