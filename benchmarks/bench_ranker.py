"""The compiled LightGBM ranker (``decisioner.ranking``): scoring 1,000 candidates and one row
with the issue-13 shape (200 trees, 31 leaves, 30 features, one thread), and LightGBM's own
``predict`` on the same model and rows in the same run (``compare/lightgbm_predict.py``).

Targets (issue 13): 1,000 rows <= 1 ms, one row <= 5 us. Reported, not asserted: the latency
percentiles print at the end of a timing run and go to ``extra_info`` with the ratio to LightGBM.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from compare import lightgbm_predict as peer
from decisioner._kernels import trees as K
from decisioner.ranking import RankerModel


def median_us(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e6)


@pytest.fixture(scope="module")
def compiled() -> tuple[Any, RankerModel]:
    booster = peer.model()
    return booster, RankerModel.from_text(booster.model_to_string())


def _compare(benchmark: Any, record: Callable[[], None], name: str, ours: Callable[[], Any],
             theirs: Callable[[], Any], rounds: int) -> None:
    benchmark.pedantic(ours, rounds=rounds, iterations=1, warmup_rounds=1)
    record()
    if benchmark.disabled:
        return
    ours_us = median_us(ours, rounds)
    theirs_us = median_us(theirs, max(rounds // 10, 20))
    benchmark.extra_info.update({f"{name}_ours_us": ours_us, f"{name}_lightgbm_us": theirs_us,
                                 f"{name}_speedup": theirs_us / ours_us})
    print(f"\n{name}: decisioner {ours_us:.1f} us, {peer.NAME} {theirs_us:.1f} us, "
          f"speed-up {theirs_us / ours_us:.1f}x")


@pytest.mark.benchmark(group="ranker")
def test_score_1000_rows(benchmark: Any, record_latency: Callable[[], None], compiled: tuple[Any, RankerModel]) -> None:
    """1,000 candidates through ``predict_into`` (no allocation) vs ``Booster.predict``."""
    booster, model = compiled
    X = peer.rows(1000)
    out = np.empty(1000)
    model.predict_into(X, 1000, out)
    np.testing.assert_allclose(out, peer.predict_rows(booster, X), rtol=0, atol=1e-9)
    _compare(benchmark, record_latency, "rows_1000", lambda: model.predict_into(X, 1000, out),
             lambda: peer.predict_rows(booster, X), 300)


@pytest.mark.benchmark(group="ranker")
def test_score_one_row(benchmark: Any, record_latency: Callable[[], None], compiled: tuple[Any, RankerModel]) -> None:
    """One row through the one-row kernel vs ``Booster.predict`` on one row."""
    booster, model = compiled
    X = peer.rows(1)
    bundle = model.bundle
    assert abs(K.predict_row(bundle, X, 0) - peer.predict_one(booster, X)) <= 1e-9
    _compare(benchmark, record_latency, "row_1", lambda: K.predict_row(bundle, X, 0),
             lambda: peer.predict_one(booster, X), 5000)


@pytest.mark.benchmark(group="ranker")
def test_score_one_row_predict_into(benchmark: Any, record_latency: Callable[[], None],
                                    compiled: tuple[Any, RankerModel]) -> None:
    """One row through the checked ``predict_into`` (the Python checks included)."""
    booster, model = compiled
    X = peer.rows(1)
    out = np.empty(1)
    _compare(benchmark, record_latency, "row_1_checked", lambda: model.predict_into(X, 1, out),
             lambda: peer.predict_one(booster, X), 5000)
