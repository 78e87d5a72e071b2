"""Building a :class:`~posthog_async.jobs.JobReport` from the journal: totals that add up, how
exact they are, a section per project, and the verification's verdict.

Everything is read from the journal's rows, so a report can be rebuilt at any time and always
agrees with the per-id proof. A verification's verdict is worked out here, from the checks as
they stand and from the deletion job's own completeness: a job that did not finish (ids pending
or failed, a project not covered) is never verified, whatever its checks say.
"""

from __future__ import annotations

from typing import Any

from .._chunk_result import MAYBE_WIDE
from . import _tally
from ._checks import PENDING, WRONG
from ._journal import Journal
from ._report import OUTCOMES, JobReport

__all__ = ["build_report", "verdict", "VERIFICATION_META"]

#: The journal's meta entry for the last ``verify``: when it ran, the batch schedule it assumed.
VERIFICATION_META = "verification"


def _totals(db: Any, load: dict[str, Any], summary: dict[str, Any]) -> dict[str, int]:
    outcomes: dict[str, int] = summary["outcomes"]
    return {
        "requested": load.get("requested", 0), "blank": load.get("blank", 0),
        "duplicates": load.get("duplicates", 0), "invalid": load.get("invalid", 0),
        "unique": _tally.unique_ids(db, sum(outcomes.values())),
        "ids_in_projects": sum(outcomes.values()),
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


def _summary(db: Any, options: dict[str, Any], project: int | None = None) -> dict[str, Any]:
    summary = _tally.chunk_sums(db, project)
    if options.get("resolve") and not options.get("dry_run"):
        # Every settled id names its person: count persons once each, however many of their
        # ids (in however many chunks) were sent. PostHog's per-call sums are kept beside.
        summary["posthog_sums"] = {key: summary[key] for key in
                                   ("persons_found", "persons_deleted", "persons_queued")}
        summary.update(_tally.distinct_persons(db, project))
    return summary


def build_report(journal: Journal, *, started_at: str, finished_at: str, interrupted: bool,
                 stopped: str | None, deletion_status: dict[str, Any] | None,
                 notes: list[str]) -> JobReport:
    options = journal.get_meta("options") or {}
    load = journal.get_meta("load_stats") or {}
    db = journal.connection
    summary = _summary(db, options)
    if not (options.get("resolve") and not options.get("dry_run")):
        summary["may_double_count"] = _tally.may_double_count(db)
    summary["wide_persons"] = _tally.wide_persons(db)
    summary["maybe_deleted"] = _tally.maybe_deleted(db)
    summary["maybe_wide"] = _tally.maybe_deleted(db, MAYBE_WIDE)
    totals = _totals(db, load, summary)
    totals["projects"] = 0
    checked = journal.get_meta(VERIFICATION_META)
    sections = []
    recorded = journal.job_projects()
    in_job = sum(project.state != "excluded" for project in recorded)
    for project in recorded:
        section: dict[str, Any] = project.as_dict()
        if project.state != "excluded":
            totals["projects"] += 1
            own = totals if in_job == 1 else _totals(db, load, _summary(db, options, project.id))
            section["totals"] = {k: v for k, v in own.items() if k not in (
                "requested", "blank", "duplicates", "invalid", "unique", "projects")}
            if checked is not None:
                section["verification"] = journal.check_counts(project.id)
        sections.append(section)
    not_covered = [{k: v for k, v in s.items() if k not in ("totals", "verification")}
                   for s in sections if s["state"] == "not_covered"]
    not_covered += journal.get_meta("not_covered_organizations") or []
    report = JobReport(
        totals=totals, exactness=_exactness(options, totals, summary), options=options,
        inputs=journal.get_meta("inputs") or [], started_at=started_at, finished_at=finished_at,
        interrupted=interrupted, stopped=stopped, journal=str(journal.path),
        chunk_states=summary["chunk_states"], failed_chunks=_tally.failed_chunks(db),
        rejected=_tally.rejects(db), deletion_status=deletion_status, notes=notes,
        selection=journal.get_meta("project_selection") or {}, projects=sections,
        not_covered=not_covered,
        excluded=[s["id"] for s in sections if s["state"] == "excluded"],
        _journal_path=journal.path,
    )
    if checked is not None:
        counts = journal.check_counts()
        state, problems = verdict(report, {**checked, **counts}, options)
        report.verification = {**checked, "state": state, "problems": problems, **counts,
                                "wrong": journal.wrong_examples() if state == "failed" else []}
        if options.get("delete_recordings"):
            report.verification["recordings"] = ("not verified: PostHog reports no status for "
                                                 "recording deletions")
    return report


def verdict(report: JobReport, counts: dict[str, Any],
            options: dict[str, Any]) -> tuple[str, list[str]]:
    """``verified``, ``pending`` (work still to do at PostHog), ``failed``, or
    ``unverifiable`` (the job did nothing PostHog reports on: persons kept, recordings only),
    and why not verified, in words."""
    problems: list[str] = []
    t = report.totals
    if report.not_covered:
        names = ", ".join(f"project {g['id']}" if g.get("id") is not None
                          else f"organization {g.get('organization')}" for g in report.not_covered)
        problems.append(f"not covered (the key cannot reach it): {names}")
    if t["pending"] or t["failed"] or report.stopped:
        problems.append(f"the deletion job is not finished ({t['pending']:,} ids pending, "
                        f"{t['failed']:,} failed): resume it first")
    persons, events = counts["persons"], counts["events"]
    grace = counts.get("queued_grace_seconds")
    labels = {"found_again": "persons (or ids) are found again after the job deleted them",
              "not_deleted": "persons are still found after the grace period"
                             + (f" ({grace:g} s)" if isinstance(grace, (int, float)) else "")
                             + " since PostHog queued their deletion, never seen gone: "
                             "PostHog's deletion task did not run or failed",
              "check_failed": "lookups failed (run verify again)",
              "missing_after_batch": "persons have no event-deletion row although PostHog's "
                                     "batch has run since their deletion",
              "old_row_after_batch": "persons have only an event-deletion row older than this "
                                     "job (an earlier erasure's) although PostHog's batch has "
                                     "run since: this request's events are not proven deleted",
              "unverifiable": "ids' event deletions cannot be verified: the job never learnt "
                              "which person each named (no lookup: --no-resolve, or an "
                              "unresolved id), and PostHog's rows are kept by person"}
    for state, label in labels.items():
        count = persons.get(state, 0) + (0 if state == "check_failed" else events.get(state, 0))
        if count:
            problems.append(f"{count:,} {label}")
    if events.get("check_failed"):
        problems.append(f"{events['check_failed']:,} event deletions are not checked: PostHog's "
                        "deletion_status could not be read (run verify again)")
    ids = counts.get("distinct_ids") or {}
    if ids.get("reused"):
        problems.append(f"{ids['reused']:,} erased distinct ids now name another person "
                        "(a new uuid, created after the deletion: events kept arriving for them?)")
    if ids.get("check_failed"):
        problems.append(f"{ids['check_failed']:,} erased distinct ids could not be looked up "
                        "(run verify again)")
    if problems:
        return "failed", problems
    waiting = sum(n for s, n in persons.items() if s in PENDING | {"unchecked"})
    waiting += sum(n for s, n in events.items() if s in PENDING | {"unchecked"})
    if not options.get("delete_events"):
        waiting -= sum(n for s, n in events.items() if s == "unchecked")
    if waiting:
        return "pending", [f"{waiting:,} checks are waiting for PostHog"]
    if options.get("keep_person") and not options.get("delete_events"):
        return "unverifiable", ["nothing PostHog reports on: the job kept its persons and "
                                "recording deletions are not verifiable (PostHog reports no "
                                "status for them)"]
    assert not any(s in WRONG for s in (*persons, *events))
    return "verified", []
def _exactness(options: dict[str, Any], totals: dict[str, int], summary: dict[str, Any]) -> dict[str, Any]:
    """Which figures are exact, and why: the part of the proof a reader must not guess."""
    why: list[str] = []
    unsettled = totals.get("pending", 0) + totals.get("not_covered", 0)
    per_id = totals["unresolved"] == 0 and unsettled == 0
    if unsettled:
        why.append(f"{unsettled:,} ids are not settled (pending or not covered): nothing is "
                   "claimed about them yet")
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
    if options.get("resolve"):
        why.append("every chunk was looked up before it was sent, so each id's outcome comes "
                   "from PostHog's own answer about that id (a lookup that found nobody, after "
                   "this job deleted a person with 10 or more distinct ids, proves nothing: "
                   "such ids are 'unresolved')")
    if summary.get("maybe_wide"):
        why.append(f"{summary['maybe_wide']} ids were not found by their lookup after this job "
                   "had deleted a person with 10 or more distinct ids; PostHog's lookups show "
                   "10, so they may have been that person's: 'unresolved', not 'not found'")
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
