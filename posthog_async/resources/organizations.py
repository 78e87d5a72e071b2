"""``ph.organizations``: the organisations the key's user belongs to, and their project pages.

Scopes ``organization:read`` (organisations) and ``project:read`` (project pages). A key scoped
to projects (``scoped_teams``) gets 403 "API keys with scoped projects are only supported on
project-based endpoints." on all of these; a key scoped to organisations sees only those.
PostHog counts these calls in its default ``burst``/``sustained`` throttles (the ``general``
bucket): ``OrganizationViewSet`` and ``ProjectViewSet`` declare no throttle of their own
(``posthog/api/organization.py`` index id 53246274, ``posthog/api/project.py`` index id
2451049440, defaults in ``posthog/settings/web.py`` index id 58505751638).
"""

from __future__ import annotations

from urllib.parse import quote

from .._org_models import Organization, Project
from .._pagination import AsyncPaginator
from .._validation import require_uuid
from ._base import Resource
from .projects import project_number

__all__ = ["Organizations"]


def _org(organization_id: str) -> str:
    return quote(require_uuid(organization_id, "organization_id"), safe="")


class Organizations(Resource):
    """``/api/organizations/`` and ``/api/organizations/:id/projects/``."""

    def list(self, *, limit: int | None = None, offset: int | None = None) -> AsyncPaginator[Organization]:
        """``GET /api/organizations/``: every organisation the key's user belongs to (narrowed
        to the key's ``scoped_organizations``), each with the ``projects`` the user may see.

        Example::

            async for org in ph.organizations.list():
                print(org.name, [p.id for p in org.projects])
        """
        return self._paginate("/api/organizations/", Organization,
                              dict(limit=limit, offset=offset), iteration_limit=None)

    async def retrieve(self, organization_id: str) -> Organization:
        """``GET /api/organizations/:id/`` (a UUID)."""
        return await self._call("GET", f"/api/organizations/{_org(organization_id)}/",
                                cast_to=Organization)

    def projects(self, organization_id: str, *, search: str | None = None,
                 limit: int | None = None, offset: int | None = None) -> AsyncPaginator[Project]:
        """``GET /api/organizations/:id/projects/``: the organisation's projects the user may
        see (private projects stay hidden from non-admins).

        Example: ``ids = [p.id async for p in ph.organizations.projects(org.id)]``
        """
        return self._paginate(f"/api/organizations/{_org(organization_id)}/projects/", Project,
                              dict(search=search, limit=limit, offset=offset), iteration_limit=None)

    async def project(self, organization_id: str, project_id: int | str) -> Project:
        """``GET /api/organizations/:id/projects/:project_id/``: one project with its settings,
        including ``is_pending_deletion``."""
        return await self._call(
            "GET", f"/api/organizations/{_org(organization_id)}/projects/{project_number(project_id)}/",
            cast_to=Project)

