"""Profile rows on Redis: one versioned value per person, compare-and-set updates, a local cache.

Each person's row (:mod:`decisioner.state.rowcodec`) is one Redis hash
``{<prefix>:p:<person>}:row`` (:meth:`~decisioner.state.connection.RedisState.person_key`) with two
fields, ``v`` (the version, an integer that grows by one with every write) and ``d`` (the value).
The hash tag puts every key of one person in one Cluster slot.

Writes are compare-and-set, one round trip each (:data:`CAS_SCRIPT`, a Lua script run by
EVALSHA on the person's slot): the write names the version it was computed from and succeeds
only if that is still the stored one; otherwise the script answers with the stored version and
value, and the writer loads them and applies its event again (:meth:`RowStore.write` returns
the current value for that). So two workers updating one person at once never lose an update:
one wins, the other re-reads and re-applies.

Local cache and staleness: :class:`RowStore` keeps the last version and value it read or wrote
per person (at most ``cache_rows`` people, least recently used first out). An update never
trusts the cache beyond one round trip: the compare-and-set fails on a stale version and brings
the fresh value back. A read that serves from the cache (``max_stale_ms``) may be that old at
most; ``max_stale_ms = 0`` reads the version on every call (one round trip for an integer).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    from .connection import RedisState

__all__ = ["CAS_SCRIPT", "Cached", "RowStore"]

#: KEYS[1] the row hash; ARGV[1] the version the write was computed from (0: none yet), ARGV[2]
#: the value. Answers ``{1, new version}`` or ``{0, stored version, stored value}``.
CAS_SCRIPT: Final = """
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then
  return {0, v, redis.call('HGET', KEYS[1], 'd') or ''}
end
redis.call('HSET', KEYS[1], 'v', v + 1, 'd', ARGV[2])
return {1, v + 1}
"""

#: KEYS[1] the row hash; ARGV[1] the version to delete at. Answers 1, or 0 if it moved on.
DELETE_SCRIPT: Final = """
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


class Cached(NamedTuple):
    """A row as last seen: its version (0: none stored), value (b'' when none) and when it was
    read (``time.monotonic()``)."""

    version: int
    value: bytes
    at: float


class RowStore:
    """Versioned person rows on one Redis deployment, with a bounded local cache.

    Parameters
    ----------
    state
        The connection (its client is used as it is; callers wrap calls in ``state.run``, which
        turns failures into :class:`~decisioner.errors.StateUnavailable`).
    cache_rows
        People whose last value is kept locally.
    max_stale_ms
        How old a cached value :meth:`read` may serve (0: check the version every time).
    """

    def __init__(self, state: RedisState, *, cache_rows: int = 100_000, max_stale_ms: int = 0) -> None:
        self.state = state
        self.cache_rows = cache_rows
        self.max_stale_ms = max_stale_ms
        self._scripts: tuple[Any, Any, Any] | None = None
        self._cache: OrderedDict[int, Cached] = OrderedDict()
        self.conflicts_ = 0  # writes refused for a stale version (then re-applied)
        self.hits_ = 0  # reads served from the cache

    def _script(self, which: int) -> Any:
        """The registered script (EVALSHA, loaded again by redis-py when a server lost it), for
        the current client (a reconnect may have made a new one)."""
        client = self.state.client
        if self._scripts is None or self._scripts[0] is not client:
            self._scripts = (client, client.register_script(CAS_SCRIPT), client.register_script(DELETE_SCRIPT))
        return self._scripts[which]

    def key(self, person: int) -> str:
        return self.state.person_key(person, "row")

    def _keep(self, person: int, version: int, value: bytes) -> Cached:
        c = Cached(version, value, time.monotonic())
        cache = self._cache
        cache[person] = c
        cache.move_to_end(person)
        if len(cache) > self.cache_rows:
            cache.popitem(last=False)
        return c

    def cached(self, person: int) -> Cached | None:
        """The cached row of ``person`` (``None`` if not cached), without any round trip."""
        return self._cache.get(person)

    def forget(self, person: int) -> None:
        """Drop ``person`` from the cache (the next read goes to Redis)."""
        self._cache.pop(person, None)

    def fetch(self, person: int) -> Cached:
        """The stored row of ``person`` (version 0 and b'' when none), one round trip."""
        got = self.state.client.hmget(self.key(person), ["v", "d"])
        if got[0] is None:
            return self._keep(person, 0, b"")
        return self._keep(person, int(got[0]), bytes(got[1]))

    def read(self, person: int) -> Cached:
        """The row of ``person``: from the cache if it is younger than ``max_stale_ms``, or if
        its version is still the stored one (one round trip for an integer), else fetched."""
        c = self._cache.get(person)
        if c is not None:
            if self.max_stale_ms and (time.monotonic() - c.at) * 1000.0 <= self.max_stale_ms:
                self.hits_ += 1
                return c
            v = self.state.client.hget(self.key(person), "v")
            if int(v or 0) == c.version:
                self.hits_ += 1
                return self._keep(person, c.version, c.value)
        return self.fetch(person)

    def write(self, person: int, version: int, value: bytes) -> Cached | None:
        """Store ``value`` as ``person``'s row if the stored version is still ``version``.
        Returns ``None`` on success (the cache holds the new version), else the stored row to
        re-apply the update to."""
        res = self._script(1)(keys=[self.key(person)], args=[version, value])
        if int(res[0]) == 1:
            self._keep(person, int(res[1]), value)
            return None
        self.conflicts_ += 1
        return self._keep(person, int(res[1]), bytes(res[2]))

    def delete(self, person: int, version: int) -> bool:
        """Delete ``person``'s row if it is still at ``version`` (a row folded into another by
        a merge); ``False`` if it moved on (then fold it again)."""
        self.forget(person)
        return bool(self._script(2)(keys=[self.key(person)], args=[version]))

    def memory_usage(self, person: int) -> int:
        """Bytes Redis holds for ``person``'s row (``MEMORY USAGE``; 0 when none)."""
        return int(self.state.client.memory_usage(self.key(person), samples=0) or 0)
