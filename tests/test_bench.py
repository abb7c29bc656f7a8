"""The synthetic benchmark engine: bulk-built profiles are the real thing (found through the
request path's normalisation and keyed hashing), and ``run_bench`` reports sane figures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from decisioner.bench import START_MS, BenchState, build_engine, run_bench, synthetic_catalog
from decisioner.catalog import Catalog
from decisioner.errors import ConfigError, UnknownPlacementError

PROFILES = 2_000
ITEMS = 500


@pytest.fixture(scope="module")
def state() -> BenchState:
    return build_engine(PROFILES, ITEMS, seed=3)


def test_synthetic_catalog_is_seeded_and_realistic() -> None:
    items = synthetic_catalog(5_000, seed=7)
    assert items == synthetic_catalog(5_000, seed=7)
    assert items != synthetic_catalog(5_000, seed=8)
    assert len({it["id"] for it in items}) == 5_000
    assert 20 <= len({it["category"] for it in items}) <= 30
    assert 100 <= len({it["brand"] for it in items}) <= 300
    assert len({it["colour"] for it in items}) == 12
    assert all(1 <= len(it["tags"]) == len(set(it["tags"])) <= 3 for it in items)
    out_of_stock = sum(it["inventory"] == 0 for it in items) / len(items)
    assert 0.02 < out_of_stock < 0.04
    assert all(it["inventory"] >= 0 and it["price"] > 0 for it in items)
    prices = np.array([it["price"] for it in items])
    assert 20 < float(np.median(prices)) < 45 and prices.max() > 5 * np.median(prices)
    cat = Catalog(items)
    assert cat.n_items == 5_000 and cat.n_fv > 400


def test_every_profile_resolves_by_cookie_and_email(state: BenchState) -> None:
    eng = state.engine
    assert eng.identity.n_nodes == 2 * PROFILES and eng.identity.n_rows == PROFILES
    assert sorted(state.rows.tolist()) == list(range(PROFILES))
    for i in range(PROFILES):
        row = int(state.rows[i])
        assert eng.profile_row({"cookie": state.cookie(i)}) == row
        assert eng.profile_row({"email": " " + state.email(i).upper()}) == row
    assert eng.profile_row({"cookie": "ck-unknown"}) == -1


def test_profiles_are_populated(state: BenchState) -> None:
    store = state.engine.profiles
    rows = state.rows
    fid = store.fid_[rows]
    assert (fid >= 0).all() and (fid < state.engine.catalog.n_fv).all()
    assert all(len(set(r)) == fid.shape[1] for r in fid.tolist())  # distinct interests
    assert (store.score_[rows] > 0).all()
    assert (store.t_[rows] <= START_MS).all() and (store.t_[rows] > START_MS - 31 * 86_400_000).all()
    assert state.engine.scorer.prior().max() == 1.0


def test_decide_uses_the_bulk_built_profile(state: BenchState) -> None:
    i = 17
    req = {"type": "view", "time": state.now, "ids": {"email": state.email(i)}, "item": "sku-0000001"}
    d = state.engine.decide(req, placement="home")
    assert d.profile == int(state.rows[i]) and d.personalized and len(d.slots) == 4
    assert state.engine.identity.n_rows == PROFILES  # no new profile was created
    assert state.engine.interests({"cookie": state.cookie(i)}, now=state.now)


def test_each_build_draws_a_fresh_secret() -> None:
    a, b = build_engine(3, 5), build_engine(3, 5)
    assert a.engine.identity.key != b.engine.identity.key and len(a.engine.identity.key) == 16


@pytest.mark.parametrize(("placement", "slots"), [("home", 4), ("hero", 1)])
def test_run_bench_report(state: BenchState, placement: str, slots: int) -> None:
    before = state.engine.decision_log
    n_log = len(before)
    rep = run_bench(state, n_decisions=300, placement=placement)
    assert set(rep) == {"profiles", "items", "decisions", "events_per_s", "latency_us", "memory", "build_s"}
    assert (rep["profiles"], rep["items"], rep["decisions"]) == (PROFILES, ITEMS, 297)
    assert len(state.engine.decision_log) == n_log + 300 * slots
    lat = rep["latency_us"]
    assert lat["count"] == 297 and lat["p50"] > 0
    assert lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert rep["events_per_s"] > 0 and rep["build_s"] > 0
    mem = rep["memory"]
    assert set(mem) == {"bytes_per_profile", "bytes_per_identifier", "identity_bytes", "profile_bytes", "rss_mb",
                        "live_profiles", "max_profiles", "evicted", "components", "total_bytes", "tombstones",
                        "tombstone_bytes", "decision_log_rows", "decision_log_dropped_rows", "pending_outcomes"}
    assert mem["evicted"] == 0 and mem["live_profiles"] == mem["max_profiles"] == PROFILES  # built full
    zero = {"evicted", "tombstones", "tombstone_bytes", "decision_log_dropped_rows", "components"}
    assert all(v > 0 for k, v in mem.items() if k not in zero)
    assert set(mem["components"]) == {"identity", "profiles", "people", "experiments", "decision_log",
                                      "pending_outcomes", "placements", "popularity", "catalog", "activity"}
    assert mem["total_bytes"] == sum(mem["components"].values()) and all(v > 0 for v in mem["components"].values())
    assert mem["decision_log_rows"] == len(state.engine.decision_log)
    assert mem["pending_outcomes"] == len(state.engine.pending_)
    assert mem["profile_bytes"] >= PROFILES * state.engine.profiles.nbytes_per_profile()


def test_run_bench_churn_evicts_and_memory_stays_flat() -> None:
    st = build_engine(400, 50, seed=3)
    rep = run_bench(st, n_decisions=100, churn=300)
    ch = rep["churn"]
    assert ch["decisions"] == 297 and ch["latency_us"]["count"] == 297
    assert ch["evicted"] == 300  # at capacity every newcomer makes room for itself
    assert ch["memory"]["live_profiles"] <= 400 and ch["memory"]["evicted"] == 300
    assert ch["memory"]["identity_bytes"] <= 2 * rep["memory"]["identity_bytes"]
    with pytest.raises(ConfigError, match=re.escape("Expected `churn` >= 0, got -1")):
        run_bench(st, n_decisions=5, churn=-1)


def test_run_bench_times_move_forward(state: BenchState) -> None:
    now = state.now
    reqs = state.requests(50)
    times = [r["time"] for r in reqs]
    assert times[0] > now - 1 and times == sorted(set(times)) and state.now > times[-1]


def test_run_bench_rejects_bad_arguments(state: BenchState) -> None:
    now = state.now
    with pytest.raises(UnknownPlacementError, match="got 'nope' - at `placement`"):
        run_bench(state, n_decisions=5, placement="nope")
    assert state.now == now
    with pytest.raises(ConfigError, match=re.escape("Expected `n_decisions` >= 1, got 0")):
        run_bench(state, n_decisions=0)
    with pytest.raises(ConfigError, match=re.escape("Expected `profiles` and `items` >= 1, got 0 and 5")):
        build_engine(0, 5)


def test_side_by_side_alternates_two_builds() -> None:
    """benchmarks/side_by_side.py runs a CLI command for two builds in turn (here this tree twice)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "side_by_side.py"
    spec = importlib.util.spec_from_file_location("side_by_side", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.side_by_side(mod.HERE_SRC, ["bench", "--profiles", "200", "--items", "50", "--decisions", "200"], 1)
    assert set(res) == {"base", "this"} and all(len(v) == 1 for v in res.values())
    assert all(r["p50"] > 0 and r["events_per_s"] > 0 for v in res.values() for r in v)


def test_a_bench_with_consent_and_attributes_on_sets_them_and_logs_no_refusers() -> None:
    from decisioner.bench import BENCH_ATTRIBUTES, with_consent_and_attributes

    st = with_consent_and_attributes(build_engine(200, 50, seed=3, options={"attributes": BENCH_ATTRIBUTES}))
    reqs = st.requests(400)
    assert all(set(r["attrs"]) == set(BENCH_ATTRIBUTES) for r in reqs) and sum("consent" in r for r in reqs) == 8
    refuser = next(p for p in range(200) if st.rows[p] in set(st.rows[::10].tolist()))
    d = st.engine.decide({"type": "view", "time": st.now, "ids": {"cookie": st.cookie(refuser)}}, placement="home")
    assert d.slots and st.engine.decision_log.column("seq").tolist() == []  # no log row without analytics
    report = run_bench(st, n_decisions=300)
    assert report["decisions"] == 297
    anyone = st.engine.attributes({"cookie": st.cookie(int(reqs[-1]["ids"]["cookie"][-8:], 16))})
    assert set(anyone) == set(BENCH_ATTRIBUTES)
