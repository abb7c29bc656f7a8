"""Identity resolution: normalised, keyed-hash identifiers in a union-find graph.

One idea per module, each built on the ones before it: :mod:`.normalise` and :mod:`.rules`
(identifier values, blocked values, the persisted key format), :mod:`.keys` (type and source
registries, key arrays), :mod:`.store` (arrays, growth, metrics, persistence), :mod:`.unmerge`
(unlink, split, erasure, eviction, expiry) and :mod:`.graph` (:class:`IdentityGraph`: linking,
listeners, resolution).
"""

from .graph import IdentityGraph, LinkResult
from .normalise import normalise

__all__ = ["IdentityGraph", "LinkResult", "normalise"]
