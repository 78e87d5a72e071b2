"""``ph.query``: PostHog's query API (HogQL, any query kind, insight actors, keyset reads)."""

from ._actors import ActorsPage, ActorsPaginator
from ._keyset import KeysetReader
from ._query import REFRESH_MODES, Query, Refresh

__all__ = ["Query", "Refresh", "REFRESH_MODES", "ActorsPaginator", "ActorsPage", "KeysetReader"]
