"""``ph.projects``: projects across every organisation the key reaches (``/api/projects/``).

``/api/projects/`` and ``/api/environments/`` are not in PostHog's published API reference, but
its app uses them: they list every organisation's projects (respectively environments, i.e.
teams) the user may see, narrowed by the key's scopes (``project:read``). A key scoped to
projects may retrieve each of its projects but not list them (403). Counted in the ``general``
bucket (``ProjectViewSet``/``TeamViewSet`` declare no throttle of their own).

Never use ``@current`` in a job: it follows the project last chosen in PostHog's UI.
"""

from __future__ import annotations

from .._org_models import Project
from .._pagination import AsyncPaginator
from ._base import Resource

__all__ = ["Projects"]


def project_number(project_id: object, name: str = "project_id") -> int:
    """A project id as an int: ``@current`` and anything else PostHog would not route are refused."""
    if isinstance(project_id, bool):
        raise TypeError(f"{name} must be a project number, got a bool")
    text = str(project_id).strip() if isinstance(project_id, (int, str)) else ""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name} must be a project number (not @current: it follows the UI's "
                         f"choice), got {project_id!r}")
    return int(text)


class Projects(Resource):
    """``/api/projects/``, ``/api/projects/:id/`` and ``/api/environments/``."""

    def list(self, *, search: str | None = None, limit: int | None = None,
             offset: int | None = None) -> AsyncPaginator[Project]:
        """``GET /api/projects/``: the projects of every organisation the key reaches.

        Example: ``ids = [p.id async for p in ph.projects.list()]``
        """
        return self._paginate("/api/projects/", Project,
                              dict(search=search, limit=limit, offset=offset), iteration_limit=None)

    async def retrieve(self, project_id: int | str) -> Project:
        """``GET /api/projects/:id/``: one project, with ``is_pending_deletion``. 403 when the
        key may not reach it, 404 when it does not exist (or the user may not see it).

        Example: ``project = await ph.projects.retrieve(12345)``
        """
        return await self._call("GET", f"/api/projects/{project_number(project_id)}/",
                                cast_to=Project)

    def list_environments(self, *, limit: int | None = None,
                          offset: int | None = None) -> AsyncPaginator[Project]:
        """``GET /api/environments/``: every environment (team) the key reaches, each with the
        ``project_id`` it belongs to (PostHog marks this family deprecated)."""
        return self._paginate("/api/environments/", Project, dict(limit=limit, offset=offset),
                              iteration_limit=None)
