"""``ph.persons`` and its sub-resource ``ph.persons.actors``."""

from ._actors import PersonActors
from ._persons import Persons
from ._verification import GoneCheck, PersonVerification

__all__ = ["Persons", "PersonActors", "PersonVerification", "GoneCheck"]
