"""``ph.session_recordings``: the sharing settings of a session recording."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .._models import SharingConfiguration, SharingPassword
from .._validation import require_text
from ._base import Resource

__all__ = ["SessionRecordings"]


class SessionRecordings(Resource):
    """``ph.session_recordings``: read and change a recording's sharing, and its passwords."""

    bucket = "general"

    def _path(self, recording_id: str, suffix: str = "") -> str:
        rid = quote(require_text(recording_id, "recording_id"), safe="")
        return f"{self._base()}/session_recordings/{rid}/sharing/{suffix}"

    async def sharing(self, recording_id: str) -> SharingConfiguration:
        """``GET session_recordings/:recording_id/sharing/`` (scope ``sharing_configuration:read``).

        One configuration object; ``created_at`` is ``None`` until sharing is first enabled.

        Example: ``cfg = await ph.session_recordings.sharing("0192...")``
        """
        return await self._call("GET", self._path(recording_id), cast_to=SharingConfiguration)

    async def update_sharing(
        self,
        recording_id: str,
        *,
        enabled: bool | None = None,
        password_required: bool | None = None,
        settings: Any = None,
    ) -> SharingConfiguration:
        """``PATCH .../sharing/`` (scope ``sharing_configuration:write``): switch sharing or
        password protection on or off.

        Example: ``await ph.session_recordings.update_sharing(rid, enabled=True)``
        """
        body = {k: v for k, v in dict(enabled=enabled, password_required=password_required,
                                      settings=settings).items() if v is not None}
        if not body:
            raise ValueError("update_sharing needs enabled, password_required or settings")
        return await self._call("PATCH", self._path(recording_id), cast_to=SharingConfiguration,
                                json=body)

    async def create_sharing_password(
        self, recording_id: str, *, password: str | None = None, note: str | None = None
    ) -> SharingPassword:
        """``POST .../sharing/passwords/`` (scope ``sharing_configuration:write``); 201.

        Password protection must be on first (``update_sharing(rid, password_required=True)``),
        else PostHog answers 400; it also needs PostHog's advanced permissions feature (else
        403). ``password`` (at least 8 characters) is generated when omitted; the answer's
        ``password`` is shown only this once.
        """
        body: dict[str, Any] = {}
        if password is not None:
            if len(password) < 8:
                raise ValueError("password must be at least 8 characters")
            body["raw_password"] = password
        if note is not None:
            if len(note) > 100:
                raise ValueError("note must be at most 100 characters")
            body["note"] = note
        return await self._call("POST", self._path(recording_id, "passwords/"),
                                cast_to=SharingPassword, json=body)

    async def delete_sharing_password(self, recording_id: str, password_id: int | str) -> None:
        """``DELETE .../sharing/passwords/:password_id/`` (scope ``sharing_configuration:write``); 204."""
        pid = str(password_id).strip()
        if isinstance(password_id, bool) or not (pid.isascii() and pid.isdigit()):
            raise ValueError(f"password_id must be an integer, got {password_id!r}")
        await self._call("DELETE", self._path(recording_id, f"passwords/{pid}/"), cast_to=None)

    async def refresh_sharing(self, recording_id: str) -> SharingConfiguration:
        """``POST .../sharing/refresh/`` (scope ``sharing_configuration:write``): a new access token."""
        return await self._call("POST", self._path(recording_id, "refresh/"),
                                cast_to=SharingConfiguration, json={})
