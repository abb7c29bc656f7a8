"""Identity graph: bulk ingestion of links against peers (a plain-Python dict union-find and
networkx connected components on the same links, same run), single lookups by pre-hashed key
(``resolve_key`` scalar path, ``resolve_keys`` array path) and by raw identifier
(``resolve_one``: normalise + keyed hash + lookup) against the populated engine's graph, and
memory per identifier.

Sizes: ``DECISIONER_BENCH_LINKS`` link groups (default 10,000,000; 20,000 under
``--benchmark-disable``); networkx gets ``DECISIONER_BENCH_NX_LINKS`` (default: the same) since
its graph needs about 1 KB per link.
"""

from __future__ import annotations

import gc
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import workloads
from compare import identity_dictuf, identity_networkx
from decisioner._kernels.graph import C_FREE, C_MERGES
from decisioner.bench import BenchState
from decisioner.config import IdentitySpec
from decisioner.identity import IdentityGraph

LOOKUP_ROUNDS = 2_000
WARMUP_ROUNDS = 100  # lookups right after the state is built see cold caches and page tables
SMOKE_LINKS = 20_000


def _links(smoke: bool) -> int:
    return SMOKE_LINKS if smoke else int(os.environ.get("DECISIONER_BENCH_LINKS", "10000000"))


@pytest.mark.benchmark(group="identity-link")
def test_link_many(benchmark: Any, sizes: tuple[int, int], smoke: bool) -> None:
    """Link one group per profile (1-3 ids each, 20% of groups merging with an earlier one),
    merge rules on, every link kept as evidence."""
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
    benchmark.extra_info.update(graph.memory())
    benchmark.extra_info.update(links=n, keys=int(keys.shape[0]), unions=unions, people=people)
    if benchmark.stats:
        benchmark.extra_info["links_per_s"] = round(n / benchmark.stats.stats.median)
    assert rows.shape == (n,) and bool((rows >= 0).all())
    assert graph.n_nodes == np.unique(keys).shape[0]
    assert people == graph.n_nodes - unions == graph.n_rows - int(graph.counts_[C_FREE])
    assert people < n  # groups sharing an identifier were merged
    assert graph.memory()["core_bytes_per_identifier"] <= 48


@pytest.mark.benchmark(group="identity-ingest")
def test_ingest_vs_peers(benchmark: Any, smoke: bool) -> None:
    """The same links ingested by the graph (rules off, so the components must equal the
    peers'; and rules on with evidence, the shipped configuration), a dict union-find and
    networkx. Ratios of wall times in ``extra_info`` (peers timed once, in this run)."""
    n = _links(smoke)
    keys, types, offsets = workloads.identity_links(n)
    secret = secrets.token_bytes(16)
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], int]) -> int:
        t0 = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t0
        return out

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        spec = IdentitySpec(rules=False)
        return (IdentityGraph(secret, types=workloads.ID_TYPES, capacity=keys.shape[0], spec=spec),), {}

    def ours(graph: IdentityGraph) -> int:
        graph.link_many(keys, types, offsets)
        return int(graph.metrics()["profiles"])

    comps = benchmark.pedantic(ours, setup=setup, rounds=1, warmup_rounds=0)
    timings["ours (rules off)"] = benchmark.stats.stats.median if benchmark.stats else float("nan")
    holder: list[IdentityGraph] = []

    def construct() -> int:
        holder.append(IdentityGraph(secret, types=workloads.ID_TYPES, capacity=keys.shape[0]))
        return 0

    timed("construction (reserving the capacity)", construct)
    timed("ours (rules on)", lambda: int(holder[0].link_many(keys, types, offsets).shape[0]))
    timings["ours (rules on, incl. construction)"] = (
        timings["ours (rules on)"] + timings["construction (reserving the capacity)"])
    holder.clear()  # free the graph before the peers run (the closures above hold `holder`)
    kl, ol = keys.tolist(), offsets.tolist()  # the peers get Python ints, outside their timing
    assert timed("dict union-find", lambda: identity_dictuf.ingest(kl, ol)) == comps
    nx_n = min(n, int(os.environ.get("DECISIONER_BENCH_NX_LINKS", str(n))))
    nx_comps = timed("networkx", lambda: identity_networkx.ingest(kl[: ol[nx_n]], ol[: nx_n + 1]))
    if nx_n == n:
        assert nx_comps == comps
    kl.clear()  # free the Python ints before the report
    ol.clear()
    base = timings["ours (rules off)"] if benchmark.stats else float("nan")
    info: dict[str, Any] = {"links": n, "identifiers": int(keys.shape[0]), "networkx_links": nx_n,
                            **{f"{k} s": round(v, 3) for k, v in timings.items()}}
    if benchmark.stats:
        scale = n / nx_n
        info["dict_uf / ours (rules off)"] = round(timings["dict union-find"] / base, 1)
        info["dict_uf / ours (rules on)"] = round(timings["dict union-find"] / timings["ours (rules on)"], 1)
        info["networkx / ours (rules off)"] = round(timings["networkx"] * scale / base, 1)
        info["networkx / ours (rules on)"] = round(timings["networkx"] * scale / timings["ours (rules on)"], 1)
        both = timings["ours (rules on, incl. construction)"]
        info["dict_uf / ours (rules on, incl. construction)"] = round(timings["dict union-find"] / both, 1)
        info["networkx / ours (rules on, incl. construction)"] = round(timings["networkx"] * scale / both, 1)
    benchmark.extra_info.update(info)
    print("\nidentity ingest:", info)
    assert comps < n


@contextmanager
def _no_gc() -> Iterator[None]:
    """Lookups measured without Python's cyclic garbage collector: a collection of the
    populated engine's objects (~100 us) landing inside a 1 us call is the interpreter's tail,
    not the lookup's (a service tunes or freezes the collector: ``gc.freeze()``)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _people(state: BenchState, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, state.people, size=LOOKUP_ROUNDS + WARMUP_ROUNDS + 1)


@pytest.mark.benchmark(group="identity-resolve")
def test_resolve_key(benchmark: Any, state: BenchState, record_latency: Callable[[], None]) -> None:
    """One pre-hashed key and check tag of a random known person per round (scalars in, row
    out): the fastest path from Python."""
    graph = state.engine.identity
    people = _people(state, 2)
    keys = [graph.keys_of({"cookie": state.cookie(int(p))})[0] for p in people]
    it = iter(zip(keys, people))
    expected: list[int] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        k, p = next(it)
        expected.append(int(state.rows[p]))
        return (int(k[0, 0]), int(k[1, 0])), {}

    with _no_gc():
        row = benchmark.pedantic(graph.resolve_key, setup=setup, rounds=LOOKUP_ROUNDS, warmup_rounds=WARMUP_ROUNDS)
    record_latency()
    assert row == expected[-1]


@pytest.mark.benchmark(group="identity-resolve")
def test_resolve_keys(benchmark: Any, state: BenchState, record_latency: Callable[[], None]) -> None:
    """One pre-hashed key of a random known person per round (uint64[2, 1] in, int32[1] out)."""
    graph = state.engine.identity
    people = _people(state, 3)
    keys = [graph.keys_of({"cookie": state.cookie(int(p))})[0] for p in people]
    it = iter(zip(keys, people))
    expected: list[int] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        k, p = next(it)
        expected.append(int(state.rows[p]))
        return (k,), {}

    with _no_gc():
        rows = benchmark.pedantic(graph.resolve_keys, setup=setup, rounds=LOOKUP_ROUNDS, warmup_rounds=WARMUP_ROUNDS)
    record_latency()
    assert rows.shape == (1,) and int(rows[0]) == expected[-1]


@pytest.mark.benchmark(group="identity-resolve")
def test_resolve_one(benchmark: Any, state: BenchState, record_latency: Callable[[], None]) -> None:
    """One raw email of a random known person per round: normalise, check, hash, look up."""
    graph = state.engine.identity
    people = _people(state, 4)
    it = iter(people)
    expected: list[int] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        p = int(next(it))
        expected.append(int(state.rows[p]))
        return ({"email": state.email(p).upper()},), {}

    with _no_gc():
        row = benchmark.pedantic(graph.resolve_one, setup=setup, rounds=LOOKUP_ROUNDS, warmup_rounds=WARMUP_ROUNDS)
    record_latency()
    assert row == expected[-1] >= 0
