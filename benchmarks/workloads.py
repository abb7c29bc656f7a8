"""Deterministic, cached, network-free workloads for the benchmarks.

Builders are memoised per argument tuple, so a benchmark module pays construction once and the
timed regions never include it. Results are shared: never mutate them (event lists are tuples;
arrays stay writeable only because numba compiles a separate signature for read-only arrays,
which would be a recompile on the hot path). A benchmark that needs fresh state builds it from
them (e.g. a fresh graph per round).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from decisioner.bench import BenchState, build_engine

__all__ = ["bench_state", "events", "identity_links", "ID_TYPES"]

#: identifier types of :func:`identity_links` groups, by type code
ID_TYPES = ("cookie", "email", "device")


@functools.lru_cache(maxsize=4)
def bench_state(profiles: int, items: int, seed: int = 0) -> BenchState:
    """A populated engine (:func:`decisioner.bench.build_engine`), built once per size."""
    return build_engine(profiles, items, seed=seed)


@functools.lru_cache(maxsize=16)
def events(n: int, seed: int = 0, *, profiles: int, items: int) -> tuple[dict[str, Any], ...]:
    """``n`` view events of known people of :func:`bench_state` ``(profiles, items)``, with
    increasing times (later than every profile's last activity)."""
    return tuple(bench_state(profiles, items).requests(n, seed=seed))


@functools.lru_cache(maxsize=8)
def identity_links(n: int, seed: int = 0, *, reuse: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` link groups for ``IdentityGraph.link_many``: ``(keys uint64, types int8, offsets
    int64[n + 1])``.

    Each group holds 1-3 identifiers (types cookie, email, device). With probability
    ``reuse``, a group of two or more replaces its first key by the last key of a random
    earlier group, so the batch performs merges (that last key is never itself replaced).
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, size=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    total = int(offsets[-1])
    keys = rng.integers(0, 2**64, size=total, dtype=np.uint64)
    types = (np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1], sizes)).astype(np.int8)
    g = np.arange(n)
    merge = (rng.random(n) < reuse) & (sizes >= 2) & (g > 0)
    dst = g[merge]
    src = (rng.random(dst.shape[0]) * dst).astype(np.int64)  # a random earlier group
    keys[offsets[dst]] = keys[offsets[src + 1] - 1]
    return keys, types, offsets
