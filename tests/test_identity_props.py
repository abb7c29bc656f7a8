"""Property tests of the identity graph with merge rules on: whatever sequence of links,
unlinks, splits, erasures, blockings and expiries, the invariants hold.

* no profile holds two values of a unique type, or more values of a type than its limit, or
  more identifiers than the size cap;
* erased (tombstoned) and blocked identifiers are never linked and never resolve;
* do-not-link pairs are never in one profile;
* profiles partition the live identifiers, and the kernel's counters agree with the members.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from decisioner._kernels import graph as G
from decisioner.config import IdentifierSpec, IdentitySpec
from decisioner.identity import IdentityGraph

KEY = bytes(range(16))
T0 = 1_700_000_000_000
SPEC = IdentitySpec(
    identifiers=(
        IdentifierSpec(name="user_id", unique=True, priority=100),
        IdentifierSpec(name="email", limit=2, priority=60),
        IdentifierSpec(name="cookie", limit=3, priority=10, ttl_days=2.0),
    ),
    max_identifiers=6,
)
LIMITS = {"user_id": 1, "email": 2, "cookie": 3}
TYPES = ("user_id", "email", "cookie", "device")
VALUES = [f"v{i}" for i in range(6)] + ["null"]  # "null" is a blocked placeholder


def ident(t: int, v: int) -> dict[str, str]:
    typ = TYPES[t]
    val = VALUES[v]
    return {typ: f"{val}@x.io" if typ == "email" and val != "null" else val}


ids_st = st.tuples(st.integers(0, len(TYPES) - 1), st.integers(0, len(VALUES) - 1))
op_st = st.one_of(
    st.tuples(st.just("link"), st.lists(ids_st, min_size=1, max_size=4)),
    st.tuples(st.just("unlink"), ids_st),
    st.tuples(st.just("forget"), ids_st),
    st.tuples(st.just("forget_person"), ids_st),
    st.tuples(st.just("split"), st.tuples(ids_st, ids_st)),
    st.tuples(st.just("block"), ids_st),
    st.tuples(st.just("expire"), st.integers(0, 5)),
)


def check(g: IdentityGraph, erased: set[tuple[str, str]], blocked: set[tuple[str, str]]) -> None:
    live = g.live_keys()[0].tolist()
    rows = g.component_rows().tolist()
    assert all(r >= 0 for r in rows)
    types = g.nodes_["type"][: int(g.meta_[G.C_NODES])][g.live_mask()].tolist()
    by_row: dict[int, list[int]] = {}
    for _node_key, row, t in zip(live, rows, types):
        by_row.setdefault(row, []).append(t)
    for row, ts in by_row.items():
        assert len(ts) <= SPEC.max_identifiers
        counts = Counter(g.types[t] for t in ts)
        for name, lim in LIMITS.items():
            assert counts[name] <= lim, (row, counts)
        assert int(g.rows_["size"][row]) == len(ts) == len(g.members(row))
    for t, v in erased | blocked:
        assert g.resolve_one({t: v}) == -1
    # do-not-link pairs are in different profiles
    for a, b in g.dnl_[: int(g.meta_[G.C_DNL])].tolist():
        assert g.row_of_node(a) != g.row_of_node(b)


@settings(max_examples=60)
@given(ops=st.lists(op_st, max_size=30))
def test_invariants_hold_after_any_sequence(ops: list[tuple[str, object]]) -> None:
    g = IdentityGraph(KEY, capacity=4, spec=SPEC)
    erased: set[tuple[str, str]] = set()
    blocked: set[tuple[str, str]] = set()
    t = T0
    for op, arg in ops:
        t += 3_600_000
        if op == "link":
            ids: dict[str, str] = {}
            for tv in arg:  # type: ignore[union-attr]
                ids.update(ident(*tv))
            g.link_one(ids, time=t)
        elif op in ("unlink", "forget", "forget_person", "block"):
            one = ident(*arg)  # type: ignore[misc]
            (typ, val), = one.items()
            row = g.resolve_one(one)
            if op == "unlink" and row >= 0:
                g.unlink(one)
            elif op == "forget":
                g.forget(one)
                erased.add((typ, val))
            elif op == "forget_person" and row >= 0:
                gone = [(g.types[int(g.nodes_["type"][n])], n) for n in g.members(row).tolist()]
                g.forget(row=row)
                assert g.members(row).shape == (0,)
                assert all((int(g.nodes_["state"][n]) & G.STATE_MASK) == G.TOMB for _, n in gone)
            elif op == "block":
                g.block(typ, val)
                blocked.add((typ, val))
        elif op == "split":
            a, b = (ident(*x) for x in arg)  # type: ignore[union-attr]
            row = g.resolve_one(a)
            if row >= 0 and row == g.resolve_one(b) and a != b:
                g.split(row, apart=[a, b])
                assert g.resolve_one(a) != g.resolve_one(b)
        else:
            g.expire(t + int(arg) * 86_400_000)  # type: ignore[call-overload]
        check(g, erased, blocked)
    # tombstones and blocked values never come back through new events either
    for typ, val in erased | blocked:
        res = g.link_one({typ: val, "device": "fresh-device"}, time=t)
        assert g.resolve_one({typ: val}) == -1
        if (typ, val) in erased and val != "null" and (typ, val) not in blocked:  # blocked wins
            assert res.suppressed and g.resolve_one({"device": "fresh-device"}) in (-1, res.row)
    check(g, erased, blocked)


@settings(max_examples=40)
@given(events=st.lists(st.lists(ids_st, min_size=1, max_size=4), max_size=30))
def test_bulk_and_event_by_event_links_agree(events: list[list[tuple[int, int]]]) -> None:
    """``link_many`` (a CRM batch) leaves exactly the state event-by-event linking leaves."""
    one = IdentityGraph(KEY, capacity=4, spec=SPEC)
    bulk = IdentityGraph(KEY, capacity=4, spec=SPEC)
    keys, types, offsets = [], [], [0]
    for ev in events:
        ids: dict[str, str] = {}
        for tv in ev:
            ids.update(ident(*tv))
        one.link_one(ids, time=T0)
        k, ty = bulk.keys_of(ids)
        keys.append(k)
        types.append(ty)
        offsets.append(offsets[-1] + k.shape[1])
    if events:
        bulk.link_many(np.concatenate(keys, axis=1), np.concatenate(types), np.array(offsets), times=T0)
    assert bulk.partition() == one.partition()
    assert bulk.metrics() == one.metrics()
