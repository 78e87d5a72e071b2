"""Typed answers about the key itself, its organisations and their projects (msgspec).

These are what an organisation-wide job reads before it touches a person: the key's own record,
the organisations the key's user belongs to, and their projects. Like every model here, unknown
fields are ignored and every field PostHog may leave out has a default.

The key's record is decoded without ``value`` and ``mask_value``: PostHog sends ``value`` only
when a key is created, and the mask carries the key's last characters, which no repr, log or
report of ours should show.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ._models import Model

__all__ = ["PersonalAPIKey", "Organization", "Project", "ProjectBasic"]


class PersonalAPIKey(Model):
    """``GET /api/personal_api_keys/@current/``: the key's own record.

    ``scopes`` is ``["*"]`` for a key without scopes (PostHog's serializer says so). A key with
    ``scoped_teams`` reaches exactly those projects and nothing organisation-level; one with
    ``scoped_organizations`` reaches only those organisations. Either may be ``None`` or empty
    for "no restriction".
    """

    id: str | None = None
    label: str | None = None
    user_id: int | None = None
    scopes: list[str] = msgspec.field(default_factory=list)
    scoped_teams: list[int] | None = None
    scoped_organizations: list[str] | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    last_rolled_at: datetime | None = None

    @property
    def team_scoped(self) -> bool:
        """True when the key may call only the projects in ``scoped_teams``."""
        return bool(self.scoped_teams)


class ProjectBasic(Model):
    """A project as an organisation row lists it (``ProjectBasicSerializer``)."""

    id: int
    organization_id: str | None = None
    name: str | None = None


class Project(Model):
    """A project (``/api/projects/``, an organisation's project pages) or an environment (team:
    ``/api/environments/``, which adds ``project_id``).

    ``is_pending_deletion`` comes only with a project's detail (``ph.projects.retrieve``);
    list rows leave it ``None`` (unknown), never ``False``.
    """

    id: int
    uuid: str | None = None
    organization: str | None = None
    project_id: int | None = None
    name: str | None = None
    is_demo: bool | None = None
    timezone: str | None = None
    is_pending_deletion: bool | None = None
    created_at: datetime | None = None


class Organization(Model):
    """An organisation the key's user belongs to (``OrganizationSerializer``).

    ``teams`` and ``projects`` hold only what the user may see (private projects are left out
    for non-admins). ``membership_level``: 1 member, 8 admin, 15 owner.
    """

    id: str
    name: str | None = None
    slug: str | None = None
    membership_level: int | None = None
    members_can_use_personal_api_keys: bool | None = None
    teams: list[Project] = msgspec.field(default_factory=list)
    projects: list[ProjectBasic] = msgspec.field(default_factory=list)
    is_active: bool | None = None
    is_pending_deletion: bool | None = None
    created_at: datetime | None = None
