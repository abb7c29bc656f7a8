"""Slate policies (greedy, epsilon-greedy, softmax, uniform) and Bernoulli Thompson sampling.

Statistical checks use fixed seeds and state their tolerance next to the assertion.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from decisioner._kernels import bandit as B
from decisioner._kernels.rng import seed_state
from decisioner.allocation import BernoulliThompson, SlatePolicy
from decisioner.config import (
    EpsilonGreedySpec,
    GreedySpec,
    PopularSpec,
    RandomSpec,
    SoftmaxSpec,
    ThompsonSpec,
)
from decisioner.errors import ConfigError, UnknownArmError

SCORES = np.array([0.1, 0.9, -np.inf, 0.5, 0.7, 0.3, -np.inf, 0.2])  # 6 finite, best: 1, 4, 3, 5
FINITE = {0, 1, 3, 4, 5, 7}



ALL_SPECS = [
    GreedySpec(), PopularSpec(), EpsilonGreedySpec(epsilon=0.3, pool=4), SoftmaxSpec(temperature=0.2, pool=50),
    RandomSpec(), EpsilonGreedySpec(epsilon=1.0),
]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: type(s).__name__)
def test_slate_basic_properties(spec: object) -> None:
    pol = SlatePolicy(spec)  # type: ignore[arg-type]
    for k in range(200):
        idx, prop = pol.select(SCORES, 3, seed_state(11, k))
        assert idx.dtype == np.int64 and prop.dtype == np.float64
        assert len(idx) == 3 and len(set(idx.tolist())) == 3
        assert set(idx.tolist()) <= FINITE
        assert ((prop > 0) & (prop <= 1)).all()


@pytest.mark.parametrize("spec", [GreedySpec(), PopularSpec(), EpsilonGreedySpec(epsilon=0.0)])
def test_greedy_gives_the_top_items(spec: object) -> None:
    idx, prop = SlatePolicy(spec).select(SCORES, 4, seed_state(0))  # type: ignore[arg-type]
    assert idx.tolist() == [1, 4, 3, 5] and prop.tolist() == [1.0] * 4


def test_fewer_candidates_than_slots() -> None:
    for spec in ALL_SPECS:
        idx, prop = SlatePolicy(spec).select(SCORES, 10, seed_state(0))
        assert sorted(idx.tolist()) == sorted(FINITE) and prop.shape == (6,)
    idx, prop = SlatePolicy(GreedySpec()).select(np.full(4, -np.inf), 2, seed_state(0))
    assert idx.shape == (0,) and prop.shape == (0,)


def test_policy_names_and_rejection_of_thompson() -> None:
    assert [SlatePolicy(s).name for s in ALL_SPECS[:5]] == ["greedy", "popular", "epsilon_greedy", "softmax", "random"]
    with pytest.raises(ConfigError, match="^" + re.escape("expected a ranking policy, got `ThompsonSpec`") + "$"):
        SlatePolicy(ThompsonSpec())


def test_equal_seeds_equal_slates() -> None:
    pol = SlatePolicy(SoftmaxSpec(temperature=0.3))
    a = [pol.select(SCORES, 3, seed_state(5, k)) for k in range(20)]
    b = [pol.select(SCORES, 3, seed_state(5, k)) for k in range(20)]
    for (i1, p1), (i2, p2) in zip(a, b):
        assert np.array_equal(i1, i2) and np.array_equal(p1, p2)
    assert len({tuple(i.tolist()) for i, _ in a}) > 1  # and the streams do differ


def test_epsilon_propensities_and_frequencies() -> None:
    eps, pool = 0.3, 4
    pol = SlatePolicy(EpsilonGreedySpec(epsilon=eps, pool=pool))
    n = 4000
    first = np.empty(n, np.int64)
    for k in range(n):
        idx, prop = pol.select(SCORES, 2, seed_state(3, k))
        first[k] = idx[0]
        best = idx[0] == 1
        assert prop[0] == pytest.approx((1 - eps) * best + eps / pool)
        # slot 2: three remain; its propensity is conditional on slot 1
        best_left = idx[1] == (4 if idx[0] == 1 else 1)
        assert prop[1] == pytest.approx((1 - eps) * best_left + eps / (pool - 1))
    assert set(first.tolist()) == {1, 4, 3, 5}  # the exploration pool is the top 4
    # frequency of the best item at slot 1: 1 - eps + eps/pool = 0.775; binomial sd ~0.0066,
    # tolerance 0.03 (> 4 sd)
    assert abs((first == 1).mean() - (1 - eps + eps / pool)) < 0.03


def test_softmax_propensities_are_the_plackett_luce_probabilities() -> None:
    tau = 0.2
    pol = SlatePolicy(SoftmaxSpec(temperature=tau))
    finite = np.array(sorted(FINITE))
    w = np.exp((SCORES[finite] - SCORES[finite].max()) / tau)
    p = dict(zip(finite.tolist(), (w / w.sum()).tolist()))
    n = 4000
    counts = dict.fromkeys(p, 0)
    for k in range(n):
        idx, prop = pol.select(SCORES, 2, seed_state(4, k))
        assert prop[0] == pytest.approx(p[int(idx[0])], rel=1e-9)
        rest = {i: v for i, v in p.items() if i != idx[0]}
        assert prop[1] == pytest.approx(rest[int(idx[1])] / sum(rest.values()), rel=1e-9)
        counts[int(idx[0])] += 1
    # empirical first-slot frequencies vs probabilities; tolerance 0.03 (> 4 binomial sd)
    for i, pi in p.items():
        assert abs(counts[i] / n - pi) < 0.03


def test_uniform_policy() -> None:
    pol = SlatePolicy(RandomSpec())
    n = 3000
    counts = np.zeros(SCORES.shape[0])
    for k in range(n):
        idx, prop = pol.select(SCORES, 3, seed_state(8, k))
        assert prop.tolist() == pytest.approx([1 / 6, 1 / 5, 1 / 4])
        counts[idx[0]] += 1
    # each finite item first with probability 1/6; tolerance 0.03 (> 4 sd)
    assert np.abs(counts[sorted(FINITE)] / n - 1 / 6).max() < 0.03
    assert counts[[2, 6]].sum() == 0


# ---------------------------------------------------------------- Thompson

def test_thompson_learns_the_best_arm() -> None:
    rates = np.array([0.05, 0.12, 0.30, 0.10])
    rng = np.random.default_rng(2024)
    pol = BernoulliThompson(4)
    eligible = np.ones(4, np.uint8)
    picks = []
    for k in range(3000):
        arm, prop = pol.select_one(eligible, seed_state(9, k))
        assert 0 <= arm < 4 and 0.0 < prop <= 1.0
        picks.append(arm)
        if rng.random() < rates[arm]:
            pol.reward(arm)
    last = np.array(picks[-1000:])
    # the clearly best arm (0.30 vs <= 0.12) is chosen in >= 85% of the last 1000 rounds
    assert (last == 2).mean() >= 0.85
    assert int(np.argmax(pol.means())) == 2
    assert pol.trials_.sum() == 3000
    assert (pol.successes_ <= pol.trials_).all()
    assert abs(pol.means()[2] - 0.30) < 0.05  # ~2800 trials: sd ~0.009


def test_reward_never_exceeds_trials() -> None:
    pol = BernoulliThompson(3)
    for _ in range(5):
        pol.reward(1)  # rewards before any trial are capped at zero
    assert pol.successes_.tolist() == [0.0, 0.0, 0.0]
    pol.select_one(np.array([0, 1, 0], np.uint8), seed_state(0))
    pol.reward(1, 0.25)
    pol.reward(1, 5.0)  # clipped to 1 and to the trial count
    pol.reward(1, -3.0)  # clipped to 0
    assert pol.trials_.tolist() == [0.0, 1.0, 0.0] and pol.successes_.tolist() == [0.0, 1.0, 0.0]


def test_unknown_arm() -> None:
    pol = BernoulliThompson(3)
    for bad in (3, -1):
        with pytest.raises(UnknownArmError, match="^" + re.escape(f"Expected an arm in [0, 3), got {bad}") + "$"):
            pol.reward(bad)


def test_no_eligible_arm_and_single_arm() -> None:
    pol = BernoulliThompson(3)
    assert pol.select_one(np.zeros(3, np.uint8), seed_state(0)) == (-1, 0.0)
    assert pol.trials_.sum() == 0
    arm, prop = pol.select_one(np.array([0, 0, 1], np.uint8), seed_state(1))
    assert (arm, prop) == (2, 1.0)


def test_thompson_propensity_matches_selection_frequency() -> None:
    spec = ThompsonSpec(propensity_draws=256)
    trials = np.array([20.0, 20.0, 20.0])
    succ = np.array([4.0, 7.0, 2.0])
    eligible = np.ones(3, np.uint8)
    n = 1500
    chosen = np.empty(n, np.int64)
    props = np.empty(n)
    for k in range(n):
        chosen[k], props[k] = B.thompson_select(
            spec.prior_alpha, spec.prior_beta, trials, succ, eligible, seed_state(21, k), spec.propensity_draws
        )
    for a in range(3):
        freq = (chosen == a).mean()
        if freq > 0:
            # the mean logged propensity of an arm estimates its selection probability;
            # tolerance 0.05 (Monte Carlo + binomial noise are both below 0.015 sd)
            assert abs(props[chosen == a].mean() - freq) < 0.05
    assert (chosen == 1).mean() > 0.7  # arm 1 leads clearly (about 0.84 with this seed)


def test_priors_shape_the_means() -> None:
    pol = BernoulliThompson(2, ThompsonSpec(prior_alpha=2.0, prior_beta=8.0))
    assert pol.means().tolist() == pytest.approx([0.2, 0.2])
