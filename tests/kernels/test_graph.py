"""``_kernels/graph.py`` (key table, union-find with merge rules, evidence, unmerge) against
``IdentityGraphRef``.

The kernels are driven through :class:`~decisioner.identity.IdentityGraph` with pre-hashed keys
(its only job here is growing the arrays, from a tiny capacity so growth and rehashing happen
often); every result and, after every step, the whole state is compared with the twin.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from decisioner._kernels import graph as G
from decisioner.config import IdentifierSpec, IdentitySpec
from decisioner.errors import SchemaError
from decisioner.identity import IdentityGraph

from ._helpers import size

U64 = 2**64
KEY = bytes(range(16))
#: seven types: t0 unique (priority 100), t1 at most 2 (50), t2 at most 3 (10), others free
TYPES = tuple(f"t{i}" for i in range(7))
RULES = (
    IdentifierSpec(name="t0", unique=True, priority=100),
    IdentifierSpec(name="t1", limit=2, priority=50),
    IdentifierSpec(name="t2", limit=3, priority=10, ttl_days=1.0),
)


def spec(rules: bool = True, cap: int = 0) -> IdentitySpec:
    # no default identifier names in TYPES, no blocked values: node numbering starts at 0
    return IdentitySpec(types=TYPES, identifiers=RULES, blocked=(), rules=rules, max_identifiers=cap)


class Pair:
    """An IdentityGraph and its twin, configured alike, fed alike."""

    def __init__(self, rules: bool = True, cap: int = 0) -> None:
        self.g = IdentityGraph(KEY, capacity=2, spec=spec(rules, cap))
        r = self.g.rules
        slot = [r.slot_of.get(t, -1) for t in TYPES]
        prio = [s.priority for s in (RULES + tuple(IdentifierSpec(name=t) for t in TYPES[3:]))]
        self.r = ref.IdentityGraphRef(rules=rules, prio=prio, slot=slot, limits=r.slot_limits, cap=cap if rules else 0)
        self.ttl = [int(self.g.trules_[c, G.T_TTL]) for c in range(len(TYPES))]

    def link(
        self, keys: Sequence[int], types: Sequence[int] | None = None, *, tags: Sequence[int] | None = None,
        flags: Sequence[bool] | None = None, t: int = 0, readmit: bool = False,
    ) -> tuple[int, list[int]]:
        m = len(keys)
        types = [k % 7 for k in keys] if types is None else list(types)
        tags = [0] * m if tags is None else list(tags)
        flags = [False] * m if flags is None else list(flags)
        arr = np.array([list(keys), [tg | (1 << 32 if f else 0) for tg, f in zip(tags, flags)]], dtype=np.uint64)
        res = self.g.link_keys(arr, np.array(types, np.int8), time=t,
                               consent={"personalization": True} if readmit else None)
        row, absorbed, st_ = self.r.link(keys, types, tags, flags, t_ms=t, readmit=readmit)
        assert (res.row, res.absorbed.tolist()) == (row, absorbed), (list(keys), res, row, absorbed)
        assert (res.new, res.refused, res.suppressed, res.anonymous) == (
            st_["new"], st_["refused"], st_["suppressed"], st_["anonymous"])
        return row, absorbed

    def release(self, rows: Sequence[int]) -> None:
        self.g.release_rows(np.array(rows, np.int32))
        self.r.release(rows)

    def node(self, key: int) -> int:
        return self.r.node_of[key]


def keys_arr(keys: Sequence[int]) -> np.ndarray:
    return np.array([list(keys), [0] * len(keys)], dtype=np.uint64)


def assert_same(p: Pair) -> None:
    """The kernel arrays describe exactly the twin's graph."""
    g, r = p.g, p.r
    meta = g.meta_
    n = int(meta[G.C_NODES])
    assert n == r.n_records
    nodes = g.nodes_[:n]
    assert nodes["key"].tolist() == r.key
    assert nodes["tag"].tolist() == r.tag
    live = [x for x in range(n) if r.state[x] == ref.LIVE]
    assert (nodes["state"] & G.STATE_MASK).tolist() == r.state
    assert nodes["type"][live].tolist() == [r.type[x] for x in live]
    assert nodes["seen"][live].tolist() == [r.seen[x] for x in live]
    assert g.free_nodes_[: int(meta[G.C_FREE_NODES])].tolist() == r.free_nodes
    assert [int(meta[i]) for i in (G.C_ROWS, G.C_FREE, G.C_MERGES, G.C_LIVE, G.C_SCRATCH)] == [
        r.n_rows, len(r.free), r.merges, r.n_live, r.scratch]
    assert g.free_rows_[: len(r.free)].tolist() == r.free
    assert [int(meta[i]) for i in (G.C_EVENTS, G.C_SUPPRESSED, G.C_ANONYMOUS, G.C_READMITTED)] == [
        r.events, r.suppressed, r.anonymous, r.readmitted]
    assert [int(meta[i]) for i in range(G.R_BLOCKED, G.R_DNL + 1)] == [r.refused[k] for k in ref.REASONS]
    # key table: a full scan (no probing) finds every stored record once, fingerprints intact
    assert ref.table_contents(g.tab_, g.nodes_) == {k: x for k, x in r.node_of.items()}
    assert 4 * int(meta[G.C_TAB]) <= 3 * g.tab_.shape[0] and int(meta[G.C_TAB]) == len(r.node_of)
    # lookups (kernel probing) and rows by node
    known = list(r.node_of)
    assert g.resolve_keys(keys_arr(known)).tolist() == [r.lookup(k) for k in known]
    assert [g.resolve_key(k) for k in known[:50]] == [r.lookup(k) for k in known[:50]]
    assert g.component_rows().tolist() == r.component_rows()
    # union-find: every live node reaches a root holding its row; member lists and counters
    for x in live:
        root = ref.find_root(g.nodes_, x)
        assert -2 - int(g.nodes_["parent"][root]) == r.row_of(x)
    for label, mem in r.members.items():
        row = r.comp_row[label]
        assert set(g.members(row).tolist()) == mem
        assert int(g.rows_["size"][row]) == len(mem)
        assert g.cnt_[row, : len(r.limits)].tolist() == r._counts(mem)
    # evidence and do-not-link pairs
    e = g.edges_[: int(meta[G.C_EDGES])]
    alive = e[e["src"] >= 0]
    got = [(int(g.nodes_["key"][a]), int(g.nodes_["key"][b]), int(t), int(s)) for a, b, t, s in
           zip(alive["a"], alive["b"], alive["t"], alive["src"])]
    assert got == r.live_edges()
    d = g.dnl_[: int(meta[G.C_DNL])]
    assert {frozenset((int(a), int(b))) for a, b in d} == {frozenset(pq) for pq in r.dnl}


def run(events: Sequence[Sequence[int]], *, rules: bool = True, release_every: int = 0, cap: int = 0) -> Pair:
    p = Pair(rules, cap)
    pending: list[int] = []
    for i, ev in enumerate(events):
        _, ab = p.link(ev, t=1_700_000_000_000 + 60_000 * i)
        pending += ab
        if release_every and (i + 1) % release_every == 0 and pending:
            p.release(pending)
            pending = []
    return p


# --------------------------------------------------------------------------- rules off: plain union-find


def test_first_event_gets_row_zero() -> None:
    p = run([[10]], rules=False)
    assert p.g.resolve_keys(keys_arr([10, 11])).tolist() == [0, -1]
    assert_same(p)


def test_duplicate_keys_in_one_event() -> None:
    p = run([[5, 5, 5], [5, 6, 6, 5]], rules=False)
    assert p.g.n_nodes == 2 and int(p.g.meta_[G.C_MERGES]) == 1
    assert p.g.resolve_keys(keys_arr([5, 6])).tolist() == [0, 0]
    assert_same(p)


def test_chain_of_links_is_one_component_with_its_evidence() -> None:
    p = run([[1, 2], [2, 3], [3, 4], [4, 5]], rules=False)
    assert p.g.resolve_keys(keys_arr([1, 2, 3, 4, 5])).tolist() == [0] * 5
    assert [(a, b) for a, b, _, _ in p.r.live_edges()] == [(1, 2), (2, 3), (3, 4), (4, 5)]
    assert_same(p)


def test_relinking_a_cycle_changes_nothing_but_records_new_links() -> None:
    p = run([[1, 2], [2, 3]], rules=False)
    for ev in ([3, 1], [1, 2, 3], [2], [3, 3, 1]):
        assert p.link(ev) == (0, [])
    assert [(a, b) for a, b, _, _ in p.r.live_edges()] == [(1, 2), (2, 3), (3, 1)]  # once each
    assert_same(p)


def test_merge_of_three_components_in_one_event() -> None:
    p = run([[1, 2, 3], [4, 5], [6, 7]], rules=False)  # rows 0 (3 nodes), 1, 2 (2 nodes)
    assert p.link([6, 4, 99, 1]) == (0, [2, 1])  # largest survives; absorbed in event order
    assert p.g.resolve_keys(keys_arr([1, 4, 6, 99])).tolist() == [0, 0, 0, 0]
    assert_same(p)


def test_survivor_ties_go_to_the_lowest_row() -> None:
    p = run([[1, 2], [3, 4], [5, 6]], rules=False)
    assert p.link([5, 3]) == (1, [2])
    assert p.link([1, 3]) == (1, [0])  # size 4 beats size 2
    assert_same(p)


def test_free_rows_are_reused_last_released_first() -> None:
    p = run([[1], [2], [3], [1, 2, 3]], rules=False)  # rows 0, 1, 2; 0 absorbs 1, 2
    p.release([1, 2])
    for ev, want in (([10], 2), ([11], 1), ([12], 3), ([10, 11, 13], 1)):
        assert p.link(ev)[0] == want
    assert_same(p)


def test_link_many_empty_group_changes_nothing() -> None:
    """Regression: an empty group once handed out a row and wrote it to the last node slot."""
    p = Pair(rules=False)
    rows = p.g.link_many(keys_arr([7]), np.array([0], np.int8), np.array([0, 1]))
    assert rows.tolist() == [0]
    k = np.empty((2, 0), np.uint64)
    out = np.full(2, -7, np.int32)
    ab = np.zeros(1, np.int32)
    before = [a.copy() for a in p.g.to_arrays().values()]
    G.graph_link_many(p.g.tab_, p.g.nodes_, p.g.rows_, p.g.cnt_, p.g.free_rows_, p.g.free_nodes_, p.g.meta_,
                      p.g.trules_, p.g.dnl_, p.g.edges_, p.g.ev_head_, k, np.zeros(0, np.int8),
                      np.array([0, 0, 0], np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), out, ab, ab,
                      np.zeros(16, np.int64))
    assert out.tolist() == [-1, -1]
    for a, b in zip(before, p.g.to_arrays().values()):
        assert np.array_equal(a, b)


def test_link_many_matches_twin_and_forwards_absorbed_rows() -> None:
    groups = [[1, 2], [3], [4, 5, 6], [2, 3], [6, 7, 1], [8], [8, 8], [9, 4]]
    keys = [k for g in groups for k in g]
    types = [k % 7 for k in keys]
    offsets = np.cumsum([0] + [len(g) for g in groups]).tolist()
    p = Pair(rules=False)
    got = p.g.link_many(keys_arr(keys), np.array(types, np.int8), np.array(offsets))
    want, _absorbed, _into = p.r.link_many(keys, types, offsets)
    assert got.tolist() == want
    assert len(set(want[:5])) == 1  # an early group's row was absorbed later: forwarded
    assert_same(p)


@pytest.mark.parametrize("keys", [[0], [U64 - 1], [0, U64 - 1, 2**63, 2**63 - 1], [U64 - 1, 0]])
def test_extreme_keys(keys: list[int]) -> None:
    p = run([keys, [keys[0], 42]], rules=False)
    assert p.g.resolve_keys(keys_arr([*keys, 1])).tolist() == [0] * len(keys) + [-1]
    assert_same(p)


def test_colliding_slots_and_fingerprints_probe_and_wrap_around() -> None:
    """Keys sharing their home slot (low bits) or their fingerprint (high bits) probe linearly,
    wrap past the end of the table, and are told apart by the full key."""
    p = Pair(rules=False)
    cap = p.g.tab_.shape[0]
    same_slot = [cap - 1 + cap * j for j in range(5)]  # all start at the last slot
    same_fp = [(7 << 32) | j for j in range(3)]  # equal high halves
    for k in same_slot + same_fp:
        p.link([k])
    assert p.g.tab_.shape[0] == cap  # no growth: the probing is what is tested
    assert_same(p)
    assert p.g.resolve_keys(keys_arr([cap - 1 + cap * 9, (7 << 32) | 9])).tolist() == [-1, -1]


def test_rehash_preserves_every_lookup(make_rng) -> None:  # type: ignore[no-untyped-def]
    g = make_rng()
    keys = [*np.unique(g.integers(0, U64, size=300, dtype=np.uint64)).tolist(), 0, 16, 32, U64 - 1]
    p = Pair(rules=False)
    for i in range(0, len(keys), 3):
        p.link(keys[i : i + 3])
    nodes = p.g.nodes_
    for cap in (1024, 4096):
        new = np.zeros(cap, np.uint64)
        G.graph_rehash(p.g.tab_, new, nodes)
        assert np.array_equal(new, ref.graph_rehash(p.g.tab_, nodes, cap))
        assert ref.table_contents(new, nodes) == ref.table_contents(p.g.tab_, nodes)


def test_find_root_and_members_match_pointer_chasing(make_rng) -> None:  # type: ignore[no-untyped-def]
    g = make_rng()
    n = size(600, 150)
    p = run([g.integers(0, n, size=g.integers(1, 4)).tolist() for _ in range(n)], rules=False)
    for x in range(p.g.n_nodes):
        root = ref.find_root(p.g.nodes_.copy(), x)
        assert G.graph_find_root(p.g.nodes_, x) == root  # path halving never changes a root
        assert int(p.g.nodes_["parent"][root]) < -1
    assert_same(p)


# --------------------------------------------------------------------------- rules on


def test_unique_conflict_keeps_the_lower_priority_identifier_where_it_was() -> None:
    """The family tablet (t3, priority 0) first links to user A (t0: unique); user B's login on
    it is refused: the tablet stays with A and B's event resolves to B's own new profile."""
    p = Pair()
    a = p.link([700, 3], [0, 3])[0]  # user 700 + tablet 3
    b, ab = p.link([3, 707], [3, 0])  # tablet + user 707: would give two t0 values
    assert (a, b, ab) == (0, 1, []) and p.g.metrics()["refused"]["unique"] == 1
    assert p.g.resolve_keys(keys_arr([3, 707])).tolist() == [0, 1]
    assert p.r.live_edges()[-1][:2] == (707, 3)  # the refused link is kept as evidence
    assert_same(p)


def test_limits_and_size_cap_refuse_and_count() -> None:
    p = Pair(cap=6)
    p.link([1, 10], [1, 4])  # t1 value 1
    p.link([1, 11], [1, 4])
    p.link([2, 12], [1, 4])  # a second t1 value: a new component
    assert p.link([10, 2], [4, 1]) == (0, [1])  # joins: two t1 values allowed, size 5 <= 6
    assert p.link([3], [1])[0] == 2  # (row 1 was absorbed and not released)
    assert p.link([10, 3], [4, 1]) == (2, [])  # a third t1 value: refused (anchor: t1 key 3)
    p.link([20, 21, 22], [5, 5, 5])
    assert p.link([11, 20], [4, 5])[0] == 0  # 5 + 3 > cap 6: refused
    m = p.g.metrics()["refused"]
    assert (m["limit"], m["size_cap"]) == (1, 1)
    assert_same(p)


def test_priority_picks_the_anchor_and_the_acceptance_order() -> None:
    p = Pair()
    p.link([5], [2])  # t2 alone: row 0
    p.link([6], [1])  # t1 alone: row 1
    row, ab = p.link([5, 6, 9], [2, 1, 0])  # anchor: the t0 key 9 (new)
    assert (row, ab) == (0, [1])
    assert [(a, b) for a, b, _, _ in p.r.live_edges()] == [(9, 6), (9, 5)]  # in priority order
    assert_same(p)


def test_blocked_flag_and_blocked_nodes_never_link() -> None:
    p = Pair()
    row, _ = p.link([1, 50], [4, 4], flags=[False, True])
    assert p.g.resolve_keys(keys_arr([50])).tolist() == [-1]
    assert p.link([50], [4]) == (row + 1, [])  # the stored blocked key: scratch row
    assert p.g.metrics()["anonymous_events"] == 1 and p.g.metrics()["refused"]["blocked"] == 2
    assert_same(p)


def test_collisions_are_refused_not_merged() -> None:
    p = Pair()
    p.link([42, 1], [4, 4], tags=[111, 0])
    row, _ = p.link([42, 2], [4, 4], tags=[222, 0])  # same key, another check tag
    assert row == 1 and p.g.metrics()["refused"]["collision"] == 1
    assert p.g.resolve_key(42, 222) == -1 and p.g.resolve_key(42, 111) == 0 and p.g.resolve_key(42) == 0
    p.link([2, 43], [4, 4], tags=[0, 5])
    p.link([43], [4], tags=[0])  # unknown tag: matches, the stored one is kept
    assert_same(p)


def test_tombstones_suppress_events_until_readmitted() -> None:
    p = Pair()
    p.link([1, 2], [0, 4])
    p.link([3], [4])
    p.g.forget(keys_arr([2]))
    p.r.remove_and_recompute([p.node(2)], ref.TOMB)
    assert_same(p)
    assert p.link([2, 3], [4, 4]) == (1, [])  # suppressed: resolves to key 3's row, links nothing
    assert p.link([2], [4])[0] == 2  # only the erased key: the scratch row (row 2)
    assert p.link([2, 3], [4, 4], readmit=True) == (1, [])  # explicit consent: 2 joins 3 anew
    m = p.g.metrics()
    assert (m["suppressed_events"], m["readmitted"], m["anonymous_events"]) == (2, 1, 1)
    assert_same(p)


def test_unlink_recomputes_the_component_and_keeps_it_apart() -> None:
    p = Pair()
    p.link([1, 2], [0, 4])  # user 1, cookie 2
    p.link([1, 3], [0, 4])  # cookie 3
    p.link([2, 4], [4, 4])  # cookie 4 via cookie 2
    res = p.g.unlink(keys_arr([2]))  # cookie 2 was the bridge to cookie 4
    want = p.r.unlink(p.node(2))
    assert (res.row, res.new_rows.tolist()) == want == (0, [1, 2])  # cookie 2 alone, then cookie 4
    assert_same(p)
    assert p.g.resolve_keys(keys_arr([1, 3, 4, 2])).tolist() == [0, 0, 2, 1]
    p.link([2, 1], [4, 0])  # do-not-link: refused
    p.link([2, 4], [4, 4])  # cookie 4 was linked to 2 in the old profile: refused too
    assert p.link([2, 99], [4, 4])[0] == 1  # a link to a new identifier is allowed
    assert p.g.metrics()["refused"]["do_not_link"] == 2
    assert_same(p)


def test_split_apart_and_forget_a_whole_person() -> None:
    p = Pair()
    for ev in ([1, 10], [1, 11], [2, 11], [2, 12], [12, 13]):
        p.link(ev, [4, 4] if ev[0] > 9 else [3, 4])
    row = p.r.row_of(p.node(1))
    res = p.g.split(row, apart=[keys_arr([1]), keys_arr([2])])
    assert res.new_rows.tolist() == p.r.split(row, [p.node(1), p.node(2)])
    assert_same(p)
    row2 = p.r.row_of(p.node(2))
    res = p.g.forget(row=row2)
    new, erased = p.r.remove_and_recompute(sorted(p.r.row_members(row2)), ref.TOMB)
    assert (res.new_rows.tolist(), res.erased.tolist()) == (new, erased) and erased == [row2]
    assert_same(p)


def test_block_and_expire_remove_and_recompute() -> None:
    p = Pair()
    t0 = 1_700_000_000_000
    p.link([1, 2], [3, 2], t=t0)  # t2 has a one-day time-to-live
    p.link([2, 3], [2, 4], t=t0)
    p.link([1, 4], [3, 2], t=t0 + 3 * 86_400_000)
    assert ref.IdentityGraphRef.expired(p.r, p.ttl, t0 + 2 * 86_400_000) == [p.node(2)]
    out = np.empty(16, np.int64)
    k = G.graph_expired(p.g.nodes_, int(p.g.meta_[G.C_NODES]), p.g.trules_, t0 + 2 * 86_400_000, out)
    assert out[:k].tolist() == [p.node(2)]
    res = p.g.expire(t0 + 2 * 86_400_000)
    new, _erased = p.r.remove_and_recompute([p.node(2)], 0)
    assert res.new_rows.tolist() == new
    assert_same(p)
    # a free record is reused by the next new identifier
    p.link([77], [4])
    assert_same(p)
    out32 = np.empty(2, np.int32)
    G.graph_block(p.g.tab_, p.g.nodes_, p.g.free_nodes_, p.g.meta_, keys_arr([3, 99]), np.array([4, 4], np.int8), out32)
    assert out32.tolist() == p.r.block([3, 99], [4, 4]) == [-2 - p.node(3), p.node(99)]
    assert_same(p)


def test_edges_of_lists_every_live_edge_of_the_members() -> None:
    p = run([[1, 2], [2, 3], [3, 1], [4]], rules=False)
    members = np.array([p.node(1), p.node(2)], np.int64)
    out = np.empty(16, np.int64)
    k = G.graph_edges_of(p.g.nodes_, p.g.edges_, p.g.ev_head_, members, out)
    assert sorted(set(out[:k].tolist())) == [0, 1, 2]


def test_link_keys_rejects_no_identifier() -> None:
    p = Pair()
    with pytest.raises(SchemaError, match="^" + re.escape("Expected at least one identifier, got none - at `$.ids`") + "$"):
        p.g.link_keys(np.zeros((2, 0), np.uint64), np.zeros(0, np.int8))


# --------------------------------------------------------------------------- seeded random


def _random_step(p: Pair, g: np.random.Generator, universe: list[int], i: int, ops: bool) -> None:
    u = float(g.random())
    live = [k for k, x in p.r.node_of.items() if p.r.state[x] == ref.LIVE]
    t = 1_700_000_000_000 + 3_600_000 * i
    if ops and u < 0.04 and live:
        k = live[int(g.integers(len(live)))]
        res = p.g.unlink(keys_arr([k]))
        assert res.new_rows.tolist() == p.r.unlink(p.node(k))[1]
    elif ops and u < 0.07 and live:
        k = live[int(g.integers(len(live)))]
        p.g.forget(keys_arr([k]))
        p.r.remove_and_recompute([p.node(k)], ref.TOMB)
    elif ops and u < 0.09 and len(live) >= 2:
        a, b = (live[int(x)] for x in g.choice(len(live), 2, replace=False))
        row = p.r.row_of(p.node(a))
        if p.r.row_of(p.node(b)) == row:
            res = p.g.split(row, apart=[keys_arr([a]), keys_arr([b])])
            assert res.new_rows.tolist() == p.r.split(row, [p.node(a), p.node(b)])
    elif ops and u < 0.10:
        res = p.g.expire(t)
        want = p.r.expired(p.ttl, t)
        new, erased = p.r.remove_and_recompute(want, 0) if want else ([], [])
        assert (res.new_rows.tolist(), res.erased.tolist()) == (new, erased)
    else:
        m = int(g.integers(1, 5))
        ev = [universe[int(j)] for j in g.integers(0, len(universe), size=m)]
        flags = (g.random(m) < 0.03).tolist()
        _, ab = p.link(ev, [k % 7 for k in ev], flags=flags, t=t, readmit=bool(g.random() < 0.05))
        if ab and g.random() < 0.5:
            p.release(ab)


@pytest.mark.parametrize(("stream", "rules", "ops"), [(0, False, False), (1, True, False), (2, True, True), (3, False, True)])
def test_random_sequences_match_the_twin(make_rng, stream: int, rules: bool, ops: bool) -> None:  # type: ignore[no-untyped-def]
    """Seeded sequences of links (with blocked flags and consent), unlinks, erasures, splits and
    expiries over a small universe (many merges, many refusals), state compared every step."""
    g = make_rng(stream)
    n = size(700, 120)
    universe = [int(x) for x in g.integers(0, U64, size=n // 2, dtype=np.uint64)]
    p = Pair(rules, cap=12 if rules else 0)
    for i in range(n):
        _random_step(p, g, universe, i, ops)
        if i % 50 == 49:
            assert_same(p)
    assert_same(p)
    assert p.g.tab_.shape[0] > 16  # the table grew and was rehashed


@pytest.mark.parametrize("stream", range(2))
def test_random_link_many_matches_twin(make_rng, stream: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(100 + stream)
    n_groups = size(1500, 200)
    sizes = g.integers(1, 5, size=n_groups)
    keys = g.integers(0, 2 * n_groups, size=int(sizes.sum())).tolist()
    types = [k % 7 for k in keys]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    p = Pair(rules=True, cap=20)
    cut = sorted(g.choice(np.arange(1, n_groups), size=3, replace=False).tolist())
    for lo, hi in zip([0, *cut], [*cut, n_groups]):
        o = offsets[lo : hi + 1]
        ks, ts = keys[o[0] : o[-1]], types[o[0] : o[-1]]
        rel = [x - o[0] for x in o]
        got = p.g.link_many(keys_arr(ks), np.array(ts, np.int8), np.array(rel), times=1_700_000_000_000)
        want, absorbed, _ = p.r.link_many(ks, ts, rel, t_ms=1_700_000_000_000)
        assert got.tolist() == want
        p.release(absorbed)
    assert_same(p)


# --------------------------------------------------------------------------- properties

small_events = st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=5), max_size=40)


@settings(max_examples=size(120, 30))
@given(events=small_events, release_every=st.integers(0, 5), big=st.booleans())
def test_rules_off_components_equal_connected_components(events: list[list[int]], release_every: int, big: bool) -> None:
    """Rules off: every step equals the twin and the components are the graph's connected
    components (BFS and networkx, no union-find)."""
    if big:  # spread the keys over the full 64-bit range (same graph shape)
        events = [[(k * 0x9E3779B97F4A7C15) % U64 for k in ev] for ev in events]
    p = run(events, rules=False, release_every=release_every)
    assert_same(p)
    assert p.g.partition() == p.r.components() == ref.connected_components(events)
    assert p.g.partition_from_evidence() == p.g.partition()
    import networkx as nx

    gr = nx.Graph()
    for ev in events:
        gr.add_nodes_from(ev)
        nx.add_path(gr, ev)
    assert p.g.partition() == {frozenset(c) for c in nx.connected_components(gr)}


@settings(max_examples=size(60, 15))
@given(events=small_events)
def test_rules_on_partition_is_a_function_of_the_evidence(events: list[list[int]]) -> None:
    """Without removals, recomputing every component from the evidence (the rules replayed in
    evidence order) gives the incremental partition."""
    p = run(events, rules=True, cap=6)
    assert_same(p)
    assert p.g.partition_from_evidence() == p.g.partition()


# --------------------------------------------------------------------------- evidence compaction


class Evidence:
    """Bare evidence arrays written as ``_add_edge`` and ``graph_remove`` write them (prepend to
    both lists; removal marks a node's edges dead and empties its list, the other ends keep the
    dead records on theirs), for inputs no link sequence produces (self-loops, single dead edges)."""

    def __init__(self, n_nodes: int, cap: int) -> None:
        self.edges = np.zeros(cap, G.EDGE_DTYPE)
        self.ev_head = np.full(n_nodes, -1, np.int32)
        self.meta = np.zeros(G.META_SIZE, np.int64)
        self.meta[G.C_NODES] = n_nodes

    def add(self, a: int, b: int, t: int = 0, src: int = 0) -> int:
        e = int(self.meta[G.C_EDGES])
        self.edges[e] = (a, b, t, src, self.ev_head[a], self.ev_head[b])
        self.ev_head[a] = e
        self.ev_head[b] = e
        self.meta[G.C_EDGES] += 1
        self.meta[G.C_LIVE_EDGES] += 1
        return e

    def kill_edge(self, e: int) -> None:
        if self.edges["src"][e] >= 0:
            self.edges["src"][e] = -1
            self.meta[G.C_LIVE_EDGES] -= 1

    def kill_node(self, x: int) -> None:
        for e in ref.adjacency(self.edges, self.ev_head, x):
            self.kill_edge(e)
        self.ev_head[x] = -1


def live_lists(edges: np.ndarray, ev_head: np.ndarray, n_nodes: int) -> list[list[tuple[int, int, int, int]]]:
    """Each node's list as the records of its live edges, head first (indices dropped)."""
    return [[(int(edges["a"][e]), int(edges["b"][e]), int(edges["t"][e]), int(edges["src"][e]))
             for e in ref.adjacency(edges, ev_head, x) if edges["src"][e] >= 0] for x in range(n_nodes)]


def compact_and_check(edges: np.ndarray, ev_head: np.ndarray, meta: np.ndarray, n_nodes: int) -> int:
    """Run the kernel in place and compare it with the twin and with what the lists held."""
    n = int(meta[G.C_EDGES])
    live_before = int(meta[G.C_LIVE_EDGES])
    records = [tuple(int(v) for v in r) for r in edges[:n][edges["src"][:n] >= 0][["a", "b", "t", "src"]].tolist()]
    lists = live_lists(edges, ev_head, n_nodes)
    want_edges, want_head, want_live, want_freed = ref.graph_compact_edges(edges, ev_head, n, n_nodes)
    meta_before = meta.copy()
    freed = G.graph_compact_edges(edges, ev_head, meta, n_nodes)
    assert (int(freed), int(meta[G.C_EDGES])) == (want_freed, want_live) == (n - live_before, live_before)
    assert edges.tobytes() == want_edges.tobytes()
    assert np.array_equal(ev_head, want_head)
    meta_before[G.C_EDGES] = want_live
    assert np.array_equal(meta, meta_before)  # only the used-record count changed
    k = want_live
    assert (edges["src"][:k] >= 0).all()
    assert [tuple(int(v) for v in r) for r in edges[:k][["a", "b", "t", "src"]].tolist()] == records
    assert live_lists(edges, ev_head, n_nodes) == lists
    assert all(len(ref.adjacency(edges, ev_head, x)) == len(lists[x]) for x in range(n_nodes))  # no dead left
    return int(freed)


def test_compact_edges_with_no_edges() -> None:
    for n_nodes in (0, 3):
        ev = Evidence(max(n_nodes, 1), 4)
        assert compact_and_check(ev.edges, ev.ev_head, ev.meta, n_nodes) == 0
        assert ev.ev_head.tolist() == [-1] * max(n_nodes, 1)


def test_compact_edges_all_dead_frees_everything() -> None:
    ev = Evidence(4, 8)
    for a, b in ((0, 1), (1, 2), (2, 3), (3, 0), (0, 2)):
        ev.add(a, b, t=a * 10 + b, src=1)
    for x in (0, 2):
        ev.kill_node(x)
    ev.kill_edge(ev.ev_head[1])
    assert int(ev.meta[G.C_LIVE_EDGES]) == 0 and ev.ev_head.tolist() != [-1] * 4  # dead records left on lists
    assert compact_and_check(ev.edges, ev.ev_head, ev.meta, 4) == 5
    assert ev.ev_head.tolist() == [-1] * 4 and int(ev.meta[G.C_EDGES]) == 0
    assert ev.edges.tobytes() == bytes(ev.edges.nbytes)  # the freed records read as never used


def test_compact_edges_none_dead_changes_nothing() -> None:
    ev = Evidence(5, 10)
    for a, b in ((0, 1), (1, 2), (0, 2), (3, 4), (4, 0), (2, 3)):
        ev.add(a, b, t=7, src=2)
    edges, head, meta = ev.edges.copy(), ev.ev_head.copy(), ev.meta.copy()
    assert compact_and_check(ev.edges, ev.ev_head, ev.meta, 5) == 0
    assert ev.edges.tobytes() == edges.tobytes() and np.array_equal(ev.ev_head, head) and np.array_equal(ev.meta, meta)


def test_compact_edges_one_node_with_many_edges() -> None:
    n = 61
    ev = Evidence(n, 2 * n)
    for j in range(1, n):
        ev.add(0, j, t=j, src=j % 3)  # a hub: every edge on node 0's list, alternately as a and b
        ev.add(j, 0, t=-j, src=0)
    for j in range(1, n, 3):
        ev.kill_node(j)  # leaves their dead edges on the hub's list
    ev.kill_edge(int(ev.ev_head[0]))  # the hub's newest edge
    freed = compact_and_check(ev.edges, ev.ev_head, ev.meta, n)
    assert freed == 2 * 20 + 1 and len(ref.adjacency(ev.edges, ev.ev_head, 0)) == 2 * (n - 1) - freed


def test_compact_edges_leaves_recycled_endpoints_of_dead_edges_alone() -> None:
    """A removed node's record is reused by a new identifier while dead edges still name it
    (they sit on their other ends' lists): only the new identity's edges land on its list."""
    ev = Evidence(4, 12)
    ev.add(0, 1, t=1)
    ev.add(1, 2, t=2)
    ev.kill_node(1)  # edges 0 and 1 dead, still on the lists of 0 and 2
    ev.add(3, 1, t=3)  # node 1 recycled
    ev.add(1, 0, t=4)
    ev.add(2, 3, t=5)
    assert compact_and_check(ev.edges, ev.ev_head, ev.meta, 4) == 2
    assert [(int(e["a"]), int(e["b"])) for e in ev.edges[:3]] == [(3, 1), (1, 0), (2, 3)]
    assert ref.adjacency(ev.edges, ev.ev_head, 1) == [1, 0]


def test_compact_edges_self_loop_does_not_corrupt_lists() -> None:
    """Links never record a self-loop; if one is there it stays once on its node's list, with
    ``next_b`` equal to ``next_a`` as ``_add_edge`` leaves it."""
    ev = Evidence(3, 8)
    ev.add(0, 1)
    ev.add(1, 2)
    ev.add(1, 1, t=9)
    ev.add(0, 1)
    ev.add(2, 1)
    ev.kill_edge(1)
    ev.kill_edge(3)
    assert compact_and_check(ev.edges, ev.ev_head, ev.meta, 3) == 2
    loop = ref.adjacency(ev.edges, ev.ev_head, 1)
    assert loop == [2, 1, 0] and ev.edges["a"][1] == ev.edges["b"][1] == 1
    assert ev.edges["next_a"][1] == ev.edges["next_b"][1] == 0


@pytest.mark.parametrize("stream", range(4))
def test_compact_edges_random_churn_matches_the_twin(make_rng, stream: int) -> None:  # type: ignore[no-untyped-def]
    """Seeded churn: links between random nodes, nodes removed and their records reused, single
    edges deleted, and compactions in between (new edges go after the compacted ones)."""
    g = make_rng(200 + stream)
    n_nodes = int(g.integers(1, 40))
    steps = size(2000, 300)
    ev = Evidence(n_nodes, steps + 1)
    freed = 0
    for i in range(steps):
        u = float(g.random())
        if u < 0.6 or int(ev.meta[G.C_EDGES]) == 0:
            a, b = (int(x) for x in g.integers(0, n_nodes, size=2))
            if a != b or g.random() < 0.02:
                ev.add(a, b, t=i, src=int(g.integers(0, 4)))
        elif u < 0.75:
            ev.kill_node(int(g.integers(n_nodes)))
        elif u < 0.95:
            ev.kill_edge(int(g.integers(int(ev.meta[G.C_EDGES]))))
        else:
            freed += compact_and_check(ev.edges, ev.ev_head, ev.meta, n_nodes)
    freed += compact_and_check(ev.edges, ev.ev_head, ev.meta, n_nodes)
    assert freed > 0 and int(ev.meta[G.C_EDGES]) == int(ev.meta[G.C_LIVE_EDGES])


@pytest.mark.parametrize(("stream", "rules"), [(0, True), (1, False)])
def test_random_sequences_with_compaction_match_the_twin(make_rng, stream: int, rules: bool) -> None:  # type: ignore[no-untyped-def]
    """As :func:`test_random_sequences_match_the_twin` with the evidence compacted now and then:
    the live edges stay in evidence order, so unlinks, splits and expiries recompute the same."""
    g = make_rng(300 + stream)
    n = size(700, 120)
    universe = [int(x) for x in g.integers(0, U64, size=n // 2, dtype=np.uint64)]
    p = Pair(rules, cap=12 if rules else 0)
    freed = 0
    for i in range(n):
        _random_step(p, g, universe, i, True)
        if i % 40 == 39:
            freed += compact_and_check(p.g.edges_, p.g.ev_head_, p.g.meta_, int(p.g.meta_[G.C_NODES]))
            assert_same(p)
    assert_same(p)
    assert freed > 0


# evidence compaction on a real graph: named identifiers, rules with a time-to-live

REAL_SPEC = IdentitySpec(
    identifiers=(
        IdentifierSpec(name="user_id", unique=True, priority=100),
        IdentifierSpec(name="email", limit=2, priority=60),
        IdentifierSpec(name="cookie", limit=3, priority=10, ttl_days=2.0),
    ),
    max_identifiers=8,
)
T0 = 1_700_000_000_000
HOUR = 3_600_000


def churn(g: IdentityGraph, rng: np.random.Generator, n: int, t: int) -> int:
    """``n`` seeded steps on ``g``: mostly links of people's identifiers, with erasures (single
    identifiers and whole people), unlinks, splits and expiries. Returns the clock."""
    people = 40
    for _ in range(n):
        t += HOUR
        p = int(rng.integers(people))
        u = float(rng.random())
        if u < 0.06:
            g.forget({"cookie": f"c{p}-{int(rng.integers(4))}"})
        elif u < 0.09:
            row = g.resolve_one({"email": f"p{p}@x.io"})
            if row >= 0:
                g.forget(row=row)
        elif u < 0.12:
            if g.resolve_one({"device": f"d{p % 25}"}) >= 0:
                g.unlink({"device": f"d{p % 25}"})
        elif u < 0.14:
            row = g.resolve_one({"user_id": f"u{p}"})
            if row >= 0 and len(g.members(row)) > 1:
                g.split(row)
        elif u < 0.17:
            g.expire(t)
        else:
            ids = {"cookie": f"c{p}-{int(rng.integers(4))}"}
            if rng.random() < 0.5:
                ids["user_id"] = f"u{p}"
            if rng.random() < 0.4:
                ids["email"] = f"p{p}@x.io"
            if rng.random() < 0.3:
                ids["device"] = f"d{p % 25}"
            g.link_one(ids, time=t, source="web" if rng.random() < 0.5 else "app",
                       consent={"personalization": True} if rng.random() < 0.05 else None)
    return t


def reads(g: IdentityGraph) -> dict[str, object]:
    """Everything a caller can read about the components and their evidence (edge indices
    left out: compaction renumbers them)."""
    rows = [r for r in range(g.n_rows) if len(g.members(r))]
    return {
        "partition": g.partition(), "rows": g.component_rows().tolist(),
        "evidence": {r: g.evidence_of(r) for r in rows},
        "metrics": g.metrics(),
    }


def live_records(g: IdentityGraph) -> list[tuple[int, int, int, int]]:
    """The live evidence records in index (evidence) order."""
    e = g.edges_[: int(g.meta_[G.C_EDGES])]
    return [tuple(int(v) for v in r) for r in e[e["src"] >= 0][["a", "b", "t", "src"]].tolist()]


def test_compact_edges_on_an_identity_graph_keeps_every_read(make_rng) -> None:  # type: ignore[no-untyped-def]
    """A graph with churn (erasures, expiries, unlinks) compacted in place reads the same, and
    afterwards behaves exactly like an uncompacted graph given the same further operations."""
    steps = size(600, 200)
    g = IdentityGraph(KEY, capacity=8, spec=REAL_SPEC)
    h = IdentityGraph(KEY, capacity=8, spec=REAL_SPEC)  # never compacted
    t = churn(g, make_rng(400), steps, T0)
    assert churn(h, make_rng(400), steps, T0) == t
    assert int(g.meta_[G.C_EDGES]) > int(g.meta_[G.C_LIVE_EDGES])  # dead records to free
    before = reads(g)
    assert before == reads(h)
    from_evidence = g.partition_from_evidence()
    n_nodes = int(g.meta_[G.C_NODES])
    n_edges = int(g.meta_[G.C_EDGES])
    alive = g.edges_["src"][:n_edges] >= 0
    renumber = np.cumsum(alive) - 1  # old index -> new index, for the live edges
    touching = {r: renumber[g._edges_touching(g.members(r))].tolist() for r in before["evidence"]}  # type: ignore[attr-defined]

    freed = compact_and_check(g.edges_, g.ev_head_, g.meta_, n_nodes)

    assert freed == n_edges - int(alive.sum()) > 0
    assert int(g.meta_[G.C_EDGES]) == int(g.meta_[G.C_LIVE_EDGES])
    assert reads(g) == before
    assert {r: g._edges_touching(g.members(r)).tolist() for r in touching} == touching
    assert g.partition_from_evidence() == from_evidence
    # new links, re-links (which walk the rebuilt lists), erasures, unlinks, splits, expiries
    rng_g, rng_h = make_rng(401), make_rng(401)
    for _ in range(5):
        t_next = churn(g, rng_g, steps // 5, t)
        assert churn(h, rng_h, steps // 5, t) == t_next
        t = t_next
        assert reads(g) == reads(h)
        assert live_records(g) == live_records(h)
        assert g.partition_from_evidence() == h.partition_from_evidence()
    assert compact_and_check(g.edges_, g.ev_head_, g.meta_, int(g.meta_[G.C_NODES])) > 0
    assert reads(g) == reads(h)
