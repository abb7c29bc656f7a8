"""Allocation: policy selection and update, the Thompson probability refresh, experiment
bucketing, and the same workloads against MABWiser (``compare/mabwiser_bandits.py``) in the
same run.

Workloads: Thompson sampling over 1,000 arms fitted on 200,000 Bernoulli outcomes (click
rates 2-8%); LinUCB over 100 arms x 20 features fitted on 5,000 observations. The MABWiser
comparison asserts the speed-up (>= 50x and >= 20x) only in timing runs; under
``--benchmark-disable`` each body runs once as a smoke test.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from compare import mabwiser_bandits as peer
from decisioner.allocation import BernoulliThompson, LinUCB
from decisioner.allocation.experiments import ExperimentRuntime, bucket
from decisioner.config import ExperimentSpec, HoldoutSpec, LinUCBSpec, ThompsonSpec, VariantSpec

TS_ARMS = 1000
LIN_ARMS, LIN_DIM = 100, 20
KEY = b"k" * 16


@functools.lru_cache(maxsize=1)
def ts_data() -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(0)
    ctr = g.uniform(0.02, 0.08, TS_ARMS)
    dec = g.integers(0, TS_ARMS, 200_000)
    return dec, (g.random(dec.size) < ctr[dec]).astype(np.int64)


@functools.lru_cache(maxsize=1)
def lin_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.random.default_rng(1)
    x = g.normal(size=(5000, LIN_DIM))
    w = g.normal(size=(LIN_ARMS, LIN_DIM)) * 0.1
    dec = g.integers(0, LIN_ARMS, 5000)
    return x, dec, (x * w[dec]).sum(axis=1) + 0.1 * g.normal(size=5000)


def ours_thompson() -> BernoulliThompson:
    dec, rew = ts_data()
    pol = BernoulliThompson(TS_ARMS, ThompsonSpec(batch_size=1000), seed=0)
    pol.update_many(dec, rew)
    pol.refresh()
    return pol


def ours_linucb() -> LinUCB:
    x, dec, rew = lin_data()
    pol = LinUCB(LIN_ARMS, LIN_DIM, LinUCBSpec(alpha=1.0, l2=1.0))
    pol.update_many(dec, rew, contexts=x)
    return pol


def median_us(fn: Callable[[], Any], rounds: int) -> float:
    """Median wall time of one call (microseconds) over ``rounds`` calls, after a warm-up."""
    fn()
    t = np.empty(rounds)
    for i in range(rounds):
        t0 = time.perf_counter_ns()
        fn()
        t[i] = time.perf_counter_ns() - t0
    return float(np.median(t)) / 1000.0


# ---------------------------------------------------------------- decisioner alone


@pytest.mark.benchmark(group="allocation")
def test_thompson_select_1000_arms(benchmark: Any) -> None:
    """One Thompson selection with its exact propensity, 1,000 arms."""
    pol = ours_thompson()
    c = benchmark(pol.select_one)
    assert 0 <= c.arm < TS_ARMS and 0.0 < c.propensity <= 1.0


@pytest.mark.benchmark(group="allocation")
def test_thompson_refresh_1000_arms(benchmark: Any) -> None:
    """Recomputing the 1,000 selection probabilities by integration (once per batch)."""
    pol = ours_thompson()
    benchmark.pedantic(pol.refresh, rounds=20, iterations=1, warmup_rounds=1)
    assert pol.error_ < 1e-3 and abs(pol.action_distribution().sum() - 1.0) < 1e-9


@pytest.mark.benchmark(group="allocation")
def test_thompson_update(benchmark: Any) -> None:
    """A policy update (a reward for one arm), 1,000 arms."""
    pol = ours_thompson()
    before = pol.stats_.counts_.sum()
    benchmark(pol.update_one, 7, 1.0)
    assert pol.stats_.counts_.sum() > before


@pytest.mark.benchmark(group="allocation")
def test_linucb_select_100x20(benchmark: Any) -> None:
    pol = ours_linucb()
    x = lin_data()[0][0].copy()
    c = benchmark(pol.select_one, context=x)
    assert 0 <= c.arm < LIN_ARMS and c.propensity == 1.0


@pytest.mark.benchmark(group="allocation")
def test_linucb_update_20_features(benchmark: Any) -> None:
    pol = ours_linucb()
    x = lin_data()[0][1].copy()
    benchmark(pol.update_one, 3, 0.5, context=x)
    assert pol.counts_[3] > 0


@pytest.mark.benchmark(group="experiments")
def test_bucket_position(benchmark: Any) -> None:
    """The keyed xxh3 position of a unit under a salt."""
    p = benchmark(bucket, KEY, "exp-hero", "0123456789abcdef")
    assert 0.0 <= p < 1.0


@pytest.mark.benchmark(group="experiments")
def test_bucket_assignment(benchmark: Any) -> None:
    """Assignment of a profile already seen (sticky lookup), with a holdout and a namespace."""
    rt = ExperimentRuntime(
        KEY, [ExperimentSpec(name="e", placement="hero", namespace="n", segment=(0.0, 0.5),
                             variants=[VariantSpec(name="a"), VariantSpec(name="b")])],
        HoldoutSpec(fraction=0.05), ["hero"],
    )
    rt.ensure(1000)
    for r in range(1000):
        rt.assign(0, r, f"{r:016x}")
    code = benchmark(rt.assign, 0, 17, "0000000000000011")
    assert code == rt.assign(0, 17, "anything")


@pytest.mark.benchmark(group="experiments")
def test_bucket_assignment_first_time(benchmark: Any) -> None:
    """First assignment of a new profile: three keyed hashes (holdout, namespace, variant)."""
    rt = ExperimentRuntime(
        KEY, [ExperimentSpec(name="e", placement="hero", namespace="n", segment=(0.0, 1.0),
                             variants=[VariantSpec(name="a"), VariantSpec(name="b")])],
        HoldoutSpec(fraction=0.05), ["hero"],
    )
    rt.ensure(2_000_000)
    rows = iter(range(2_000_000))

    def setup() -> tuple[tuple[int, int, str], dict[str, Any]]:
        r = next(rows)
        return (0, r, f"{r:016x}"), {}

    code = benchmark.pedantic(rt.assign, setup=setup, rounds=20_000, iterations=1)
    assert code in (-2, 0, 1)


# ---------------------------------------------------------------- against MABWiser, same run


def _compare(benchmark: Any, smoke: bool, name: str, ours: Callable[[], Any], theirs: Callable[[], Any],
             rounds: int, floor: float) -> None:
    result = benchmark.pedantic(ours, rounds=rounds, iterations=1, warmup_rounds=1)
    assert result is not None
    ours_us = median_us(ours, rounds)
    theirs_us = median_us(theirs, max(rounds // 20, 20))
    ratio = theirs_us / ours_us
    benchmark.extra_info.update(
        {f"{name}_ours_us": ours_us, f"{name}_mabwiser_us": theirs_us, f"{name}_speedup": ratio}
    )
    print(f"\n{name}: decisioner {ours_us:.2f} us, {peer.NAME} {theirs_us:.1f} us, speed-up {ratio:.0f}x")
    if not smoke:
        assert ratio >= floor, (name, ours_us, theirs_us, ratio)


@pytest.mark.benchmark(group="compare-mabwiser")
def test_thompson_1000_arms_vs_mabwiser(benchmark: Any, smoke: bool) -> None:
    """Thompson selection over 1,000 arms: decisioner (with its propensity) vs MABWiser's
    ``predict`` on the same fitted data; >= 50x."""
    dec, rew = ts_data()
    pol = ours_thompson()
    model = peer.thompson(TS_ARMS, dec, rew)
    assert 0 <= peer.thompson_select(model) < TS_ARMS
    _compare(benchmark, smoke, "thompson_1000", pol.select_one, lambda: peer.thompson_select(model), 2000, 50.0)


@pytest.mark.benchmark(group="compare-mabwiser")
def test_linucb_100x20_vs_mabwiser(benchmark: Any, smoke: bool) -> None:
    """LinUCB over 100 arms x 20 features: decisioner vs MABWiser's ``predict``; >= 20x."""
    x, dec, rew = lin_data()
    pol = ours_linucb()
    model = peer.linucb(LIN_ARMS, x, dec, rew)
    q = x[0].copy()
    assert pol.select_one(context=q).arm == peer.linucb_select(model, q)  # same model, same choice
    _compare(benchmark, smoke, "linucb_100x20", lambda: pol.select_one(context=q),
             lambda: peer.linucb_select(model, q), 2000, 20.0)
