"""Memory bounds: a profile capacity with eviction of the longest idle profiles, tombstones that
survive eviction, evidence records that are reclaimed, and replay that evicts the same profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner._kernels import graph as K
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.errors import ConfigError, SchemaError
from statecheck import assert_same, engine_state

T0 = 1_700_000_000_000
KEY = "7a" * 16
MIN = 60_000


def make_engine(cap: int, fraction: float = 0.1) -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": KEY},
        "profiles": {"max_profiles": cap, "evict_fraction": fraction},
        "placements": [{"name": "home", "kind": "recommendation", "slots": 2, "policy": {"kind": "greedy"}}],
    })
    cat = Catalog([{"id": f"{c}-{j}", "category": c, "brand": "b", "colour": "red", "price": 10.0 + j}
                   for c in ("shoes", "bags", "hats") for j in range(4)])
    return Engine(cfg, cat, seed=5)


def person(i: int, t: int, item: str = "shoes-1") -> dict[str, Any]:
    """Person ``i``: a cookie and an email, linked (one evidence edge per person)."""
    return {"type": "view", "time": t, "ids": {"cookie": f"ck-{i}", "email": f"p{i}@example.com"}, "item": item}


def live_rows(e: Engine) -> np.ndarray:
    return np.flatnonzero(e.identity.rows_["root"][: e.identity.n_rows] >= 0)


def test_profiles_never_exceed_the_capacity_and_memory_stops_growing() -> None:
    e = make_engine(cap=200, fraction=0.05)
    sizes = []
    for i in range(3000):
        e.track(person(i, T0 + i * MIN))
        assert e.identity.n_profiles <= 200
        if i in (999, 2999):
            sizes.append((e.profiles.n_rows, e.identity.nodes_.shape[0], e.identity.edges_.shape[0],
                          e.identity.tab_.shape[0], e.identity.nbytes()))
    assert e.evicted_ >= 2800
    assert sizes[0] == sizes[1]  # steady state: no array grew after the first thousand people
    m = e.identity.metrics()
    assert m["identifiers"] == 2 * m["profiles"] and m["evidence_edges"] == m["profiles"]
    assert e.identity.partition() == e.identity.partition_from_evidence()


def test_the_longest_idle_profiles_go_first() -> None:
    e = make_engine(cap=100, fraction=0.1)
    for i in range(100):
        e.track(person(i, T0 + i * MIN))
    for i in range(0, 100, 2):  # the even people come back later
        e.track(person(i, T0 + (200 + i) * MIN))
    assert e.evicted_ == 0
    e.track(person(1000, T0 + 400 * MIN))  # the 101st profile: a batch of 10 goes
    assert e.evicted_ == 10 and e.identity.n_profiles == 91
    gone = [i for i in range(100) if e.profile_row({"cookie": f"ck-{i}"}) < 0]
    assert gone == list(range(1, 21, 2))  # the ten odd people idle longest
    assert e.profile_row({"cookie": "ck-1000"}) >= 0


def test_ties_break_by_row_and_the_row_being_served_is_never_evicted() -> None:
    e = make_engine(cap=10, fraction=0.3)
    for i in range(10):
        e.track(person(i, T0))  # all equally idle
    e.track(person(99, T0))
    assert e.evicted_ == 3 and e.profile_row({"cookie": "ck-99"}) >= 0
    assert [i for i in range(10) if e.profile_row({"cookie": f"ck-{i}"}) < 0] == [0, 1, 2]


def test_an_evicted_person_comes_back_as_new() -> None:
    e = make_engine(cap=5, fraction=0.2)
    e.track(person(0, T0, item="bags-2"))
    assert e.interests({"cookie": "ck-0"}, now=T0)
    for i in range(1, 7):
        e.track(person(i, T0 + i * MIN))
    assert e.profile_row({"email": "p0@example.com"}) == -1
    e.track({"type": "view", "time": T0 + 10 * MIN, "ids": {"cookie": "ck-0"}, "item": "hats-0"})
    row = e.profile_row({"cookie": "ck-0"})
    assert row >= 0 and e.profile_row({"email": "p0@example.com"}) == -1  # no old link comes back
    names = [n for n, _ in e.interests({"cookie": "ck-0"}, now=T0 + 10 * MIN)]
    assert names and not any("bags" in n for n in names)  # the old interests are gone


def test_eviction_keeps_erasure_tombstones() -> None:
    e = make_engine(cap=20, fraction=0.25)
    e.track(person(0, T0))
    e.forget({"email": "p0@example.com"})
    tombs = e.identity.metrics()["tombstones"]
    assert tombs >= 1
    for i in range(1, 200):
        e.track(person(i, T0 + i * MIN))
    assert e.evicted_ > 150 and e.identity.metrics()["tombstones"] == tombs
    # the erased email still links nothing: the event is suppressed, no profile holds it
    e.track({"type": "view", "time": T0 + 500 * MIN, "ids": {"email": "p0@example.com"}, "item": "hats-1"})
    assert e.profile_row({"email": "p0@example.com"}) == -1
    assert e.identity.metrics()["suppressed_events"] >= 1


def test_evidence_records_are_reclaimed_in_order() -> None:
    e = make_engine(cap=50, fraction=0.5)
    for i in range(2000):
        # three identifiers per person, two links each: plenty of evidence to reclaim
        e.track({"type": "view", "time": T0 + i * MIN,
                 "ids": {"cookie": f"c{i}", "email": f"e{i}@x.org", "device_id": f"d{i}"}})
    ident = e.identity
    assert int(ident.meta_[K.C_EDGES]) - int(ident.meta_[K.C_LIVE_EDGES]) < max(1024, int(ident.meta_[K.C_LIVE_EDGES])) + 200
    assert ident.edges_.shape[0] < 4096
    rows = live_rows(e)
    ev = [ident.evidence_of(int(r)) for r in rows]
    assert all(len(x) == 2 and all(y["linked"] for y in x) for x in ev)
    assert ident.partition() == ident.partition_from_evidence()
    ident.compact_evidence(force=True)
    assert [ident.evidence_of(int(r)) for r in rows] == ev
    assert int(ident.meta_[K.C_EDGES]) == int(ident.meta_[K.C_LIVE_EDGES])


def test_replay_and_snapshots_evict_the_same_profiles(tmp_path: Path) -> None:
    live = make_engine(cap=30, fraction=0.1)
    live.attach_log(tmp_path / "events.log")
    rng = np.random.default_rng(11)
    for k in range(600):
        i = int(rng.integers(0, 120))
        if k % 5 == 0:
            live.decide(person(i, T0 + k * MIN, item="hats-2"), placement="home")
        else:
            live.track(person(i, T0 + k * MIN))
    live.detach_log()
    assert live.evicted_ > 0
    again = make_engine(cap=30, fraction=0.1)
    again.attach_log(tmp_path / "events.log")
    assert again.evicted_ == live.evicted_
    assert_same(engine_state(live), engine_state(again))
    again.detach_log()
    snap = live.save(tmp_path / "snap")
    back = Engine.open(tmp_path / "snap", hash_key=KEY, flush="off")
    assert back.evicted_ == live.evicted_ and back.identity.n_profiles == live.identity.n_profiles
    for k in range(600, 700):
        back.track(person(k, T0 + k * MIN))
        live.track(person(k, T0 + k * MIN))
    assert_same(engine_state(live), engine_state(back))
    assert snap.exists()


def test_evict_rejects_rows_that_are_not_profiles() -> None:
    e = make_engine(cap=0)
    e.track(person(0, T0))
    with pytest.raises(SchemaError, match="Expected live profile rows"):
        e.identity.evict(np.array([5]))
    assert e.identity.n_profiles == 1


@pytest.mark.parametrize("bad", [{"max_profiles": -1}, {"evict_fraction": 0.0}, {"evict_fraction": 0.9}])
def test_bad_capacity_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="profiles"):
        load_config_dict({"identity": {"hash_key": KEY}, "profiles": bad})


def test_no_bound_when_max_profiles_is_zero() -> None:
    e = make_engine(cap=0)
    for i in range(300):
        e.track(person(i, T0 + i))
    assert e.identity.n_profiles == 300 and e.evicted_ == 0
