"""What ``persons delete`` and ``persons verify`` print at the end: the report in a few lines, per
project where there are several, every project not covered with PostHog's message, and the
verification's verdict with what is still pending and when PostHog's next batch runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from ..jobs import JobReport

__all__ = ["print_summary", "print_verification"]

_ID_OUTCOMES = ("deleted", "queued", "kept", "found", "not_found", "unresolved", "failed",
                "pending", "not_covered")


def _project_name(project: dict[str, Any]) -> str:
    name = f" ({project['name']})" if project.get("name") else ""
    return f"project {project.get('id')}{name}"


def _not_covered_lines(report: JobReport) -> list[str]:
    lines = []
    for gap in report.not_covered:
        what = (_project_name(gap) if gap.get("id") is not None
                else f"organization {gap['name']!r} ({gap.get('organization')})"
                if gap.get("name") else f"organization {gap.get('organization')}")
        said = (f"PostHog answered {gap['status_code']}: " if gap.get("status_code") is not None
                else "")
        lines.append(f"  NOT COVERED: {what}: {said}{gap.get('message')}")
    return lines


def print_summary(report: JobReport, report_path: Path, *, stream: TextIO | None = None,
                  written: bool = True) -> None:
    t = report.totals
    several = t.get("projects", 1) > 1
    listed = several or bool(report.selection.get("all"))  # "all" says which projects it meant
    dry = bool(report.options.get("dry_run"))
    lines = [
        f"requested {t['requested']:,}  (blank {t['blank']:,}, duplicates {t['duplicates']:,}, "
        f"invalid {t['invalid']:,}) -> unique {t['unique']:,}"
        + (f", in {t['projects']} projects: {t['ids_in_projects']:,} (project, id) pairs"
           if several else ""),
        "ids: " + ", ".join(f"{name.replace('_', ' ')} {t[name]:,}" for name in _ID_OUTCOMES
                            if t.get(name) or name in ("deleted", "not_found")),
        f"persons found {t['persons_found']:,}, deleted {t['persons_deleted']:,}, queued "
        f"{t['persons_queued_for_deletion']:,}; {t['delete_calls']:,} delete calls, "
        f"{t['lost_answers']:,} lost answers",
    ]
    if t["events_queued_for_persons"]:
        lines.append(f"events queued for deletion for {t['events_queued_for_persons']:,} persons")
    if listed:
        for project in report.projects:
            mine = project.get("totals")
            if project["state"] == "covered" and mine:
                done = (f"found {mine['found']:,}" if dry else
                        f"deleted {mine['deleted']:,}, queued {mine['queued']:,}"
                        + (f", kept {mine['kept']:,}" if mine.get("kept") else ""))
                lines.append(f"  {_project_name(project)}: {done}, not found {mine['not_found']:,}"
                             + (f", failed {mine['failed']:,}" if mine["failed"] else "")
                             + (f", pending {mine['pending']:,}" if mine["pending"] else "")
                             + (" [PostHog is deleting this project]"
                                if project.get("is_pending_deletion") else ""))
    elif report.projects and report.projects[0].get("is_pending_deletion"):
        lines.append(f"  {_project_name(report.projects[0])} is pending deletion in PostHog")
    lines += _not_covered_lines(report)
    if report.excluded:
        lines.append("excluded on purpose: " + ", ".join(f"project {p}" for p in report.excluded))
    exact = report.exactness
    lines.append("exact per id: " + ("yes" if exact["per_id_outcomes_exact"] else "no")
                 + "; person totals exact: " + ("yes" if exact["person_totals_exact"] else "no"))
    if report.stopped:
        lines.append(f"stopped: {report.stopped}")
    for chunk in report.failed_chunks[:5]:
        lines.append(f"  chunk {chunk['chunk']} ({chunk['size']} ids) failed: {chunk['error']}")
    for reject in report.rejected[:5]:
        where = f"line {reject['line']}: " if reject["line"] is not None else ""
        lines.append(f"  invalid {reject['value']!r:.60}: {where}{reject['reason']}")
    written_to = str(report_path) if written else f"NOT WRITTEN ({report_path})"
    lines.append(f"report: {written_to}   journal: {report.journal}")
    print("\n".join(lines), file=stream or sys.stderr)


def _counts(counts: dict[str, int], names: dict[str, str]) -> str:
    return ", ".join(f"{counts[key]:,} {label}" for key, label in names.items() if counts.get(key))


_PERSONS = {"gone": "gone", "still_queued": "still queued at PostHog",
            "not_deleted": "NEVER DELETED (queued deletion not carried out)",
            "found_again": "FOUND AGAIN", "check_failed": "lookup failed",
            "unchecked": "not checked"}
_EVENTS = {"completed": "deleted and verified by PostHog", "pending": "pending at PostHog",
           "missing": "row not written yet", "missing_after_batch": "ROW MISSING after the batch",
           "old_row": "only an earlier erasure's row yet",
           "old_row_after_batch": "ONLY AN EARLIER ERASURE'S ROW after the batch",
           "unverifiable": "UNVERIFIABLE (no uuid)", "check_failed": "NOT CHECKED (status read "
           "failed)", "unchecked": "not checked"}
_IDS = {"free": "name nobody", "same": "still name the deleted person",
        "reused": "NOW NAME ANOTHER PERSON", "check_failed": "lookup failed",
        "unchecked": "not checked"}


def print_verification(report: JobReport, report_path: Path, *, written: bool = True,
                       stream: TextIO | None = None) -> None:
    v = report.verification or {}
    state = str(v.get("state", "unknown"))
    since = v.get("started_at") or v.get("checked_at")
    lines = [f"verification: {state.upper()} (checked {since} .. {v.get('checked_at')})"]
    oldest = v.get("oldest_person_check_at")
    if oldest and since and oldest < since:
        lines.append(f"  some lookups date from {oldest}: they could not be made again now")
    persons, events = v.get("persons") or {}, v.get("events") or {}
    if persons:
        lines.append(f"  persons: {_counts(persons, _PERSONS)}"
                     + (f" (gone by {v['last_gone_at']})" if v.get("last_gone_at") else ""))
    if v.get("distinct_ids"):
        lines.append(f"  erased distinct ids looked up again: {_counts(v['distinct_ids'], _IDS)}")
    if v.get("kept"):
        lines.append(f"  persons kept on purpose (--keep-person): {v['kept']:,}")
    if report.options.get("delete_events"):
        lines.append(f"  events: {_counts(events, _EVENTS) or 'nothing to check'}"
                     + (f" (delete_verified_at {v['first_events_verified_at']} .. "
                        f"{v['last_events_verified_at']})" if v.get("last_events_verified_at")
                        else ""))
        lines.append(f"  PostHog's next event-deletion batch: {v.get('next_batch_at')} "
                     f"(assuming {v.get('schedule')})")
    if report.options.get("delete_recordings"):
        lines.append("  recordings: PostHog reports no status for recording deletions; they "
                     "are not verified here")
    if len(report.projects) > 1:
        for project in report.projects:
            mine = project.get("verification")
            if project["state"] == "covered" and mine:
                lines.append(f"  {_project_name(project)}: persons "
                             f"{_counts(mine['persons'], _PERSONS) or '-'}"
                             + (f"; events {_counts(mine['events'], _EVENTS) or '-'}"
                                if report.options.get("delete_events") else "")
                             + (f"; ids {_counts(mine['distinct_ids'], _IDS)}"
                                if mine.get("distinct_ids", {}).get("reused") else ""))
    lines += _not_covered_lines(report)
    for problem in v.get("problems") or []:
        lines.append(f"  {'!' if state in ('failed', 'unverifiable') else '-'} {problem}")
    for wrong in (v.get("wrong") or [])[:5]:
        lines.append(f"    project {wrong['project']} {wrong['kind']} {wrong['target']}: "
                     f"{wrong['person_check'] or ''} {wrong['events'] or ''}".rstrip())
    written_to = str(report_path) if written else f"NOT WRITTEN ({report_path})"
    lines.append(f"report: {written_to}   journal: {report.journal}")
    print("\n".join(lines), file=stream or sys.stderr)
