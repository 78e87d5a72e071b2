"""A deletion job's projects: which it was asked for, which it covers, and checking that a resume
asks for the same.

An erasure request names a person, not a project, and one distinct id can be a person in several
projects. A job is given its projects one of three ways:

- the client's own project (``projects=None``: one project, as before; not read first, so the key
  needs no ``project:read``);
- named projects (``projects=[12, 34]``), each read first (``ph.reachable_projects(ids)``) for its
  name, organisation and ``is_pending_deletion``; a key without ``project:read`` skips the read
  (a project it cannot reach shows at its first call instead);
- every project the key reaches (``projects="all"``, less ``exclude_projects``), discovered the
  way PostHog decides it (:func:`~posthog_async._reach.reachable_projects`).

The set is recorded in the journal before the input is loaded, with every project the key cannot
reach as **not covered** (PostHog's status and message) and every excluded one. A resume must ask
for the same set (or nothing: the journal's); it re-reads the recorded projects (a project the
key may reach now is covered again) but never adds one. A journal written before projects were
recorded (formats 3 and 4: one project) takes the one project its first resume names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import anyio

from .. import _chunk_step
from .._client import ScopedPostHog
from .._exceptions import (
    APIConnectionError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from .._reach import NotCoveredProject, ProjectReach
from .._org_models import Project
from ..resources.projects import project_number
from ._input_bytes import InputError
from ._journal import Journal
from ._journal_projects import JobProject
from ._lock import utc_now

__all__ = ["ALL_PROJECTS", "JOURNAL_PROJECTS", "ProjectSelection", "Projects", "refused_project",
           "selection_for"]

ALL_PROJECTS = "all"
"""``DeletionJob(..., projects=ALL_PROJECTS)``: every project the key reaches."""
#: ``DeletionJob(..., projects=JOURNAL_PROJECTS)``: the projects the journal records (a resume,
#: a verification), else the client's project: a default project in the environment never
#: conflicts with the journal's.
JOURNAL_PROJECTS = "journal"
ProjectsArg = Iterable[int | str] | Literal["all", "journal"] | ProjectReach | None
Db = Callable[..., Awaitable[Any]]
T = TypeVar("T")
Notice = Callable[[str], object]
_SELECTION = "project_selection"
_ORG_GAPS = "not_covered_organizations"


@dataclass(frozen=True)
class ProjectSelection:
    """What the job was asked to cover: every project (``all``, less ``exclude``), or ``ids``.
    ``checked``: read each project before starting (named and discovered projects are)."""

    all: bool = False
    ids: tuple[int, ...] = ()
    exclude: tuple[int, ...] = ()
    checked: bool = True
    reach: ProjectReach | None = field(default=None, compare=False)

    def as_meta(self) -> dict[str, Any]:
        return {"all": self.all, "ids": sorted(self.ids), "exclude": sorted(self.exclude),
                "checked": self.checked}

    def same_as(self, recorded: dict[str, Any]) -> bool:
        if self.all != bool(recorded.get("all")):
            return False
        if self.all:
            return set(self.exclude) == set(recorded.get("exclude") or ())
        return set(self.ids) == set(recorded.get("ids") or ())


def describe(selection: dict[str, Any]) -> str:
    """``every project the key reaches (except 5)``, ``projects 1, 2``, ``project 1``."""
    if selection.get("all"):
        left_out = selection.get("exclude") or []
        return "every project the key reaches" + (
            f" except {', '.join(map(str, left_out))}" if left_out else "")
    ids = selection.get("ids") or []
    return ("project " if len(ids) == 1 else "projects ") + ", ".join(map(str, ids))


def _number(value: int | str, what: str) -> int:
    pid = project_number(value, what)
    if pid < 1:
        raise ValueError(f"{what} must be a project number (1 or more), got {value!r}")
    return pid


def selection_for(projects: ProjectsArg, exclude: Iterable[int | str],
                  client: ScopedPostHog) -> ProjectSelection | None:
    """The selection ``DeletionJob(projects=..., exclude_projects=...)`` asks for; ``None``
    when nothing says (no project given and none on the client: the journal's, on resume)."""
    left_out = tuple(dict.fromkeys(_number(p, "--exclude-project (exclude_projects)")
                                   for p in exclude))
    if isinstance(projects, ProjectReach):
        all_of_them = projects.via != "named"
        ids = (*projects.ids, *(gap.id for gap in projects.not_covered if gap.id is not None))
        if left_out and not all_of_them:
            raise ValueError("exclude_projects goes with every project the key reaches")
        return ProjectSelection(all_of_them, () if all_of_them else tuple(dict.fromkeys(ids)),
                                left_out, True, projects)
    if projects == ALL_PROJECTS:
        return ProjectSelection(True, (), left_out)
    if projects == JOURNAL_PROJECTS and not left_out:
        return None
    if left_out:
        raise ValueError('exclude_projects goes with projects="all" (name the projects instead)')
    if isinstance(projects, str):
        raise ValueError(f'projects must be a list of project numbers or "all", got {projects!r}')
    if projects is not None:
        ids = tuple(dict.fromkeys(_number(p, "projects") for p in projects))
        if not ids:
            raise ValueError("projects is empty: name at least one project")
        return ProjectSelection(False, ids)
    if client.scope.id is None:
        return None
    return ProjectSelection(False, (_number(client.scope.id, "project_id"),), checked=False)


def refused_project(error: BaseException) -> PermissionDeniedError | NotFoundError | None:
    """The 403/404 that says the key cannot reach a project (not a missing scope: that is the
    key's, true of every project), unwrapped from a chunk's failure."""
    cause = getattr(error, "cause", error)
    if isinstance(cause, NotFoundError):
        return cause
    if isinstance(cause, PermissionDeniedError) and not cause.missing_scope:
        return cause
    return None


def _covered(project: Project) -> JobProject:
    return JobProject(project.id, project.name, project.organization,
                      project.is_pending_deletion, "covered", checked_at=utc_now())


def _gap(gap: NotCoveredProject) -> JobProject:
    return JobProject(gap.id or 0, organization=gap.organization, state="not_covered",
                      status_code=gap.status_code, message=gap.message, checked_at=utc_now())


class Projects:
    """The job's project set, decided (or checked) at the start of each run."""

    def __init__(self, client: ScopedPostHog, selection: ProjectSelection | None, db: Db,
                 notice: Notice, *, patience: float = 600.0,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.client, self.selection, self.db, self.notice = client, selection, db, notice
        self.patience, self.should_stop = patience, should_stop
        self.rows: list[JobProject] = []
        #: Without a selection: the client's own project, where the journal records none.
        self.fallback = (None if selection is not None or client.scope.id is None else
                         ProjectSelection(False, (_number(client.scope.id, "project_id"),),
                                          checked=False))

    def view(self, project: int) -> ScopedPostHog:
        """The client for ``project``: the client itself for its own project, else a view (one
        pool, one concurrency cap and one set of rate-limit buckets: PostHog's are per key)."""
        if self.client.scope.id is not None and str(self.client.scope.id) == str(project):
            return self.client
        return self.client.project(project)

    @property
    def covered(self) -> list[int]:
        return [p.id for p in self.rows if p.state == "covered"]

    @property
    def in_job(self) -> list[int]:
        """The projects whose ids the journal holds: covered and not covered."""
        return [p.id for p in self.rows if p.state != "excluded"]

    async def settle(self, journal: Journal, *, loaded: bool) -> list[JobProject]:
        """Decide the project set (first run) or check it against the journal (resume), record
        it, and return it. Raises :class:`InputError` for a resume that asks for other projects."""
        recorded = await self.db(journal.get_meta, _SELECTION)
        if loaded and recorded is None:
            await self._adopt(journal)
        elif loaded:
            if self.selection is None:
                self.selection = ProjectSelection(bool(recorded.get("all")),
                                                  tuple(recorded.get("ids") or ()),
                                                  tuple(recorded.get("exclude") or ()),
                                                  bool(recorded.get("checked", True)))
            elif not self.selection.same_as(recorded):
                raise InputError(
                    f"journal {journal.path} was started for {describe(recorded)}, not "
                    f"{describe(self.selection.as_meta())}: resume with the same projects (or "
                    "none: the journal's), or start a new job with --journal NEW")
            await self._recheck(journal)
        else:
            await self._first(journal)
        self.rows = await self.db(journal.job_projects)
        for row in self.rows:
            if row.state == "covered" and row.is_pending_deletion:
                self.notice(f"project {row.id}{_named(row)} is pending deletion in PostHog; "
                            "its persons are deleted one by one all the same")
        return self.rows

    async def _adopt(self, journal: Journal) -> None:
        """A journal of an older version (one project, not recorded): record the one project
        this run names."""
        sel = self.selection or self.fallback
        if sel is None or sel.all or len(sel.ids) != 1:
            raise InputError(
                f"journal {journal.path} was written by an older version for one project, which "
                "it did not record: resume it with that one project (--project-id ID)")
        project = JobProject(sel.ids[0], checked_at=utc_now())
        await self.db(journal.adopt, project)
        await self.db(journal.set_meta, _SELECTION, sel.as_meta())
        self.selection = sel
        self.notice(f"this journal did not record its project (an older version wrote it): it "
                    f"is now recorded as project {project.id}, the one this run was given")

    async def _first(self, journal: Journal) -> None:
        sel = self.selection = self.selection or self.fallback
        if sel is None:
            raise InputError("no project: give the client a project_id, or projects=[...] "
                             "(--project-id ID, or --all-projects)")
        rows: list[JobProject] = []
        if sel.all:
            reach = sel.reach
            if reach is None:
                reach = await self._patiently(lambda: self.client.reachable_projects())
            rows = [_covered(p) for p in reach.projects]
            rows += [_gap(g) for g in reach.not_covered if g.id is not None]
            orgs = [{"organization": g.organization, "name": g.organization_name,
                     "status_code": g.status_code,
                     "message": g.message} for g in reach.not_covered if g.id is None]
            found = {row.id for row in rows}
            unknown = [pid for pid in sel.exclude if pid not in found]
            if unknown:  # a typo would erase the project meant to be kept out
                raise InputError(
                    f"--exclude-project (exclude_projects) {', '.join(map(str, unknown))}: the "
                    f"key reaches no such project (it reaches {', '.join(map(str, sorted(found)))}"
                    "); nothing was deleted: check the number")
            self._memberships(reach)
            await self.db(journal.set_meta, _ORG_GAPS, orgs)
            rows = [JobProject(r.id, r.name, r.organization, r.is_pending_deletion, "excluded",
                               checked_at=r.checked_at) if r.id in sel.exclude else r
                    for r in rows]
        elif sel.checked:
            rows = await self._read(list(sel.ids), sel.reach)
        else:
            rows = [JobProject(sel.ids[0], checked_at=utc_now())]
        if not any(row.state != "excluded" for row in rows):
            raise InputError("no project to work in: the key reaches none"
                             + (" besides the excluded ones" if sel.exclude else ""))
        await self.db(lambda: journal.record_projects(rows, replace=True))
        await self.db(journal.set_meta, _SELECTION, sel.as_meta())

    async def _read(self, ids: list[int], reach: ProjectReach | None = None) -> list[JobProject]:
        """Named projects, each read for its details; a key without ``project:read`` is let
        through unread (its first call in a project it cannot reach says so instead)."""
        if reach is None:
            try:
                reach = await self._patiently(lambda: self.client.reachable_projects(ids))
            except PermissionDeniedError as error:
                if error.missing_scope is None:
                    raise
                self.notice(f"cannot read the projects' details (the key lacks "
                            f"'{error.missing_scope}'): each is tried by its first call "
                            "instead, and whether PostHog is deleting it is not known")
                return [JobProject(pid, checked_at=utc_now()) for pid in ids]
        found = {p.id: _covered(p) for p in reach.projects}
        found.update({g.id: _gap(g) for g in reach.not_covered if g.id is not None})
        return [found.get(pid, JobProject(pid, checked_at=utc_now())) for pid in ids]

    async def _recheck(self, journal: Journal) -> None:
        """A resume: the recorded projects, read again (a refusal may have been fixed). For
        every project the key reaches, discovery runs again: the organisations it could not
        list are brought up to date, and a project created since is named, not added."""
        rows: list[JobProject] = await self.db(journal.job_projects)
        ids = [row.id for row in rows if row.state != "excluded"]
        assert self.selection is not None
        if not self.selection.checked:
            await self.db(journal.record_projects, [JobProject(p, checked_at=utc_now()) for p in ids])
            return
        if not self.selection.all:
            await self.db(journal.record_projects, await self._read(ids))
            return
        reach = await self._patiently(lambda: self.client.reachable_projects())
        found = {p.id: _covered(p) for p in reach.projects}
        found.update({g.id: _gap(g) for g in reach.not_covered if g.id is not None})
        missing = [pid for pid in ids if pid not in found]
        fresh = [found[pid] for pid in ids if pid in found] + (await self._read(missing)
                                                               if missing else [])
        await self.db(journal.record_projects, fresh)
        gaps: list[dict[str, Any]] = [
            {"organization": g.organization, "name": g.organization_name,
             "status_code": g.status_code, "message": g.message}
            for g in reach.not_covered if g.id is None]
        known = {row.id for row in rows}
        began = await self.db(journal.get_meta, "created_at")
        for pid in found:
            if pid not in known:
                # The job claims every project the key reaches: one it does not hold is a gap
                # in that claim (the notes: never an organisation done while a listed project
                # is not covered), not a footnote.
                self.notice(f"project {pid}{_named(found[pid])} appeared since this job started: "
                            "it is not part of this job (start another job for it)")
                gaps.append({"id": pid, "name": found[pid].name,
                             "organization": found[pid].organization, "status_code": None,
                             "message": f"appeared after this job started ({began}): not part "
                                        "of this job; erase there with another job"})
        self._memberships(reach)
        await self.db(journal.set_meta, _ORG_GAPS, gaps)

    def _memberships(self, reach: ProjectReach) -> None:
        if reach.memberships_unknown:
            self.notice(reach.memberships_unknown)

    async def _patiently(self, call: Callable[[], Awaitable[T]]) -> T:
        """Reading projects is safe to repeat: PostHog's rate limit is waited out, and failures
        that may heal (5xx, a dropped connection) are retried for ``patience`` seconds, as a
        chunk's are. A discovery that still fails is raised: it never passes for a complete one."""
        started, attempt = anyio.current_time(), 0
        while True:
            attempt += 1
            try:
                return await call()
            except RateLimitError as error:
                wait = error.retry_after if error.retry_after is not None else \
                    _chunk_step._backoff(attempt)
            except (InternalServerError, APIConnectionError) as error:
                if _chunk_step.is_fatal(error) or anyio.current_time() - started > self.patience:
                    raise
                wait = _chunk_step._backoff(attempt)
            end = anyio.current_time() + wait
            while anyio.current_time() < end and not self.should_stop():
                await anyio.sleep(min(0.2, end - anyio.current_time()))

    async def organization_gaps(self, journal: Journal) -> list[dict[str, Any]]:
        gaps: list[dict[str, Any]] = await self.db(journal.get_meta, _ORG_GAPS) or []
        return gaps


def _named(row: JobProject) -> str:
    return f" ({row.name})" if row.name else ""
