"""Organisations and projects: who may see which project, which key may reach it, and how
PostHog's serializers show them (``posthog-api-notes.md``, "Which projects a key reaches").

Access follows ``APIScopePermission.check_team_and_org_permissions`` (``posthog/permissions.py``,
index id 141247339), in its order: an organisation that does not allow personal API keys to
non-admins refuses them first, then a key's ``scoped_teams``, then its ``scoped_organizations``.
A project the user may not see (``private`` and not an organisation admin) is invisible to every
listing (``team_ids_visible_for_user``) and refused on its own URLs ("You don't have access to
the project.", ``AccessControlPermission``).
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from ._errors import not_found, permission_denied
from ._keys import FakeKey
from ._store import ProjectData

__all__ = ["FakeOrganization", "Directory", "ADMIN", "OWNER", "MEMBER", "TEAM_SCOPED_ONLY"]

MEMBER, ADMIN, OWNER = 1, 8, 15
_WHEN = "2024-01-01T00:00:00Z"
#: The 403 for a key with ``scoped_teams`` on any URL without a team in it.
TEAM_SCOPED_ONLY = "API keys with scoped projects are only supported on project-based endpoints."
_NO_PROJECT_ACCESS = "You don't have access to the project."


@dataclass
class FakeOrganization:
    """An organisation of the offline PostHog: the key's user's membership level there, and whether
    it lets members use personal API keys."""

    id: str
    name: str
    #: The key's user's level here: 1 member, 8 admin, 15 owner.
    membership_level: int = OWNER
    #: ``members_can_use_personal_api_keys``: when false, non-admins' keys are refused here.
    members_can_use_personal_api_keys: bool = True
    is_pending_deletion: bool = False

    def refuses_keys(self) -> bool:
        return not self.members_can_use_personal_api_keys and self.membership_level < ADMIN

    def refusal(self) -> str:
        return (f"Organization '{self.name}' does not allow using personal API keys. Contact an "
                "admin to enable personal API keys for this organization.")


class Directory:
    """The organisations of the fake's one user, and the rules that say who reaches what."""

    def __init__(self, projects: dict[int, ProjectData]) -> None:
        self.projects = projects
        self.organizations: dict[str, FakeOrganization] = {}

    def add(self, org: FakeOrganization) -> FakeOrganization:
        if org.id in self.organizations:
            raise ValueError(f"organization {org.id} exists")
        self.organizations[org.id] = org
        return org

    def memberships(self) -> list[dict[str, Any]]:
        """``/api/users/@me/``'s ``organizations``: every one of the user's, whatever a key's
        scopes (``OrganizationBasicSerializer``)."""
        return [{"id": o.id, "name": o.name, "slug": o.name.lower().replace(" ", "-"),
                 "logo_media_id": None, "membership_level": o.membership_level}
                for o in self.organizations.values()]

    def organization_of(self, project: ProjectData) -> FakeOrganization:
        return self.organizations[project.organization_id]

    def visible(self, project: ProjectData) -> bool:
        """``team_ids_visible_for_user``: private projects only for organisation admins."""
        return not project.private or self.organization_of(project).membership_level >= ADMIN

    def projects_of(self, org: FakeOrganization) -> list[ProjectData]:
        return [p for _, p in sorted(self.projects.items())
                if p.organization_id == org.id and self.visible(p)]

    # -- access ----------------------------------------------------------------------------

    def check_team(self, key: FakeKey, project: ProjectData) -> None:
        """A project-scoped URL (``/api/projects/:id/...``): 403s in PostHog's order."""
        org = self.organization_of(project)
        if org.refuses_keys():
            raise permission_denied(org.refusal())
        if key.projects and project.id not in key.projects:
            raise permission_denied(
                f"API key does not have access to the requested project: ID {project.id}.")
        if key.organizations and org.id not in key.organizations:
            raise permission_denied(
                f"API key does not have access to the requested organization: ID {org.id}.")
        if not self.visible(project):
            raise permission_denied(_NO_PROJECT_ACCESS)

    def check_listing(self, key: FakeKey) -> None:
        """A URL with no team in it (every list, ``/api/organizations/...``)."""
        if key.projects:
            raise permission_denied(TEAM_SCOPED_ONLY)

    def organization(self, key: FakeKey, raw_id: str, *, nested: bool) -> FakeOrganization:
        """The organisation of ``/api/organizations/:id/...``. Its own detail filters out
        organisations outside the key's scope (404); nested URLs answer 403 for them."""
        self.check_listing(key)
        try:
            org_id = str(uuidlib.UUID(raw_id))
        except ValueError:
            raise not_found("Organization not found." if nested else "Not found.") from None
        org = self.organizations.get(org_id)
        if org is None or (not nested and key.organizations and org_id not in key.organizations):
            raise not_found("Organization not found." if nested else "Not found.")
        if org.refuses_keys():
            raise permission_denied(org.refusal())
        if key.organizations and org_id not in key.organizations:
            raise permission_denied(
                f"API key does not have access to the requested organization: ID {org_id}.")
        return org

    def reachable_organizations(self, key: FakeKey) -> list[FakeOrganization]:
        return [o for o in self.organizations.values()
                if not key.organizations or o.id in key.organizations]

    # -- how PostHog shows them -------------------------------------------------------------

    def team_row(self, project: ProjectData) -> dict[str, Any]:
        """``TeamBasicSerializer`` (``/api/environments/``, organisations' ``teams``)."""
        return {"id": project.id, "uuid": _team_uuid(project.id),
                "organization": project.organization_id, "project_id": project.id,
                **_basic(project)}

    def project_row(self, project: ProjectData) -> dict[str, Any]:
        """``ProjectBackwardCompatBasicSerializer`` (``/api/projects/``, organisations'
        project pages)."""
        return {"id": project.id, "uuid": _team_uuid(project.id),
                "organization": project.organization_id, **_basic(project)}

    def project_detail(self, project: ProjectData) -> dict[str, Any]:
        """A project's own URL: the row, ``is_pending_deletion`` and a few settings (the real
        detail carries many more, which no client of ours reads)."""
        return {**self.project_row(project), "is_pending_deletion": project.is_pending_deletion,
                "created_at": _WHEN, "updated_at": _WHEN, "product_description": None,
                "effective_membership_level": self.organization_of(project).membership_level}

    def organization_row(self, org: FakeOrganization) -> dict[str, Any]:
        """``OrganizationSerializer``, with the user's visible ``teams`` and ``projects``."""
        visible = self.projects_of(org)
        return {
            "id": org.id, "name": org.name, "slug": _slug(org.name), "logo_media_id": None,
            "created_at": _WHEN, "updated_at": _WHEN, "membership_level": org.membership_level,
            "plugins_access_level": 9, "teams": [self.team_row(p) for p in visible],
            "projects": [{"id": p.id, "organization_id": org.id, "name": p.name} for p in visible],
            "available_product_features": [], "is_member_join_email_enabled": True,
            "metadata": {"instance_tag": "none"}, "customer_id": None, "enforce_2fa": None,
            "members_can_invite": True,
            "members_can_use_personal_api_keys": org.members_can_use_personal_api_keys,
            "allow_publicly_shared_resources": True, "member_count": 1,
            "is_ai_data_processing_approved": None, "default_experiment_stats_method": "bayesian",
            "default_anonymize_ips": False, "default_role_id": None, "is_active": True,
            "is_not_active_reason": None, "is_pending_deletion": org.is_pending_deletion,
        }


def _basic(project: ProjectData) -> dict[str, Any]:
    return {"api_token": f"phc_fake_project_token_{project.id}", "name": project.name,
            "completed_snippet_onboarding": True, "has_completed_onboarding_for": None,
            "ingested_event": True, "is_demo": project.is_demo, "timezone": "UTC",
            "access_control": project.private}


def _team_uuid(project_id: int) -> str:
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"posthog-team:{project_id}"))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "org"
