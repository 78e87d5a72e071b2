"""Handlers for a session recording's sharing configuration, after PostHog's
``SharingConfigurationViewSet``: one object (not a list), stored only once written, password
management behind ``password_required`` and the Advanced Permissions feature."""

from __future__ import annotations

import secrets
from typing import Any

from ._errors import error_body, not_found, validation_error
from ._fields import FieldError, field_error, to_bool, to_char
from ._request import Reply, Req, parse_int
from ._users import OWNER_BASIC

__all__ = ["SharingHandlers"]

_NEEDS_FEATURE = "Password management requires the Advanced Permissions feature"


class SharingHandlers:
    """``advanced_permissions``: whether the organization has the paid feature passwords need."""

    def __init__(self, advanced_permissions: bool = True) -> None:
        self.advanced_permissions = advanced_permissions
        self._next_password = 1

    def _config(self, req: Req) -> dict[str, Any]:
        """The stored configuration, or a fresh unsaved one (``created_at`` null, a new token)."""
        stored = req.project_data.sharing.get(req.params["recording_id"])
        if stored is not None:
            return stored
        return {"created_at": None, "enabled": False, "access_token": secrets.token_urlsafe(16),
                "settings": None, "password_required": False, "share_passwords": []}

    def _save(self, req: Req, config: dict[str, Any]) -> None:
        if config["created_at"] is None:
            config["created_at"] = req.now
        req.project_data.sharing[req.params["recording_id"]] = config

    @staticmethod
    def _json(config: dict[str, Any]) -> dict[str, Any]:
        return {**config, "share_passwords": [p for p in config["share_passwords"] if p["is_active"]]}

    def get(self, req: Req) -> Reply:
        return 200, self._json(self._config(req))

    def patch(self, req: Req) -> Reply:
        config = self._config(req)
        body = req.body()
        if body.get("password_required") and not self.advanced_permissions:
            raise error_body(403, "Sharing with password requires the Advanced Permissions feature")
        changes: dict[str, Any] = {}
        for name in ("enabled", "password_required"):
            if name in body:
                try:
                    changes[name] = to_bool(body[name])
                except FieldError as err:
                    raise field_error(name, err) from None
        if "settings" in body:
            if body["settings"] is not None and not isinstance(body["settings"], dict):
                raise validation_error("Invalid settings format", attr="settings")
            changes["settings"] = body["settings"]
        config.update(changes)
        self._save(req, config)
        return 200, self._json(config)

    def refresh(self, req: Req) -> Reply:
        config = self._config(req)
        config["access_token"] = secrets.token_urlsafe(16)
        self._save(req, config)
        return 200, self._json(config)

    def create_password(self, req: Req) -> Reply:
        config = self._config(req)
        if not config["password_required"]:
            raise error_body(400, "Password protection must be enabled before creating passwords")
        if not self.advanced_permissions:
            raise error_body(403, _NEEDS_FEATURE)
        self._save(req, config)
        body = req.body()
        try:
            raw = to_char(body.get("raw_password", ""), allow_blank=True) or ""
        except FieldError as err:
            raise field_error("raw_password", err) from None
        if raw and len(raw) < 8:
            raise validation_error("Password must be at least 8 characters long.", attr="raw_password")
        try:
            note = to_char(body.get("note", ""), allow_blank=True, max_length=100) or ""
        except FieldError as err:
            raise field_error("note", err) from None
        pid, self._next_password = self._next_password, self._next_password + 1
        entry = {"id": pid, "created_at": req.now, "note": note,
                 "created_by_email": OWNER_BASIC["email"], "is_active": True}
        config["share_passwords"].append(entry)
        return 201, {"id": pid, "password": raw or secrets.token_urlsafe(12), "note": note,
                     "created_at": req.now, "created_by_email": OWNER_BASIC["email"]}

    def delete_password(self, req: Req) -> Reply:
        config = self._config(req)
        if not self.advanced_permissions:
            raise error_body(403, _NEEDS_FEATURE)
        pid = parse_int(req.params["password_id"])
        for entry in config["share_passwords"]:
            if entry["id"] == pid and entry["is_active"]:
                entry["is_active"] = False
                return 204, None
        raise not_found("Password not found")
