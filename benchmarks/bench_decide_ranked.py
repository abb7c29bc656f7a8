"""Whole ``Engine.decide`` with a learned ranker re-ranking 1,000 retrieved candidates (issue 13:
p99 <= 1.5 ms), beside the same engine's decision without a ranker, in the same run.

The model has the issue's shape: 200 trees of up to 31 leaves over the serving feature schema,
trained by LightGBM on rows drawn at random (its quality is not what is timed). The engine is
the bench's populated one (:func:`decisioner.bench.build_engine`), ``home`` retrieving 1,000.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import workloads
from decisioner.bench import BenchState, build_engine, placements
from decisioner.ranking.features import FEATURE_NAMES, schema

ROUNDS = 3_000
RETRIEVE = 1_000


def write_shape_model(d: Path, *, trees: int = 200, seed: int = 0) -> Path:
    """A 200-tree, 31-leaf LightGBM model over :data:`FEATURE_NAMES`, in a model directory."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20_000, len(FEATURE_NAMES)))
    y = X[:, :5].sum(axis=1) + 0.5 * rng.normal(size=X.shape[0])
    params = {"objective": "regression", "num_leaves": 31, "verbose": -1, "num_threads": 2, "seed": seed}
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=list(FEATURE_NAMES)), num_boost_round=trees)
    d.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(d / "model.txt"))
    (d / "features.json").write_text(json.dumps(schema()))
    return d


@pytest.fixture(scope="module")
def ranked(sizes: tuple[int, int], tmp_path_factory: pytest.TempPathFactory) -> BenchState:
    model = write_shape_model(tmp_path_factory.mktemp("model"))
    return build_engine(*sizes, options={"placements": placements({"model": str(model), "retrieve": RETRIEVE})})


def _rounds(benchmark: Any, state: BenchState, sizes: tuple[int, int]) -> Any:
    it = iter(workloads.events(ROUNDS + 1, 3, profiles=sizes[0], items=sizes[1]))
    decide = state.engine.decide

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (next(it),), {"placement": "home"}

    return benchmark.pedantic(decide, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="decide-ranked")
def test_decide_with_1000_reranked(
    benchmark: Any, ranked: BenchState, sizes: tuple[int, int], record_latency: Callable[[], None]
) -> None:
    d = _rounds(benchmark, ranked, sizes)
    record_latency()
    assert any(r.kind == "ranker" for r in d.reasons)
    assert len(d.slots) == 4 and all(0.0 < s.propensity <= 1.0 for s in d.slots)


@pytest.mark.benchmark(group="decide-ranked")
def test_decide_without_ranker(
    benchmark: Any, state: BenchState, sizes: tuple[int, int], record_latency: Callable[[], None]
) -> None:
    """The same decision path without a model, same run (the ratio is the ranker's cost)."""
    d = _rounds(benchmark, state, sizes)
    record_latency()
    assert not any(r.kind == "ranker" for r in d.reasons)
