"""The compiled LightGBM ranker (``decisioner.ranking``): scoring 1,000 candidates and one row
with the issue-13 shape (200 trees, 31 leaves, 30 features, one thread), and LightGBM's own
``predict`` on the same model and rows in the same run (``compare/lightgbm_predict.py``).

Targets (issue 13): 1,000 rows <= 1 ms, one row <= 5 us. Reported, not asserted: the latency
percentiles print at the end of a timing run and go to ``extra_info`` with the ratio to LightGBM.
Every call scores rows it has not just scored (matrices and rows in turn), so no call finds its row's
nodes already in cache, as a server's calls would not.
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

#: distinct 1,000-row matrices and distinct single rows the calls take in turn
MATRICES, ROWS = 20, 20_000


def percentiles_us(fn: Callable[[int], Any], rounds: int) -> tuple[float, float]:
    """(median, p99) in microseconds of ``fn(i)`` for ``i`` in ``range(rounds)``."""
    times = np.empty(rounds)
    for i in range(rounds):
        t0 = time.perf_counter()
        fn(i)
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e6), float(np.percentile(times, 99) * 1e6)


class Turns:
    """``fn(i)`` as a zero-argument call that passes 0, 1, 2 ... in turn (pytest-benchmark's form)."""

    def __init__(self, fn: Callable[[int], Any]) -> None:
        self.fn, self.i = fn, 0

    def __call__(self) -> Any:
        self.i += 1
        return self.fn(self.i)


@pytest.fixture(scope="module")
def compiled() -> tuple[Any, RankerModel]:
    booster = peer.model()
    return booster, RankerModel.from_text(booster.model_to_string())


def _compare(benchmark: Any, record: Callable[[], None], name: str, ours: Callable[[int], Any],
             theirs: Callable[[int], Any], rounds: int) -> None:
    benchmark.pedantic(Turns(ours), rounds=rounds, iterations=1, warmup_rounds=1)
    record()
    if benchmark.disabled:
        return
    ours_us, ours_p99 = percentiles_us(ours, rounds)
    theirs_us, theirs_p99 = percentiles_us(theirs, max(rounds // 10, 20))
    benchmark.extra_info.update({f"{name}_ours_us": ours_us, f"{name}_ours_p99_us": ours_p99,
                                 f"{name}_lightgbm_us": theirs_us, f"{name}_lightgbm_p99_us": theirs_p99,
                                 f"{name}_speedup": theirs_us / ours_us})
    print(f"\n{name}: decisioner median {ours_us:.1f} us p99 {ours_p99:.1f} us, {peer.NAME} median "
          f"{theirs_us:.1f} us p99 {theirs_p99:.1f} us, speed-up {theirs_us / ours_us:.1f}x (medians)")


@pytest.mark.benchmark(group="ranker")
def test_score_1000_rows(benchmark: Any, record_latency: Callable[[], None], compiled: tuple[Any, RankerModel]) -> None:
    """1,000 candidates through ``predict_into`` (no allocation) vs ``Booster.predict``."""
    booster, model = compiled
    Xs = [peer.rows(1000, seed=1 + k) for k in range(MATRICES)]
    out = np.empty(1000)
    model.predict_into(Xs[0], 1000, out)
    np.testing.assert_allclose(out, peer.predict_rows(booster, Xs[0]), rtol=0, atol=1e-9)
    _compare(benchmark, record_latency, "rows_1000", lambda i: model.predict_into(Xs[i % MATRICES], 1000, out),
             lambda i: peer.predict_rows(booster, Xs[i % MATRICES]), 300)


@pytest.mark.benchmark(group="ranker")
def test_score_one_row(benchmark: Any, record_latency: Callable[[], None], compiled: tuple[Any, RankerModel]) -> None:
    """One row through the one-row kernel (the walk) vs ``Booster.predict`` on one row."""
    booster, model = compiled
    X = peer.rows(ROWS)
    bundle = model.bundle
    assert abs(K.predict_row(bundle, X, 0) - peer.predict_one(booster, X[:1])) <= 1e-9
    _compare(benchmark, record_latency, "row_1", lambda i: K.predict_row(bundle, X, i % ROWS),
             lambda i: peer.predict_one(booster, X[i % ROWS : i % ROWS + 1]), 5000)


@pytest.mark.benchmark(group="ranker")
def test_score_one_row_predict_into(benchmark: Any, record_latency: Callable[[], None],
                                    compiled: tuple[Any, RankerModel]) -> None:
    """One row through the checked ``predict_into`` (the Python checks included; scalar QuickScorer)."""
    booster, model = compiled
    rows = [r[None, :] for r in peer.rows(ROWS)]  # each row its own C-contiguous (1, F) matrix
    out = np.empty(1)
    _compare(benchmark, record_latency, "row_1_checked", lambda i: model.predict_into(rows[i % ROWS], 1, out),
             lambda i: peer.predict_one(booster, rows[i % ROWS]), 5000)
