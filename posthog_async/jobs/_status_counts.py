"""``persons delete --deletion-status``: a count of PostHog's event-deletion rows for a job's
persons, per status, in total and per project (``verify`` checks them person by person)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .._exceptions import PostHogError
from ._job_projects import Projects
from ._journal import Journal

__all__ = ["deletion_status_counts"]


async def deletion_status_counts(journal: Journal, projects: Projects,
                                 db: Callable[..., Any], notice: Callable[[str], object]) -> dict[str, Any]:
    """PostHog's event-deletion rows for the job's persons, counted per status (newest first,
    since the job began), in total and per covered project; a failure becomes a note."""
    try:
        created: str = await db(journal.get_meta, "created_at")
        since = datetime.fromisoformat(created.replace("Z", "+00:00"))
        counts: dict[str, Any] = {"persons_matched": 0, "projects": {}}
        for project in projects.covered:
            persons: set[str] = await db(journal.persons, project)
            mine: dict[str, int] = {"persons_matched": len(persons)}
            counts["persons_matched"] += len(persons)
            if persons:
                async for row in projects.view(project).persons.deletion_status(status="all"):
                    if row.created_at is not None and row.created_at < since:
                        break
                    if row.person_uuid in persons:
                        key = row.status or "unknown"
                        mine[key] = mine.get(key, 0) + 1
                        counts[key] = counts.get(key, 0) + 1
            counts["projects"][str(project)] = mine
        if len(counts["projects"]) < 2:  # one project: the totals say it all
            del counts["projects"]
        if not counts["persons_matched"]:
            counts["note"] = "no person of this job is known by uuid (use ids or --resolve)"
        return counts
    except PostHogError as error:
        notice(f"could not read PostHog's event deletion status: {error}")
        return {"error": f"{type(error).__name__}: {error}"}
