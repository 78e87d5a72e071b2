"""API resources, one module per PostHog resource."""

from .integrations import Integrations
from .persons import Persons
from .property_definitions import PropertyDefinitions
from .session_recordings import SessionRecordings
from .subscriptions import Subscriptions
from .users import Users

__all__ = [
    "Integrations", "Persons", "PropertyDefinitions", "SessionRecordings", "Subscriptions", "Users",
]
