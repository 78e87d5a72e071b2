"""``ph.persons`` and its sub-resource ``ph.persons.actors``."""

from ._actors import PersonActors
from ._persons import Persons

__all__ = ["Persons", "PersonActors"]
