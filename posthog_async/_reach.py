"""Which projects a personal API key reaches: the recipe of ``posthog-api-notes.md``, in one place.

1. The key's own record (``GET /api/personal_api_keys/@current/``): any key may read it on
   current PostHog (``PersonalApiKeySelfAccessPermission``). Older versions sent it through
   ``APIScopePermission``, which refuses it to a key with ``scoped_teams`` and to one without
   ``personal_api_key:read``; then the recipe goes on without it: named projects are checked
   as always, and discovery starts from the organisations (where such a key gets PostHog's
   403, raised, so the caller learns to name its projects).
2. A key with ``scoped_teams`` reaches exactly those projects, and PostHog answers 403 on every
   organisation-level URL for it; so each scoped project is read directly
   (``GET /api/projects/:id/``) for its name, organisation and ``is_pending_deletion``.
3. Any other key: the organisations (``GET /api/organizations/``), kept to the key's
   ``scoped_organizations`` when it has some, then each organisation's project pages, and each
   project's detail for ``is_pending_deletion`` (list rows do not carry it). For a key scoped
   to organisations, the user's other memberships (``GET /api/users/@me/`` lists every one,
   whatever the key's scopes) are **not covered**: organisations the key may not touch, where
   the same persons may live. A key without ``user:read`` cannot tell: ``memberships_unknown``
   says so.

Projects the caller names are each read directly instead. Whatever PostHog refuses (403) or does
not have (404) is **not covered**, with PostHog's own message: a GDPR job must be able to say
which projects it could not reach, so nothing is silently left out. A 403 that names a missing
scope is the key's problem rather than a project's (every project would say the same): it is
raised. So is anything else (a 5xx after retries, a dropped connection): a discovery that did
not finish must never pass for a complete one.

Every call here is in PostHog's default ``burst``/``sustained`` throttles (the ``general``
bucket). The recipe never uses ``@current`` as a project: it follows the user's UI choice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ._concurrency import bounded_map
from ._exceptions import APIStatusError, NotFoundError, PermissionDeniedError
from ._org_models import Organization, PersonalAPIKey, Project
from .resources.organizations import Organizations
from .resources.personal_api_keys import PersonalAPIKeys
from .resources.projects import Projects, project_number
from .resources.users import Users

__all__ = ["NotCoveredProject", "ProjectReach", "reachable_projects"]

#: Project details read at once (a handful: they share the ``general`` bucket with the job).
DETAIL_CONCURRENCY = 4


@dataclass(frozen=True)
class NotCoveredProject:
    """A project (or, with ``id`` ``None``, a whole organisation whose projects could not be
    listed) that the key cannot reach, and PostHog's reason."""

    id: int | None
    organization: str | None
    #: PostHog's status; ``None`` when no call was made (outside the key's organisations).
    status_code: int | None
    message: str
    #: The organisation's name, where PostHog gave it (an organisation-level gap).
    organization_name: str | None = None


@dataclass(frozen=True)
class ProjectReach:
    """What :func:`reachable_projects` found.

    ``projects`` are reachable (``is_pending_deletion`` set where PostHog said); ``not_covered``
    are refused or missing, each with PostHog's message. ``via`` says how the list was made:
    ``"scoped_teams"``, ``"organizations"``, or ``"named"`` (the caller's ``project_ids``).
    """

    #: The key's own record; ``None`` when an older PostHog refused it (see the module doc).
    key: PersonalAPIKey | None
    via: Literal["scoped_teams", "organizations", "named"]
    projects: tuple[Project, ...]
    not_covered: tuple[NotCoveredProject, ...]
    #: Why the user's other organisations could not be listed (an organisation-scoped key
    #: without ``user:read``); ``None`` when they were, or did not matter.
    memberships_unknown: str | None = None

    @property
    def complete(self) -> bool:
        """True when every project asked for (or discovered) is reachable."""
        return not self.not_covered

    @property
    def ids(self) -> list[int]:
        """The reachable project ids, for ``ph.project(id)``."""
        return [p.id for p in self.projects]

    @property
    def pending_deletion(self) -> list[int]:
        """Reachable projects PostHog is already deleting."""
        return [p.id for p in self.projects if p.is_pending_deletion]


class _Refused(Exception):
    """A 403 or 404 about one project or organisation (not about the key)."""

    def __init__(self, error: APIStatusError) -> None:
        super().__init__(error.detail or str(error))
        self.status_code = error.status_code
        self.message = error.detail or error.message


async def _guarded(call: Awaitable[Project]) -> Project:
    try:
        return await call
    except (PermissionDeniedError, NotFoundError) as error:
        if isinstance(error, PermissionDeniedError) and error.missing_scope:
            raise  # the key lacks a scope: true of every project, not a fact about this one
        raise _Refused(error) from None


async def _details(
    ids: Sequence[int], read: Callable[[int], Awaitable[Project]], organization: str | None,
) -> tuple[list[Project], list[NotCoveredProject]]:
    """Read every project's detail (a few at once), keeping the order of ``ids``."""
    found: dict[int, Project] = {}
    refused: dict[int, NotCoveredProject] = {}
    results = bounded_map(ids, lambda pid: _guarded(read(pid)), limit=DETAIL_CONCURRENCY)
    try:
        async for pid, project, error in results:
            if isinstance(error, _Refused):
                refused[pid] = NotCoveredProject(pid, organization, error.status_code, error.message)
            elif error is not None:
                raise error
            elif project is not None:
                found[pid] = project
    finally:
        await results.aclose()
    return ([found[i] for i in ids if i in found], [refused[i] for i in ids if i in refused])


def _named(project_ids: Iterable[int | str]) -> list[int]:
    if isinstance(project_ids, (str, bytes, int)):
        raise TypeError("project_ids must be a list of project numbers")
    return list(dict.fromkeys(project_number(pid, "project id") for pid in project_ids))


async def _organization_projects(
    org: Organization, organizations: Organizations,
) -> tuple[list[Project], list[NotCoveredProject]]:
    try:
        rows = [row async for row in organizations.projects(org.id)]
    except (PermissionDeniedError, NotFoundError) as error:
        if isinstance(error, PermissionDeniedError) and error.missing_scope:
            raise
        refused = _Refused(error)
        known: list[int | None] = [p.id for p in org.projects] or [None]  # the org row names them
        return [], [NotCoveredProject(pid, org.id, refused.status_code, refused.message,
                                      org.name if pid is None else None)
                    for pid in known]
    return await _details([row.id for row in rows],
                          lambda pid: organizations.project(org.id, pid), org.id)


async def _direct(ids: list[int], via: Literal["named", "scoped_teams"],
                  key: PersonalAPIKey | None, projects: Projects) -> ProjectReach:
    found, refused = await _details(ids, projects.retrieve, None)
    return ProjectReach(key, via, tuple(found), tuple(refused))


async def reachable_projects(
    keys: PersonalAPIKeys, organizations: Organizations, projects: Projects,
    *, project_ids: Iterable[int | str] | None = None, users: Users | None = None,
) -> ProjectReach:
    """The projects the key reaches, and those it cannot, following PostHog's own rules.

    With ``project_ids`` only those are checked (each read directly); otherwise every project
    the key reaches is discovered. See the module docstring for the recipe and what is raised.
    ``users``: to name the user's organisations an organisation-scoped key leaves out.
    """
    named = None if project_ids is None else _named(project_ids)
    try:
        key: PersonalAPIKey | None = await keys.current()
    except PermissionDeniedError:
        key = None  # an older PostHog: the record needs a scope, and is refused to team keys
    if named is not None:
        return await _direct(named, "named", key, projects)
    if key is not None and key.team_scoped:
        return await _direct(list(dict.fromkeys(key.scoped_teams or ())), "scoped_teams", key,
                             projects)
    scoped = {o.lower() for o in (key.scoped_organizations if key else None) or ()}
    all_found: list[Project] = []
    all_refused: list[NotCoveredProject] = []
    unknown = None
    if scoped and users is not None:
        try:
            all_refused += _outside(scoped, (await users.retrieve()).organizations or [])
        except PermissionDeniedError as error:
            why = error.detail or str(error)
            unknown = (f"the user's other organisations could not be listed ({why}): projects "
                       "outside the key's organisations may hold the persons")
    async for org in organizations.list():
        if scoped and org.id.lower() not in scoped:
            continue  # outside the key's organisations: PostHog filters these out too
        found, refused = await _organization_projects(org, organizations)
        all_found += found
        all_refused += refused
    return ProjectReach(key, "organizations", tuple(all_found), tuple(all_refused), unknown)


def _outside(scoped: set[str], memberships: list[dict[str, object]]) -> list[NotCoveredProject]:
    """The user's organisations the key is not scoped to: not covered, said why."""
    gaps = []
    for org in memberships:
        org_id = str(org.get("id") or "")
        if org_id and org_id.lower() not in scoped:
            gaps.append(NotCoveredProject(
                None, org_id, None, f"organisation '{org.get('name')}' (the key's user is a "
                "member) is outside this key's scoped organisations: its projects were not "
                "searched (use a key scoped to it, or to every organisation)",
                str(org.get("name") or "") or None))
    return gaps
