"""The learned ranker in the decision loop: retrieval -> compiled model -> the placement's
exploration (propensities exact), the fallback without a model or consent, hot swaps (under
load, refused ones), the log and snapshot round trips, and the config checks."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.errors import ConfigError, ModelError, UnknownPlacementError
from decisioner.ranking.features import FEATURE_NAMES, SCHEMA_VERSION

T0 = 1_700_000_000_000
KEY = "7a" * 16
N_ITEMS = 60


def write_model(d: Path, *, seed: int, trees: int = 30, names: tuple[str, ...] = FEATURE_NAMES,
                version: int = SCHEMA_VERSION) -> Path:
    """A LightGBM model over the serving schema, trained on random rows (its scores differ
    from the affinity order: what the loop does with them is under test, not its quality)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, len(names)))
    y = (X[:, seed % len(names)] + 0.3 * rng.normal(size=400) > 0).astype(float)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": seed,
              "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=list(names)), num_boost_round=trees)
    d.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(d / "model.txt"))
    (d / "features.json").write_text(json.dumps({"version": version, "names": list(names)}))
    return d


def catalog() -> list[dict[str, Any]]:
    return [
        {"id": f"i{j}", "category": f"c{j % 4}", "brand": f"b{j % 3}", "price": 5.0 + j, "inventory": 5}
        for j in range(N_ITEMS)
    ]


def config(model: Path | None, *, policy: dict[str, Any] | None = None, retrieve: int = 20, **extra: Any) -> Any:
    home: dict[str, Any] = {"name": "home", "kind": "recommendation", "slots": 3,
                            "policy": policy or {"kind": "greedy"}}
    if model is not None:
        home["ranker"] = {"model": str(model), "retrieve": retrieve}
    return load_config_dict({
        "identity": {"hash_key": KEY},
        "placements": [home, {"name": "hero", "kind": "campaign", "experiences": [{"id": "a"}, {"id": "b"}]}],
        **extra,
    })


def engine(model: Path | None, **kw: Any) -> Engine:
    cfg = config(model, **kw)
    return Engine(cfg, Catalog(catalog(), cfg.catalog), seed=5)


def history(n: int = 200, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    kinds = ["view", "view", "click", "add_to_cart", "purchase"]
    return [
        {"type": kinds[int(rng.integers(len(kinds)))], "time": T0 + 60_000 * j,
         "ids": {"cookie": f"c{int(rng.integers(12))}"}, "item": f"i{int(rng.integers(N_ITEMS))}"}
        for j in range(n)
    ]


def view(j: int, cookie: str = "c3", **kw: Any) -> dict[str, Any]:
    return {"type": "view", "time": T0 + 10**8 + 1000 * j, "ids": {"cookie": cookie}, **kw}


def slots(d: Any) -> list[tuple[str, float, float]]:
    return [(s.content, s.score, s.propensity) for s in d.slots]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return write_model(root / "a", seed=1), write_model(root / "b", seed=2)


def test_a_greedy_decision_shows_the_models_best_of_the_retrieval(models: tuple[Path, Path]) -> None:
    for j in range(4):
        e, twin = engine(models[0]), engine(models[0])
        for ev in history():
            e.track(ev)
            twin.track(ev)
        cookie = f"c{j}"
        twin.track(view(j, cookie))  # the state the decision ranks in
        expected = twin.recommend({"cookie": cookie}, placement="home", now=T0 + 10**8 + 1000 * j)
        d = e.decide(view(j, cookie), placement="home")
        assert slots(d) == [(s.content, s.score, 1.0) for s in expected.slots]
        assert any(r.kind == "ranker" and str(models[0]) in r.detail for r in d.reasons)
    # the model reorders: without it the same state shows something else somewhere
    e, plain = engine(models[0]), engine(None)
    for ev in history():
        e.track(ev)
        plain.track(ev)
    assert any(
        slots(plain.decide(view(j, f"c{j}"), placement="home")) != slots(e.decide(view(j, f"c{j}"), placement="home"))
        for j in range(5)
    )


def test_the_reference_order_is_the_model_score_of_the_affinity_top_n(models: tuple[Path, Path]) -> None:
    """recommend() (the reference above) against a hand computation: the affinity top 20 of
    the plain engine, scored by the model on the featurizer's rows, best first."""
    from decisioner.ranking import load_model

    e, plain = engine(models[0]), engine(None, retrieve=20)
    for ev in history():
        e.track(ev)
        plain.track(ev)
    now = T0 + 10**8
    ranker = e.placements_.ranker("home")
    top = plain.placement("home")
    retrieved = _affinity_top(plain, "c3", now, 20)
    X = np.empty((len(retrieved), len(FEATURE_NAMES)))
    row = e.profile_row({"cookie": "c3"})
    ranker.featurizer.fill(row, now, retrieved, len(retrieved), ranker.featurizer.context("web", None, now), X)
    y = load_model(models[0]).predict(X)
    order = np.argsort(-y, kind="stable")[:3]
    got = e.recommend({"cookie": "c3"}, placement="home", now=now)
    assert [s.content for s in got.slots] == [top.contents[int(retrieved[i])] for i in order]
    np.testing.assert_allclose([s.score for s in got.slots], y[order], rtol=0, atol=1e-12)


def _affinity_top(e: Engine, cookie: str, now: int, n: int) -> np.ndarray:
    from decisioner._kernels import decide as D

    pl = e.placement("home")
    prof, pop = e.profiles, e.scorer.popularity_
    out = D.new_out(n)
    params = pl.params.copy()
    params[D.P_INV_MAX] = pop.inv_max()
    m = D.recommend_one(
        (prof.fid_, prof.score_, prof.t_, prof.purchased_), e.profile_row({"cookie": cookie}), now, 1,
        e.half_lives_, (e.catalog.fv_indptr, e.catalog.fv_items, e.catalog.fv_data), pop.acc_, pl.plc, params, n,
        D.new_work(e.catalog.n_items, prof.slots), out, np.zeros(D.N_COUNTS, dtype=np.int64),
    )
    return out[0][:m].copy()


def test_exploration_over_the_ranked_list_keeps_exact_propensities(models: tuple[Path, Path]) -> None:
    """epsilon-greedy over the model's order: slot 1's propensity is 1 - eps + eps / pool for
    the model's best and eps / pool otherwise; the empirical frequency of showing the model's
    best first matches (seeded, 2,000 decisions, 4 standard errors)."""
    eps, pool = 0.3, 5
    e = engine(models[0], policy={"kind": "epsilon_greedy", "epsilon": eps, "pool": pool})
    ref = engine(models[0])
    for ev in history():
        e.track(ev)
        ref.track(ev)
    best = ref.recommend({"cookie": "c3"}, placement="home", now=T0 + 10**8).slots[0].content
    firsts = []
    for _ in range(2000):
        d = e.decide({"type": "view", "time": T0 + 10**8, "ids": {"cookie": "c3"}}, placement="home")
        s0 = d.slots[0]
        want = 1 - eps + eps / pool if s0.content == best else eps / pool
        assert s0.propensity == pytest.approx(want, abs=1e-12)
        firsts.append(s0.content == best)
    p = 1 - eps + eps / pool
    assert abs(np.mean(firsts) - p) < 4 * np.sqrt(p * (1 - p) / 2000)


def test_no_model_no_consent_and_a_cold_person_fall_back_cleanly(models: tuple[Path, Path]) -> None:
    plain, e = engine(None), engine(models[0])
    d0 = plain.decide(view(0), placement="home")
    assert not any(r.kind == "ranker" for r in d0.reasons)
    # no personalization consent: no profiling, so no ranker, and the default content
    d = e.decide(view(1, consent={"personalization": False}), placement="home")
    assert len(d.slots) == 3 and not any(r.kind == "ranker" for r in d.reasons)
    assert any(r.kind == "consent" for r in d.reasons)
    # a person never seen: the ranker still orders the retrieval (context and item features)
    d = e.decide(view(2, "new"), placement="home")
    assert len(d.slots) == 3 and any(r.kind == "ranker" for r in d.reasons)


def test_a_hot_swap_serves_the_new_model_from_the_next_decision(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = models
    e, twin = engine(a), engine(b)
    for ev in history():
        e.track(ev)
        twin.track(ev)
    out = e.set_ranker("home", b)
    assert out["source"] == str(b) and out["schema_version"] == SCHEMA_VERSION and out["trees"] == 30
    for j in range(4):
        assert slots(e.decide(view(j, f"c{j}"), placement="home")) == slots(
            twin.decide(view(j, f"c{j}"), placement="home")
        )


def test_a_bad_model_is_refused_and_the_current_one_keeps_serving(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = models
    e = engine(a)
    for ev in history():
        e.track(ev)
    before = e.ops_
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "features.json").write_text((a / "features.json").read_text())
    text = (a / "model.txt").read_text()
    (truncated / "model.txt").write_text(text[: len(text) // 2])
    other = write_model(tmp_path / "other", seed=3, names=(*FEATURE_NAMES[:-1], "shoe_size"))
    old = write_model(tmp_path / "old", seed=3, version=SCHEMA_VERSION - 1)
    with pytest.raises(ModelError):
        e.set_ranker("home", truncated)
    with pytest.raises(ModelError, match=f"feature {len(FEATURE_NAMES) - 1} to be '{FEATURE_NAMES[-1]}', got 'shoe_size'"):
        e.set_ranker("home", other)
    with pytest.raises(ModelError, match=f"schema version {SCHEMA_VERSION}, got {SCHEMA_VERSION - 1}"):
        e.set_ranker("home", old)
    with pytest.raises(ModelError, match="Expected a model directory"):
        e.set_ranker("home", tmp_path / "absent")
    with pytest.raises(UnknownPlacementError, match="a placement with a `ranker`"):
        e.set_ranker("hero", a)
    assert e.ops_ == before
    d = e.decide(view(0), placement="home")
    assert any(r.kind == "ranker" and str(a) in r.detail for r in d.reasons)


def test_a_swap_under_load_neither_drops_nor_mixes_decisions(models: tuple[Path, Path]) -> None:
    a, b = models
    e = engine(a)
    for ev in history():
        e.track(ev)
    seen: list[str] = []
    done = threading.Event()

    def decide() -> None:
        j = 0
        while not done.is_set() or j < 50:
            d = e.decide(view(j, f"c{j % 12}"), placement="home")
            seen.append(next(r.detail for r in d.reasons if r.kind == "ranker").split()[0])
            j += 1

    t = threading.Thread(target=decide)
    t.start()
    for _ in range(6):
        e.set_ranker("home", b)
        e.set_ranker("home", a)
    e.set_ranker("home", b)
    done.set()
    t.join()
    assert set(seen) <= {str(a), str(b)} and seen[-1] == str(b)
    assert e.seq_ == len(seen)


def test_log_and_snapshot_round_trips_serve_the_same_model(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = models
    e = engine(a)
    e.durable(tmp_path / "state")
    for ev in history(120):
        e.track(ev)
    e.set_ranker("home", b)
    for j in range(3):
        e.decide(view(j, f"c{j}"), placement="home")
    e.save(tmp_path / "state")  # the snapshot holds model b's text
    e.set_ranker("home", a)  # ... and the log the swap back
    e.decide(view(3), placement="home")
    e.detach_log()
    back = Engine.open(tmp_path / "state", hash_key=KEY, flush="off")
    for j in range(4, 8):
        assert slots(back.decide(view(j, f"c{j}"), placement="home")) == slots(
            e.decide(view(j, f"c{j}"), placement="home")
        )
    # the model text is in the state: the directory's model changing later changes nothing
    b2 = Path(shutil.copytree(b, tmp_path / "b2"))
    e2 = engine(a)
    e2.durable(tmp_path / "state2")
    e2.set_ranker("home", b2)
    e2.save(tmp_path / "state2")
    e2.detach_log()
    write_model(b2, seed=7)  # retrained in place
    again = Engine.open(tmp_path / "state2", hash_key=KEY, flush="off")
    assert again.placements_.ranker("home").served_.fingerprint == e2.placements_.ranker("home").served_.fingerprint


def test_config_checks(models: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = models
    with pytest.raises(ConfigError, match="no `ranker` on a campaign"):
        load_config_dict({"identity": {"hash_key": KEY}, "placements": [
            {"name": "hero", "kind": "campaign", "experiences": [{"id": "a"}], "ranker": {"model": str(a)}}]})
    with pytest.raises(ConfigError, match="a ranked policy"):
        config(a, policy={"kind": "random"})
    with pytest.raises(ConfigError, match=r"`ranker.retrieve` >= slots"):
        config(a, retrieve=2)
    with pytest.raises(ModelError, match="Expected a model directory"):
        engine(tmp_path / "absent")


def test_check_engine_holds_with_a_ranker(models: tuple[Path, Path]) -> None:
    from decisioner.checks import check_engine

    e = engine(models[0], policy={"kind": "epsilon_greedy", "epsilon": 0.2, "pool": 6})
    for ev in history(80):
        e.track(ev)
    e.set_ranker("home", models[1])
    check_engine(e, [("home" if j % 3 else None, view(j, f"c{j % 12}", item=f"i{j % N_ITEMS}")) for j in range(30)])


def test_cli_model_shows_a_servable_model_and_refuses_others(
    models: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from decisioner.cli import main

    assert main(["model", str(models[0]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["servable"] and out["trees"] == 30 and out["features"] == len(FEATURE_NAMES)
    assert out["schema_version"] == SCHEMA_VERSION and len(out["fingerprint"]) == 64
    other = write_model(tmp_path / "other", seed=4, names=("x", *FEATURE_NAMES[1:]))
    assert main(["model", str(other)]) == 1
    assert f"Expected feature 0 to be '{FEATURE_NAMES[0]}', got 'x'" in capsys.readouterr().err
