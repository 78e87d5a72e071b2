"""Handlers for ``/api/users/``: every key of the fake belongs to one non-staff user, who sees only
itself (PostHog's ``UserViewSet``: ``@me`` works, any other lookup is a 403)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ._errors import FakeAPIError, permission_denied
from ._fields import FieldError, field_error, to_bool, to_char
from ._pages import drf_page
from ._request import Reply, Req

__all__ = ["UserHandlers", "OWNER", "OWNER_BASIC"]

_USER_UUID = "0190f3a0-0000-4000-8000-000000000001"
_ORG_ID = "0190f3a0-0000-4000-8000-0000000000aa"
_WHEN = "2024-01-01T00:00:00Z"

#: ``UserBasic``, as nested in subscriptions and property definitions.
OWNER_BASIC: dict[str, Any] = {
    "id": 1, "uuid": _USER_UUID, "distinct_id": "owner", "first_name": "Owner", "last_name": "Example",
    "email": "owner@example.com", "is_email_verified": True, "hedgehog_config": None,
    "role_at_organization": "engineering",
}
_TEAM: dict[str, Any] = {
    "id": 1, "uuid": "0190f3a0-0000-4000-8000-0000000000bb", "organization": _ORG_ID, "project_id": 1,
    "api_token": "phc_fake_project_token", "name": "Default project",
    "completed_snippet_onboarding": True, "has_completed_onboarding_for": None,
    "ingested_event": True, "is_demo": False, "timezone": "UTC", "access_control": False,
}
_ORGANIZATION: dict[str, Any] = {
    "id": _ORG_ID, "name": "Example", "slug": "example", "logo_media_id": None, "created_at": _WHEN,
    "updated_at": _WHEN, "membership_level": 15, "plugins_access_level": 9, "teams": [], "projects": [],
    "available_product_features": [], "is_member_join_email_enabled": True, "metadata": {},
    "customer_id": None, "is_active": True, "is_not_active_reason": None, "is_pending_deletion": None,
    "member_count": 1,
}
#: The full ``User`` the owner's keys see.
OWNER: dict[str, Any] = {
    **OWNER_BASIC, "date_joined": _WHEN, "pending_email": None, "notification_settings": {},
    "anonymize_data": False, "allow_impersonation": True, "toolbar_mode": "toolbar",
    "has_password": True, "is_staff": False, "is_impersonated": None, "is_impersonated_until": None,
    "is_impersonated_read_only": None, "sensitive_session_expires_at": None, "team": _TEAM,
    "organization": _ORGANIZATION,
    "organizations": [{"id": _ORG_ID, "name": "Example", "slug": "example", "logo_media_id": None,
                       "membership_level": 15}],
    "events_column_config": {"active": "DEFAULT"}, "is_2fa_enabled": False, "has_social_auth": False,
    "has_sso_enforcement": False, "has_seen_product_intro_for": None, "scene_personalisation": [],
    "theme_mode": "system", "allow_sidebar_suggestions": True, "shortcut_position": None,
    "passkeys_enabled_for_2fa": None, "onboarding_skipped_at": None, "onboarding_skipped_reason": None,
    "onboarding_skipped_organization_id": None, "onboarding_delegated_to_invite": None,
    "onboarding_delegated_to_organization_id": None, "onboarding_delegation_accepted_at": None,
    "is_organization_first_user": True, "pending_invites": [],
}
_ONLY_ME = "As a non-staff user you're only allowed to access the `@me` user instance."
_NO_EMAIL_CHANGE = ("You can only change your email or password from the PostHog app, not with an "
                    "API key or token.")


class UserHandlers:
    def __init__(self, organizations: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        self.me: dict[str, Any] = copy.deepcopy(OWNER)
        #: The user's memberships, every organisation whatever the key's scopes (PostHog's
        #: ``UserSerializer.organizations``); default: the one in ``OWNER``.
        self.organizations = organizations

    def list(self, req: Req) -> Reply:
        """A non-staff caller's queryset is its own row; ``is_staff`` and ``email`` filter it."""
        users = [self.me]
        if "is_staff" in req.query:
            try:
                staff = to_bool(req.q("is_staff"))
            except FieldError as err:
                raise field_error("is_staff", err) from None
            users = [u for u in users if u["is_staff"] == staff]
        if req.q("email"):
            users = [u for u in users if u["email"].lower() == (req.q("email") or "").lower()]
        return drf_page(req, users)

    def _me(self, req: Req) -> dict[str, Any]:
        if req.params["uuid"] != "@me":  # even the caller's own uuid: only ``@me`` is allowed
            raise permission_denied(_ONLY_ME)
        if self.organizations is not None:
            self.me["organizations"] = self.organizations()
        return self.me

    def retrieve(self, req: Req) -> Reply:
        return 200, self._me(req)

    def update(self, req: Req) -> Reply:
        me = self._me(req)
        body = req.body()
        if "email" in body or "password" in body:
            raise permission_denied(_NO_EMAIL_CHANGE)
        if "is_staff" in body:
            raise permission_denied("You are not a staff user, contact your instance admin.")
        for name in ("first_name", "last_name"):
            if name in body:
                try:
                    me[name] = to_char(body[name], allow_blank=True, max_length=150)
                except FieldError as err:
                    raise field_error(name, err) from None
        return 200, me

    def destroy(self, req: Req) -> Reply:
        """Deleting a user is for session auth only: a key's request is not authenticated at all,
        and without a Bearer challenge DRF answers that with a 403."""
        raise FakeAPIError(403, "authentication_error", "not_authenticated",
                           "Authentication credentials were not provided.")
