"""Identity graph: bulk ``link_many`` (merge rate) on a fresh graph per round, and single
lookups by pre-hashed key (``resolve_keys``) and by raw identifier (``resolve_one``: normalise
+ keyed hash + lookup) against the populated engine's graph."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import workloads

from decisioner._kernels.graph import C_FREE, C_MERGES
from decisioner.bench import BenchState
from decisioner.identity import IdentityGraph

LOOKUP_ROUNDS = 2_000


@pytest.mark.benchmark(group="identity-link")
def test_link_many(benchmark: Any, sizes: tuple[int, int], smoke: bool) -> None:
    """Link one group per profile (1-3 ids each, 20% of groups merging with an earlier one)."""
    n = sizes[0]
    keys, types, offsets = workloads.identity_links(n)
    secret = secrets.token_bytes(16)

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        # sized for the batch: the timed region is linking and merging, not table growth
        return (IdentityGraph(secret, types=workloads.ID_TYPES, capacity=keys.shape[0]),), {}

    def link(graph: IdentityGraph) -> tuple[IdentityGraph, np.ndarray]:
        return graph, graph.link_many(keys, types, offsets)

    graph, rows = benchmark.pedantic(link, setup=setup, rounds=1 if smoke else 5, warmup_rounds=1)
    unions = int(graph.counts_[C_MERGES])  # each union of two components removes one
    people = np.unique(rows).shape[0]
    benchmark.extra_info.update(links=n, identifiers=int(keys.shape[0]), unions=unions, people=people)
    if benchmark.stats:
        benchmark.extra_info["links_per_s"] = round(n / benchmark.stats.stats.median)
    assert rows.shape == (n,) and bool((rows >= 0).all())
    assert graph.n_nodes == np.unique(keys).shape[0]
    assert people == graph.n_nodes - unions == graph.n_rows - int(graph.counts_[C_FREE])
    assert people < n  # groups sharing an identifier were merged


def _people(state: BenchState, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, state.people, size=LOOKUP_ROUNDS + 1)


@pytest.mark.benchmark(group="identity-resolve")
def test_resolve_keys(benchmark: Any, state: BenchState, record_latency: Callable[[], None]) -> None:
    """One pre-hashed key of a random known person per round (int32 row back)."""
    graph = state.engine.identity
    people = _people(state, 3)
    keys = [graph.keys_of({"cookie": state.cookie(int(p))})[0] for p in people]
    it = iter(zip(keys, people))
    expected: list[int] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        k, p = next(it)
        expected.append(int(state.rows[p]))
        return (k,), {}

    rows = benchmark.pedantic(graph.resolve_keys, setup=setup, rounds=LOOKUP_ROUNDS, warmup_rounds=1)
    record_latency()
    assert rows.shape == (1,) and int(rows[0]) == expected[-1]


@pytest.mark.benchmark(group="identity-resolve")
def test_resolve_one(benchmark: Any, state: BenchState, record_latency: Callable[[], None]) -> None:
    """One raw email of a random known person per round: normalise, hash, look up."""
    graph = state.engine.identity
    people = _people(state, 4)
    it = iter(people)
    expected: list[int] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        p = int(next(it))
        expected.append(int(state.rows[p]))
        return ({"email": state.email(p).upper()},), {}

    row = benchmark.pedantic(graph.resolve_one, setup=setup, rounds=LOOKUP_ROUNDS, warmup_rounds=1)
    record_latency()
    assert row == expected[-1] >= 0
