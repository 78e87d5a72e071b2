"""The fake's organisations and projects, as knobs on :class:`FakePostHog` (a mixin, so the
server module keeps to its lifecycle and dispatch)."""

from __future__ import annotations

import uuid as uuidlib

from ._definitions import seed_definitions
from ._projects import OWNER, Directory, FakeOrganization
from ._store import FakePerson, ProjectData

__all__ = ["OrganizationKnobs"]


class OrganizationKnobs:
    """Needs ``projects``, ``directory``, ``default_organization``, ``_seed`` and
    ``_event_deletion_delay`` (set by ``FakePostHog.__init__``)."""

    projects: dict[int, ProjectData]
    directory: Directory
    default_organization: FakeOrganization
    _seed: int
    _event_deletion_delay: float | None

    def add_organization(self, name: str, *, organization_id: str | None = None,
                         membership_level: int = OWNER,
                         members_can_use_personal_api_keys: bool = True) -> FakeOrganization:
        """Another organisation of the keys' user. ``membership_level`` 1 (member) hides its
        private projects; with ``members_can_use_personal_api_keys=False`` a member's keys are
        refused on all of it, as PostHog refuses them."""
        org_id = organization_id or str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"posthog-org:{name}"))
        return self.directory.add(FakeOrganization(
            org_id, name, membership_level=membership_level,
            members_can_use_personal_api_keys=members_can_use_personal_api_keys))

    def add_project(self, project_id: int, *, organization: FakeOrganization | str | None = None,
                    name: str | None = None, private: bool = False, is_demo: bool = False,
                    pending_deletion: bool = False) -> ProjectData:
        """Another project (team), in ``organization`` (default: the first one). ``private``
        projects are seen only by organisation admins; ``pending_deletion`` is PostHog's
        ``is_pending_deletion``. Persons are per project: seed them with ``project_id=``."""
        if project_id in self.projects:
            raise ValueError(f"project {project_id} exists")
        org = organization if organization is not None else self.default_organization
        org_id = org.id if isinstance(org, FakeOrganization) else org
        if org_id not in self.directory.organizations:
            raise ValueError(f"unknown organization {org_id}")
        project = ProjectData(project_id, seed=self._seed + project_id, organization_id=org_id,
                              name=name, private=private, is_demo=is_demo,
                              is_pending_deletion=pending_deletion)
        project.event_deletion_delay = self._event_deletion_delay
        seed_definitions(project)
        self.projects[project_id] = project
        return project

    @property
    def event_deletion_delay(self) -> float | None:
        """Seconds after a ``delete_events`` request its ``deletion_status`` row turns
        ``completed`` (PostHog's weekly batch, made short); ``None``: only
        :meth:`verify_event_deletions` completes rows."""
        return self._event_deletion_delay

    @event_deletion_delay.setter
    def event_deletion_delay(self, seconds: float | None) -> None:
        self._event_deletion_delay = seconds
        for project in self.projects.values():
            project.event_deletion_delay = seconds

    def persons_with(self, distinct_id: str) -> dict[int, FakePerson]:
        """The truth across projects: each project's (live) person holding ``distinct_id``."""
        return {pid: p.by_distinct_id[distinct_id] for pid, p in self.projects.items()
                if distinct_id in p.by_distinct_id}


    def seed_persons_across(self, n: int, *, project_ids: list[int] | None = None,
                            overlap: float = 0.0) -> None:
        """Seed ``n`` persons in each project (default: all). The first ``round(n * overlap)``
        have the same distinct ids in every project (``user-1``, ... and ``anon-3``, ...: one
        person each, with its own UUID, in each project); the rest are the project's own
        (``p<project>-user-<i>``, ``p<project>-anon-<i>``). Projects must be empty, so the
        shared ids line up."""
        if not 0.0 <= overlap <= 1.0:
            raise ValueError("overlap must be between 0 and 1")
        chosen = [self.projects[pid] for pid in (project_ids or list(self.projects))]
        if any(p.persons for p in chosen):
            raise ValueError("seed_persons_across needs empty projects")
        shared = round(n * overlap)
        for project in chosen:
            project.seed_persons(shared, prefix="user-")
            project.seed_persons(n - shared, prefix=f"p{project.id}-user-",
                                 anon_prefix=f"p{project.id}-anon-")
