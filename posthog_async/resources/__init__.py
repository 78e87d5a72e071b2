"""API resources, one module per PostHog resource."""

from .integrations import Integrations
from .organizations import Organizations
from .personal_api_keys import PersonalAPIKeys
from .persons import Persons
from .projects import Projects
from .property_definitions import PropertyDefinitions
from .session_recordings import SessionRecordings
from .subscriptions import Subscriptions
from .users import Users

__all__ = [
    "Integrations", "Organizations", "PersonalAPIKeys", "Persons", "Projects", "PropertyDefinitions",
    "SessionRecordings", "Subscriptions", "Users",
]
