"""``warm_up()``: compile (or load from cache) every kernel once on tiny canonical inputs, so no
request pays compile time. Services call it at start-up; the CLI has ``decisioner warmup``.

The calls use exactly the dtypes the library passes on the hot path, so after warm-up each
kernel has one compiled signature (a test asserts it: a second one would be a silent recompile).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ._kernels import affinity, bandit, graph, rng, topk

__all__ = ["KERNELS", "warm_up"]

#: every public kernel (dispatchers), for warm-up and the one-signature check
KERNELS: tuple[Any, ...] = (
    graph.graph_find_root, graph.graph_lookup_many, graph.graph_link, graph.graph_link_many,
    graph.graph_rehash, graph.graph_component_rows,
    affinity.affinity_update, affinity.affinity_read, affinity.affinity_merge, affinity.score_items,
    topk.top_k, bandit.thompson_select, bandit.rank_slate,
    rng.rng_fill_uniform, rng.rng_fill_beta,
)


def warm_up() -> float:
    """Compile or load every kernel; returns the seconds it took.

    Examples
    --------
    >>> warm_up() >= 0.0
    True
    """
    t0 = time.perf_counter()
    # identity graph
    cap = 16
    tab_keys = np.zeros(cap, np.uint64)
    tab_nodes = np.full(cap, -1, np.int32)
    node_key = np.zeros(8, np.uint64)
    node_type = np.zeros(8, np.int8)
    parent = np.zeros(8, np.int32)
    size = np.zeros(8, np.int32)
    row = np.full(8, -1, np.int32)
    counts = np.zeros(4, np.int64)
    free_rows = np.zeros(4, np.int32)
    keys = np.array([3, 5], np.uint64)
    types = np.array([0, 1], np.int8)
    absorbed = np.zeros(4, np.int32)
    graph.graph_link(tab_keys, tab_nodes, node_key, node_type, parent, size, row, counts, free_rows, keys, types, absorbed)
    out_rows = np.zeros(2, np.int32)
    graph.graph_link_many(tab_keys, tab_nodes, node_key, node_type, parent, size, row, counts, free_rows,
                          keys, types, np.array([0, 1, 2], np.int64), out_rows, absorbed, np.zeros(4, np.int32))
    graph.graph_lookup_many(tab_keys, tab_nodes, parent, row, keys, out_rows)
    graph.graph_find_root(parent, 0)
    graph.graph_rehash(tab_keys, tab_nodes, np.zeros(32, np.uint64), np.full(32, -1, np.int32))
    graph.graph_component_rows(parent, row, 2, np.zeros(2, np.int32))
    # profiles
    fid = np.full((2, 4), -1, np.int32)
    score = np.zeros((2, 4), np.float32)
    t = np.zeros(2, np.int64)
    hl = np.ones(3, np.float64)
    affinity.affinity_update(fid, score, t, 0, np.array([1], np.int32), np.array([1.0]), 1, hl)
    affinity.affinity_update(fid, score, t, 1, np.array([2], np.int32), np.array([1.0]), 1, hl)
    of = np.empty(4, np.int32)
    osc = np.empty(4, np.float64)
    affinity.affinity_read(fid, score, t, 0, 2, hl, of, osc)
    affinity.affinity_merge(fid, score, t, 0, 1, hl)
    # scoring
    out = np.empty(2, np.float64)
    affinity.score_items(np.array([0, 1, 2, 2], np.int64), np.array([0, 1], np.int32), np.ones(2, np.float32),
                         of, osc, 1, 1.0, np.zeros(2), 0.5, np.zeros(2), np.ones(2, np.uint8),
                         np.empty(0, np.int32), out)
    topk.top_k(out, 1, np.empty(1, np.int64))
    # allocation
    state = rng.seed_state(0)
    bandit.thompson_select(1.0, 1.0, np.zeros(2), np.zeros(2), np.ones(2, np.uint8), state, 16)
    bandit.rank_slate(np.array([0, 1], np.int64), np.array([1.0, 0.5]), 2, 1, bandit.MODE_EPSILON, 0.1,
                      state, np.empty(1, np.int64), np.empty(1, np.float64))
    rng.rng_fill_uniform(state, np.empty(1))
    rng.rng_fill_beta(state, 1.0, 1.0, np.empty(1))
    return time.perf_counter() - t0
