"""``_kernels/graph.py`` (open-addressing table + union-find) against ``IdentityGraphRef``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from decisioner._kernels import graph as G

from ._helpers import size

U64 = 2**64


class KGraph:
    """The kernel state, grown like ``IdentityGraph`` (nodes by doubling, table at most half
    full, rehashed with ``graph_rehash``), starting tiny so growth happens often."""

    def __init__(self, node_cap: int = 4, table_cap: int = 8) -> None:
        self.tab_keys = np.zeros(table_cap, np.uint64)
        self.tab_nodes = np.full(table_cap, -1, np.int32)
        self.node_key = np.zeros(node_cap, np.uint64)
        self.node_type = np.zeros(node_cap, np.int8)
        self.parent = np.zeros(node_cap, np.int32)
        self.size = np.zeros(node_cap, np.int32)
        self.row = np.full(node_cap, -1, np.int32)
        self.counts = np.zeros(4, np.int64)
        self.free_rows = np.zeros(2, np.int32)
        self.rehashes = 0

    @property
    def n_nodes(self) -> int:
        return int(self.counts[G.C_NODES])

    def reserve(self, extra: int) -> None:
        need = self.n_nodes + extra
        if need > self.node_key.shape[0]:
            cap = self.node_key.shape[0]
            while cap < need:
                cap *= 2
            for name, fill in (("node_key", 0), ("node_type", 0), ("parent", 0), ("size", 0), ("row", -1)):
                old = getattr(self, name)
                new = np.full(cap, fill, old.dtype)
                new[: old.shape[0]] = old
                setattr(self, name, new)
        if 2 * need > self.tab_keys.shape[0]:
            cap = self.tab_keys.shape[0]
            while 2 * need > cap:
                cap *= 2
            self.rehash(cap)

    def rehash(self, cap: int) -> None:
        keys = np.zeros(cap, np.uint64)
        nodes = np.full(cap, -1, np.int32)
        G.graph_rehash(self.tab_keys, self.tab_nodes, keys, nodes)
        self.tab_keys, self.tab_nodes = keys, nodes
        self.rehashes += 1

    def state(self) -> tuple[np.ndarray, ...]:
        return (self.tab_keys, self.tab_nodes, self.node_key, self.node_type, self.parent, self.size,
                self.row, self.counts, self.free_rows)

    def link(self, keys: Sequence[int], types: Sequence[int] | None = None) -> tuple[int, list[int]]:
        k = np.array(keys, dtype=np.uint64)
        t = np.array([x % 7 for x in keys] if types is None else types, dtype=np.int8)
        self.reserve(k.shape[0])
        absorbed = np.full(max(k.shape[0], 1), -7, np.int32)
        row, n_abs = G.graph_link(*self.state(), k, t, absorbed)
        return int(row), absorbed[:n_abs].tolist()

    def link_many(
        self, keys: Sequence[int], types: Sequence[int], offsets: Sequence[int]
    ) -> tuple[list[int], list[int], list[int]]:
        k = np.array(keys, dtype=np.uint64)
        self.reserve(k.shape[0])
        out = np.full(len(offsets) - 1, -7, np.int32)
        absorbed = np.full(max(k.shape[0], 1), -7, np.int32)
        into = np.full(max(k.shape[0], 1), -7, np.int32)
        n = G.graph_link_many(*self.state(), k, np.array(types, np.int8), np.array(offsets, np.int64),
                              out, absorbed, into)
        return out.tolist(), absorbed[:n].tolist(), into[:n].tolist()

    def release(self, rows: Sequence[int]) -> None:
        n = int(self.counts[G.C_FREE])
        need = n + len(rows)
        if need > self.free_rows.shape[0]:
            new = np.zeros(2 * need, np.int32)
            new[:n] = self.free_rows[:n]
            self.free_rows = new
        self.free_rows[n:need] = rows
        self.counts[G.C_FREE] = need

    def lookup(self, keys: Sequence[int]) -> list[int]:
        out = np.full(len(keys), -7, np.int32)
        found = G.graph_lookup_many(self.tab_keys, self.tab_nodes, self.parent, self.row,
                                    np.array(keys, dtype=np.uint64), out)
        assert found == int((out >= 0).sum())
        return out.tolist()

    def component_rows(self) -> list[int]:
        out = np.full(self.n_nodes, -7, np.int32)
        G.graph_component_rows(self.parent, self.row, self.n_nodes, out)
        return out.tolist()


def assert_same_state(kg: KGraph, rg: ref.IdentityGraphRef) -> None:
    """Kernel arrays describe exactly the twin's graph."""
    n = kg.n_nodes
    assert n == rg.n_nodes
    assert kg.counts.tolist() == [rg.n_nodes, rg.n_rows, len(rg.free), rg.merges]
    assert kg.free_rows[: len(rg.free)].tolist() == rg.free
    assert kg.node_key[:n].tolist() == rg.node_key
    assert kg.node_type[:n].tolist() == rg.node_type
    # the array twins (full-scan lookups, pointer chasing) before the kernels compress paths
    assert ref.graph_component_rows(kg.parent, kg.row, n) == rg.component_rows()
    assert ref.graph_lookup_many(kg.tab_keys, kg.tab_nodes, kg.parent, kg.row, rg.node_key) == rg.component_rows()
    assert kg.lookup(rg.node_key) == [rg.lookup(k) for k in rg.node_key]
    assert kg.component_rows() == rg.component_rows()
    # union-find invariants: sizes at roots, one row per live component, rows never shared
    roots = [x for x in range(n) if kg.parent[x] == x]
    assert sorted(int(kg.size[r]) for r in roots) == sorted(len(m) for m in rg.members.values())
    live = [int(kg.row[r]) for r in roots]
    assert min(live, default=0) >= 0 and len(set(live)) == len(live)
    assert not set(live) & set(rg.free)
    assert int((kg.tab_nodes >= 0).sum()) == n
    assert 2 * n <= kg.tab_keys.shape[0]


def run_events(events: Sequence[Sequence[int]], release_every: int = 0) -> tuple[KGraph, ref.IdentityGraphRef]:
    """Link each event in both graphs, comparing every result; every ``release_every`` events
    the absorbed rows so far are released (as the profile store does after folding them)."""
    kg, rg = KGraph(), ref.IdentityGraphRef()
    pending: list[int] = []
    for i, ev in enumerate(events):
        got = kg.link(ev)
        want = rg.link(ev, [x % 7 for x in ev])
        assert got == want, f"event {i}: {list(ev)}"
        pending += got[1]
        if release_every and (i + 1) % release_every == 0 and pending:
            kg.release(pending)
            rg.release(pending)
            pending = []
    return kg, rg


# --------------------------------------------------------------------------- hand-made cases


def test_first_event_gets_row_zero() -> None:
    kg, rg = run_events([[10]])
    assert kg.lookup([10, 11]) == [0, -1]
    assert_same_state(kg, rg)


def test_duplicate_keys_in_one_event() -> None:
    kg, rg = run_events([[5, 5, 5], [5, 6, 6, 5]])
    assert kg.n_nodes == 2
    assert kg.lookup([5, 6]) == [0, 0]
    assert int(kg.counts[G.C_MERGES]) == 1
    assert_same_state(kg, rg)


def test_chain_of_links_is_one_component() -> None:
    kg, rg = run_events([[1, 2], [2, 3], [3, 4], [4, 5]])
    assert kg.lookup([1, 2, 3, 4, 5]) == [0] * 5
    assert int(kg.counts[G.C_ROWS]) == 1
    assert_same_state(kg, rg)


def test_relinking_a_cycle_changes_nothing() -> None:
    kg, rg = run_events([[1, 2], [2, 3]])
    before = [a.copy() for a in kg.state()]
    for ev in ([3, 1], [1, 2, 3], [2], [3, 3, 1]):
        assert kg.link(ev) == (0, []) == rg.link(ev, [x % 7 for x in ev])
    assert kg.counts.tolist() == before[7].tolist()
    assert kg.row[:3].tolist() == before[6][:3].tolist()
    assert_same_state(kg, rg)


def test_merge_of_three_components_in_one_event() -> None:
    # rows 0 (3 nodes), 1 (2 nodes), 2 (2 nodes)
    kg, rg = run_events([[1, 2, 3], [4, 5], [6, 7]])
    got = kg.link([6, 4, 99, 1])
    assert got == rg.link([6, 4, 99, 1], [6, 4, 1, 1])
    assert got == (0, [2, 1])  # largest survives; absorbed in order of first appearance
    assert kg.lookup([1, 4, 6, 99]) == [0, 0, 0, 0]
    assert int(kg.counts[G.C_MERGES]) == 2 + 1 + 1 + 3


def test_survivor_ties_go_to_the_lowest_row() -> None:
    kg, rg = run_events([[1, 2], [3, 4], [5, 6]])
    assert kg.link([5, 3]) == rg.link([5, 3], [5, 3]) == (1, [2])
    assert kg.link([1, 3]) == rg.link([1, 3], [1, 3]) == (1, [0])  # size 4 beats size 2


def test_survivor_is_the_largest_not_the_lowest_row() -> None:
    kg, rg = run_events([[1], [2, 3, 4]])
    assert kg.link([1, 2]) == rg.link([1, 2], [1, 2]) == (1, [0])
    assert_same_state(kg, rg)


def test_free_rows_are_reused_last_released_first() -> None:
    kg, rg = run_events([[1], [2], [3], [1, 2, 3]])  # rows 0, 1, 2; 0 absorbs 1, 2
    kg.release([1, 2])
    rg.release([1, 2])
    for ev, want in (([10], 2), ([11], 1), ([12], 3), ([10, 11, 13], 1)):
        got = kg.link(ev)
        assert got == rg.link(ev, [x % 7 for x in ev])
        assert got[0] == want
    assert_same_state(kg, rg)


def test_rows_of_absorbed_components_come_back_through_release() -> None:
    kg, rg = run_events([[i] for i in range(8)] + [[0, 1, 2, 3, 4, 5, 6, 7]], release_every=1)
    assert rg.free == [1, 2, 3, 4, 5, 6, 7]
    assert [kg.link([100 + i])[0] for i in range(8)] == [7, 6, 5, 4, 3, 2, 1, 8]


def test_link_empty_event_changes_nothing() -> None:
    """Regression: ``_link_one`` with no keys used to hand out a row and write it to
    ``row[-1]`` (the last node slot)."""
    kg, rg = run_events([[1, 2]])
    before = [a.copy() for a in kg.state()]
    absorbed = np.zeros(1, np.int32)
    row, n_abs = G.graph_link(*kg.state(), np.empty(0, np.uint64), np.empty(0, np.int8), absorbed)
    assert (row, n_abs) == (-1, 0) == (rg.link([], [])[0], 0)
    for a, b in zip(before, kg.state()):
        assert np.array_equal(a, b)


def test_link_many_empty_group_does_not_write_row_minus_one() -> None:
    """Regression: offsets [0, 0, 1] (an empty first group) gave the empty group a fresh row and
    stored it in ``row[-1]``; the next group then got row 1 instead of row 0."""
    kg = KGraph(node_cap=8, table_cap=16)
    rows, absorbed, into = kg.link_many([7], [0], [0, 0, 1])
    assert rows == [-1, 0]
    assert absorbed == [] and into == []
    assert kg.row.tolist() == [0] + [-1] * 7
    assert kg.counts.tolist() == [1, 1, 0, 0]
    rg = ref.IdentityGraphRef()
    assert rg.link_many([7], [0], [0, 0, 1]) == (rows, absorbed, into)


def test_link_many_no_groups() -> None:
    kg = KGraph()
    assert kg.link_many([], [], [0]) == ([], [], [])
    assert kg.counts.tolist() == [0, 0, 0, 0]


def test_link_many_matches_twin_and_sequential_links() -> None:
    groups = [[1, 2], [3], [4, 5, 6], [], [2, 3], [6, 7, 1], [8], [8, 8], [9, 4]]
    keys = [k for g in groups for k in g]
    types = [k % 7 for k in keys]
    offsets = np.cumsum([0] + [len(g) for g in groups]).tolist()
    kg = KGraph()
    got = kg.link_many(keys, types, offsets)
    rg = ref.IdentityGraphRef()
    assert got == rg.link_many(keys, types, offsets)
    assert got[1] == [1, 2] and got[2] == [4, 5]
    assert_same_state(kg, rg)
    seq = KGraph()
    for g in groups:
        if g:
            seq.link(g)
    assert seq.row.tolist()[: seq.n_nodes] == kg.row.tolist()[: kg.n_nodes]
    assert seq.counts.tolist() == kg.counts.tolist()


@pytest.mark.parametrize("keys", [[0], [U64 - 1], [0, U64 - 1, 2**63, 2**63 - 1], [U64 - 1, 0]])
def test_extreme_keys(keys: list[int]) -> None:
    kg, rg = run_events([keys, [keys[0], 42]])
    assert kg.lookup(keys + [1]) == [0] * len(keys) + [-1]
    assert_same_state(kg, rg)


def test_colliding_keys_probe_and_wrap_around() -> None:
    """Keys that all hash to the last slot probe linearly and wrap to slot 0."""
    kg = KGraph(node_cap=8, table_cap=16)
    rg = ref.IdentityGraphRef()
    keys = [15 + 16 * j for j in range(6)] + [U64 - 1]
    for k in keys:
        assert kg.link([k]) == rg.link([k], [k % 7])
    assert kg.tab_keys.shape[0] == 16  # no growth: the probing is what is tested
    assert kg.tab_nodes[15] == 0 and kg.tab_nodes[:6].tolist() == [1, 2, 3, 4, 5, 6]
    assert kg.lookup(keys + [31 + 16 * 10]) == list(range(7)) + [-1]
    assert_same_state(kg, rg)


def test_lookup_of_nothing_and_of_unknown_keys() -> None:
    kg = KGraph()
    assert kg.lookup([]) == []
    assert kg.lookup([1, 2]) == [-1, -1]
    kg.link([1])
    assert kg.lookup([2, 1, 2]) == [-1, 0, -1]


def test_rehash_preserves_every_lookup(make_rng) -> None:  # type: ignore[no-untyped-def]
    g = make_rng()
    keys = np.unique(g.integers(0, U64, size=200, dtype=np.uint64, endpoint=False)).tolist()
    keys += [0, 16, 32, 48, U64 - 1]  # collisions in small tables
    kg = KGraph(node_cap=1024, table_cap=1024)
    for i in range(0, len(keys), 3):
        kg.link(keys[i : i + 3])
    before = kg.lookup(keys)
    for cap in (1024, 2048, 4096 * 4):
        old_k, old_n = kg.tab_keys.copy(), kg.tab_nodes.copy()
        kg.rehash(cap)
        want_k, want_n = ref.graph_rehash(old_k, old_n, cap)
        assert np.array_equal(kg.tab_keys, want_k) and np.array_equal(kg.tab_nodes, want_n)
        assert kg.lookup(keys) == before
        assert sorted(kg.tab_nodes[kg.tab_nodes >= 0].tolist()) == list(range(kg.n_nodes))


def test_rehash_of_an_empty_table() -> None:
    keys = np.zeros(8, np.uint64)
    nodes = np.full(8, -1, np.int32)
    G.graph_rehash(np.zeros(4, np.uint64), np.full(4, -1, np.int32), keys, nodes)
    assert (nodes == -1).all() and (keys == 0).all()


def test_find_root_matches_pointer_chasing(make_rng) -> None:  # type: ignore[no-untyped-def]
    g = make_rng()
    n = size(600, 150)
    events = [g.integers(0, n, size=g.integers(1, 4)).tolist() for _ in range(n)]
    kg, rg = run_events(events)
    parent = kg.parent.copy()
    roots = [ref.find_root(parent, x) for x in range(kg.n_nodes)]
    got = [G.graph_find_root(kg.parent, x) for x in range(kg.n_nodes)]
    assert got == roots  # path halving moves pointers but never changes a root
    assert all(kg.parent[r] == r for r in got)
    assert [ref.find_root(kg.parent, x) for x in range(kg.n_nodes)] == roots
    assert_same_state(kg, rg)


def test_component_rows_of_no_nodes() -> None:
    out = np.empty(0, np.int32)
    G.graph_component_rows(np.zeros(0, np.int32), np.zeros(0, np.int32), 0, out)


# --------------------------------------------------------------------------- seeded random


@pytest.mark.parametrize("stream", range(4))
def test_random_link_sequences(make_rng, stream: int) -> None:  # type: ignore[no-untyped-def]
    """Thousands of events over a key universe sized for many merges (and chains of merges of
    components that already absorbed others), with periodic row release."""
    g = make_rng(stream)
    n_events = size(2500, 250)
    universe = [int(x) for x in g.integers(0, U64, size=n_events, dtype=np.uint64)]
    events = [
        [universe[j] for j in g.integers(0, len(universe), size=int(g.integers(1, 5)))]
        for _ in range(n_events)
    ]
    kg, rg = run_events(events, release_every=int(g.integers(1, 20)))
    assert kg.rehashes >= 3
    assert_same_state(kg, rg)
    assert set(rg.components()) == ref.connected_components(events)


@pytest.mark.parametrize("stream", range(3))
def test_random_link_many_matches_twin(make_rng, stream: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(100 + stream)
    n_groups = size(1500, 200)
    sizes = g.integers(0, 5, size=n_groups)  # includes empty groups
    keys = g.integers(0, 2 * n_groups, size=int(sizes.sum())).tolist()
    types = [k % 7 for k in keys]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    kg, rg = KGraph(), ref.IdentityGraphRef()
    # in a few batches, releasing absorbed rows between them
    cut = sorted(g.choice(np.arange(1, n_groups), size=3, replace=False).tolist())
    for lo, hi in zip([0] + cut, cut + [n_groups]):
        o = offsets[lo : hi + 1]
        ks, ts = keys[o[0] : o[-1]], types[o[0] : o[-1]]
        rel = [x - o[0] for x in o]
        got = kg.link_many(ks, ts, rel)
        assert got == rg.link_many(ks, ts, rel)
        kg.release(got[1])
        rg.release(got[1])
    assert_same_state(kg, rg)
    events = [keys[offsets[i] : offsets[i + 1]] for i in range(n_groups)]
    assert set(rg.components()) == ref.connected_components(events)


# --------------------------------------------------------------------------- properties

small_events = st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=5), max_size=40)


@settings(max_examples=size(150, 40))
@given(events=small_events, release_every=st.integers(0, 5), big=st.booleans())
def test_components_equal_connected_components(events: list[list[int]], release_every: int, big: bool) -> None:
    """Random link sequences: same rows and absorbed rows as the twin at every step, and the
    final components are the graph's connected components (BFS, no union-find)."""
    if big:  # spread the keys over the full 64-bit range (same graph shape)
        events = [[(k * 0x9E3779B97F4A7C15) % U64 for k in ev] for ev in events]
    kg, rg = run_events(events, release_every)
    assert_same_state(kg, rg)
    assert set(rg.components()) == ref.connected_components(events)
    try:
        import networkx as nx
    except ImportError:
        return
    gr = nx.Graph()
    for ev in events:
        gr.add_nodes_from(ev)
        nx.add_path(gr, ev)
    assert set(rg.components()) == {frozenset(c) for c in nx.connected_components(gr)}
