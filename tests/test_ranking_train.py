"""Training the learned ranker: metrics by hand, queries from a replay, the time split, errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from decisioner.engine import Engine
from decisioner.errors import ConfigError, NotReadyError
from decisioner.ranking.features import FEATURE_NAMES
from decisioner.ranking.train import auc, build_queries, compare, ndcg_at, train, train_from, world_events


def test_ndcg_and_auc_by_hand() -> None:
    lab = np.array([0.0, 1.0, 0.0])
    assert ndcg_at(np.array([3.0, 2.0, 1.0]), lab) == pytest.approx(1 / math.log2(3))
    assert ndcg_at(np.array([1.0, 2.0, 0.0]), lab) == 1.0
    assert ndcg_at(np.zeros(3), np.zeros(3)) == 0.0
    assert auc(np.array([3.0, 2.0, 1.0]), lab) == 0.5
    assert auc(np.array([1.0, 1.0, 0.0]), lab) == 0.75
    assert math.isnan(auc(np.ones(2), np.ones(2)))
    c = compare(np.array([1.0, 0.5, 1.0, 1.0]), np.array([0.5, 0.5, 0.5, 1.0]), seed=0)
    assert c["difference"] == 0.25 and c["difference_ci"][0] >= 0.0 and c["queries"] == 4


@pytest.fixture(scope="module")
def queries(small_world: str):  # type: ignore[no-untyped-def]
    engine = Engine.from_world(small_world, seed=0)
    events = [json.loads(x) for x in Path(small_world, "events.jsonl").read_text().splitlines()[:12000]]
    return build_queries(engine, world_events(engine, events), candidates=20, negatives=5, seed=0)


def test_queries_have_one_group_each_with_its_positive(queries) -> None:  # type: ignore[no-untyped-def]
    q = queries
    assert q.n_queries > 100 and q.X.shape == (q.y.shape[0], len(FEATURE_NAMES))
    b = q.bounds()
    sizes = np.diff(b)
    assert (sizes >= 2).all() and (sizes <= 20 + 5 + 8).all()
    assert all(q.y[b[j]: b[j + 1]].max() >= 1.0 for j in range(q.n_queries))
    assert set(np.unique(q.y).tolist()) == {0.0, 1.0, 2.0}  # carts 1, purchases 2
    assert (np.diff(q.qtime) >= 0).all() and q.counts["add_to_cart"] > 0 and q.events == 12000


@pytest.mark.parametrize("objective", ["lambdarank", "binary"])
def test_train_reports_held_out_metrics(queries, objective: str) -> None:  # type: ignore[no-untyped-def]
    booster, rep = train(queries, objective=objective, seed=1, trees=20)
    assert booster.num_trees() == 20 and rep["trees"] == 20
    held = rep["queries"]["held_out"]
    assert held > 0 and rep["queries"]["train"] + held == queries.n_queries
    assert queries.qtime[: rep["queries"]["train"]].max() < rep["split_time"] <= queries.qtime[-held:].min()
    nd = rep["ndcg@10"]
    assert nd["queries"] == held and nd["model_ci"][0] <= nd["model"] <= nd["model_ci"][1]
    assert nd["difference"] > 0.0  # the recency features carry what affinity misses
    again = train(queries, objective=objective, seed=1, trees=20)[1]
    assert again == rep  # seeded and deterministic


def test_train_errors(queries, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=re.escape(
        "Expected `objective` to be one of ['lambdarank', 'binary'], got 'pairwise' - at `--objective`"
    )):
        train(queries, objective="pairwise")
    no = queries.__class__(np.empty((0, len(FEATURE_NAMES))), np.empty(0), np.empty(0, np.int64),
                           np.empty(0, np.int64), np.empty(0, bool), events=7)
    with pytest.raises(NotReadyError, match=re.escape(
        "Expected interactions with items (add_to_cart, click, purchase) to learn from, got none in 7 events - at "
        "`training data`"
    )):
        train(no)
    with pytest.raises(NotReadyError, match=re.escape("Expected a world directory with config.toml, catalog.jsonl "
                                                      "and events.jsonl, got")):
        train_from(world=tmp_path / "missing", out=tmp_path / "m")
    with pytest.raises(ConfigError, match=re.escape("Expected exactly one of `--world DIR` or `--log FILE`, got "
                                                    "neither - at `train`")):
        train_from(out=tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def engine_log(small_world: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A closed-loop run of the engine policy, made durable: its log holds every decision and
    every click and conversion joined to one."""
    from decisioner.simulate import simulate

    d = tmp_path_factory.mktemp("simlog") / "engine"
    res = simulate(small_world, seed=5, policies=("engine",), max_events=5000, durable=d, workers=1)
    return d, res.policies["engine"]


def test_exposure_queries_are_the_logged_slates_and_their_outcomes(  # type: ignore[no-untyped-def]
    engine_log, small_world: str, tmp_path: Path,
) -> None:
    from decisioner.datasets.synthetic import load_world

    d, run = engine_log
    key = load_world(small_world).hash_key
    rep = train_from(log=d / "events.log", out=tmp_path / "m", labels="exposures", hash_key=key, trees=10,
                     train_fraction=0.5)
    prov = rep["provenance"]
    # every decision re-made as logged (the log's own seed), so every outcome joins its slate
    assert prov["labels"] == "exposures"
    assert prov["exposures"] == {"decisions": run.decisions, "clicks": run.clicks, "conversions": run.purchases}
    assert prov["queries"] == run.decisions and rep["rows"]["train"] + rep["rows"]["held_out"] == run.impressions
    assert run.clicks > 0 and rep["auc"]["queries"] > 0
    assert json.loads((tmp_path / "m" / "provenance.json").read_text())["labels"] == "exposures"


def test_exposure_labels_need_an_engine_log(tmp_path: Path, small_world: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(
        "Expected `--log FILE` with `--labels exposures` (the engine's logged decisions and their outcomes), got a "
        "world - at `--labels`"
    )):
        train_from(world=small_world, out=tmp_path / "m", labels="exposures")
    with pytest.raises(ConfigError, match=re.escape(
        "Expected `labels` in ['interactions', 'exposures'], got 'views' - at `--labels`"
    )):
        train_from(world=small_world, out=tmp_path / "m", labels="views")
    assert not (tmp_path / "m").exists()


def test_simulate_refuses_a_used_directory_for_the_engine_log(small_world: str, tmp_path: Path) -> None:
    from decisioner.simulate import simulate

    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(ConfigError, match=re.escape("Expected a new or empty directory for the engine log, got")):
        simulate(small_world, policies=("engine",), max_events=10, durable=tmp_path / "used")
    with pytest.raises(ConfigError, match=re.escape(
        "Expected the policy `engine` with `durable`, got policies ['random'] - at `durable`"
    )):
        simulate(small_world, policies=("random",), max_events=10, durable=tmp_path / "new")
    assert not (tmp_path / "new").exists()
