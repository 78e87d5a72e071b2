"""``ph.session_recordings``: sharing settings of a session recording."""

from __future__ import annotations

from urllib.parse import quote

from .._models import JSON, SharingConfiguration, SharingPassword
from .._validation import require_text
from ._base import Resource

__all__ = ["SessionRecordings"]


class SessionRecordings(Resource):
    def _path(self, recording_id: str, project_id: str | int | None, suffix: str = "") -> str:
        rid = quote(require_text(recording_id, "recording_id"), safe="")
        return f"{self._base(project_id)}/session_recordings/{rid}/sharing/{suffix}"

    async def sharing(
        self, recording_id: str, *, project_id: str | int | None = None
    ) -> SharingConfiguration:
        """``GET session_recordings/:recording_id/sharing/`` (scope ``sharing_configuration:read``).

        Example: ``cfg = await ph.session_recordings.sharing("0192...")``
        """
        result: SharingConfiguration = await self._call(
            "GET", self._path(recording_id, project_id), SharingConfiguration
        )
        return result

    async def create_sharing_password(
        self, recording_id: str, *, note: str | None = None, project_id: str | int | None = None
    ) -> SharingPassword:
        """``POST .../sharing/passwords/`` (scope ``sharing_configuration:write``).

        The answer carries the generated ``password``; it is shown only this once.
        """
        body = {} if note is None else {"note": note}
        result: SharingPassword = await self._call(
            "POST", self._path(recording_id, project_id, "passwords/"), SharingPassword, json=body
        )
        return result

    async def delete_sharing_password(
        self, recording_id: str, password_id: str, *, project_id: str | int | None = None
    ) -> None:
        """``DELETE .../sharing/passwords/:password_id/`` (scope ``sharing_configuration:write``); 204."""
        pid = quote(require_text(password_id, "password_id"), safe="")
        await self._call("DELETE", self._path(recording_id, project_id, f"passwords/{pid}/"), JSON)

    async def refresh_sharing(
        self, recording_id: str, *, project_id: str | int | None = None
    ) -> SharingConfiguration:
        """``POST .../sharing/refresh/`` (scope ``sharing_configuration:write``): new access token."""
        result: SharingConfiguration = await self._call(
            "POST", self._path(recording_id, project_id, "refresh/"), SharingConfiguration, json={}
        )
        return result
