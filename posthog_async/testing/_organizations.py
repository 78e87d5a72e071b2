"""Handlers for the key's own record, organisations and the project listings.

- ``/api/personal_api_keys/``: a key may only retrieve itself (``@current`` or its own id);
  the list, other ids and every write answer 403 "This action does not support Personal API Key
  access" (``PersonalApiKeySelfAccessPermission``, ``posthog/api/personal_api_key.py`` index id
  120643241). No scope is needed, and a key with ``scoped_teams`` may read it.
- ``/api/organizations/`` (``organization:read``), ``/api/organizations/:id/projects/`` and
  ``/api/projects/`` (``project:read``): DRF's limit/offset pages (100 by default).
  ``/api/environments/`` lists teams (``TeamBasicSerializer``, with ``project_id``).

Guards (:meth:`OrganizationHandlers.guard_listing` and friends) run before the scope check, as
``check_team_and_org_permissions`` runs before the scopes in ``APIScopePermission``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._errors import not_found, permission_denied
from ._keys import FakeKey
from ._pages import drf_page
from ._projects import Directory
from ._request import Reply, Req, parse_int

__all__ = ["OrganizationHandlers", "SELF_ONLY"]

SELF_ONLY = "This action does not support Personal API Key access"


class OrganizationHandlers:
    def __init__(self, directory: Directory, keys: Mapping[str, FakeKey]) -> None:
        self.directory = directory
        self.keys = keys

    # -- guards (before scopes) ---------------------------------------------------------------

    def guard_listing(self, key: str, params: Mapping[str, str]) -> None:
        self.directory.check_listing(self.keys[key])

    def guard_organization(self, key: str, params: Mapping[str, str]) -> None:
        self.directory.organization(self.keys[key], params["organization"], nested=True)

    def guard_project(self, key: str, params: Mapping[str, str]) -> None:
        """``/api/projects/:id/``: ``view.team`` loads the project first (404), then the key's
        limits apply (403)."""
        project = self.directory.projects.get(parse_int(params["id"]) or -1)
        if project is None or not self.directory.visible(project):
            raise not_found()
        self.directory.check_team(self.keys[key], project)

    # -- the key's own record ----------------------------------------------------------------

    def key_retrieve(self, req: Req) -> Reply:
        fake = self.keys[req.key]
        if req.params["key_id"] not in ("@current", fake.id):
            if req.params["key_id"] in {k.id for k in self.keys.values()}:
                raise permission_denied(SELF_ONLY)  # another key of the user's
            raise not_found()
        return 200, fake.record(req.key)

    def key_refused(self, req: Req) -> Reply:
        raise permission_denied(SELF_ONLY)

    # -- organisations ------------------------------------------------------------------------

    def organizations(self, req: Req) -> Reply:
        key = self.keys[req.key]
        orgs = self.directory.reachable_organizations(key)
        return drf_page(req, orgs, self.directory.organization_row)

    def organization(self, req: Req) -> Reply:
        org = self.directory.organization(self.keys[req.key], req.params["id"], nested=False)
        return 200, self.directory.organization_row(org)

    def organization_projects(self, req: Req) -> Reply:
        org = self.directory.organization(self.keys[req.key], req.params["organization"],
                                          nested=True)
        rows = self.directory.projects_of(org)
        search = (req.q("search") or "").lower()
        if search:
            rows = [p for p in rows if search in p.name.lower()]
        return drf_page(req, rows, self.directory.project_row)

    def organization_project(self, req: Req) -> Reply:
        org = self.directory.organization(self.keys[req.key], req.params["organization"],
                                          nested=True)
        project = self.directory.projects.get(parse_int(req.params["id"]) or -1)
        if project is None or project.organization_id != org.id or not self.directory.visible(project):
            raise not_found()
        self.directory.check_team(self.keys[req.key], project)
        return 200, self.directory.project_detail(project)

    # -- every organisation's projects ---------------------------------------------------------

    def projects(self, req: Req) -> Reply:
        key = self.keys[req.key]
        rows = [p for org in self.directory.reachable_organizations(key)
                for p in self.directory.projects_of(org)]
        search = (req.q("search") or "").lower()
        if search:
            rows = [p for p in rows if search in p.name.lower()]
        return drf_page(req, sorted(rows, key=lambda p: p.id), self.directory.project_row)

    def project(self, req: Req) -> Reply:
        project = self.directory.projects[parse_int(req.params["id"]) or -1]  # the guard found it
        return 200, self.directory.project_detail(project)

    def environments(self, req: Req) -> Reply:
        key = self.keys[req.key]
        rows = [p for org in self.directory.reachable_organizations(key)
                for p in self.directory.projects_of(org)]
        return drf_page(req, sorted(rows, key=lambda p: p.id), self.directory.team_row)
