"""Slate policies (greedy, epsilon-greedy, softmax, uniform) and the arm policies (Thompson
sampling for clicks and revenue, UCB1, epsilon-greedy, softmax, LinUCB, linear Thompson).

Statistical checks use fixed seeds and state their tolerance next to the assertion.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from decisioner._kernels.rng import seed_state
from decisioner.allocation import (
    UCB1,
    BernoulliThompson,
    EpsilonGreedy,
    GaussianThompson,
    Greedy,
    LinTS,
    LinUCB,
    Policy,
    SlatePolicy,
    Softmax,
    UniformRandom,
    make_policy,
)
from decisioner.config import (
    EpsilonGreedySpec,
    GaussianThompsonSpec,
    GreedySpec,
    LinTSSpec,
    LinUCBSpec,
    PopularSpec,
    RandomSpec,
    SoftmaxSpec,
    ThompsonSpec,
    UCB1Spec,
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


# ---------------------------------------------------------------- arm policies

RATES = np.array([0.05, 0.12, 0.30, 0.10])


def bernoulli_run(pol: Policy, rates: np.ndarray, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed loop on a Bernoulli problem: chosen arms and propensities per step."""
    rng = np.random.default_rng(seed)
    arms = np.empty(steps, np.int64)
    props = np.empty(steps)
    for t in range(steps):
        c = pol.select_one(state=seed_state(seed, t))
        arms[t], props[t] = c.arm, c.propensity
        pol.update_one(c.arm, float(rng.random() < rates[c.arm]))
    return arms, props


ARM_POLICIES = {
    "thompson": lambda: BernoulliThompson(4),
    "gaussian_thompson": lambda: GaussianThompson(4, GaussianThompsonSpec(prior_variance=0.25)),
    "ucb1": lambda: UCB1(4, UCB1Spec(c=0.5)),
    "epsilon_greedy": lambda: EpsilonGreedy(4, EpsilonGreedySpec(epsilon=0.1)),
    "softmax": lambda: Softmax(4, SoftmaxSpec(temperature=0.03)),
}


@pytest.mark.parametrize("name", ARM_POLICIES)
def test_each_policy_beats_uniform_random(name: str) -> None:
    """Stationary 4-arm Bernoulli problem (best 0.30), 3000 seeded steps: every policy earns
    more than uniform random (expected 0.1425 per step) by a wide margin, and picks the best
    arm in most of its last 1000 steps. Same seed, same rewards stream for both."""
    arms, props = bernoulli_run(ARM_POLICIES[name](), RATES, 3000, seed=11)
    rand_arms, _ = bernoulli_run(UniformRandom(4), RATES, 3000, seed=11)
    # expected reward of the choices (no Bernoulli noise): random ~0.1425
    assert RATES[arms].mean() > RATES[rand_arms].mean() + 0.08, (name, RATES[arms].mean())
    assert (arms[-1000:] == 2).mean() > 0.8
    assert ((props > 0) & (props <= 1)).all()


@pytest.mark.parametrize("name", ["linucb", "lin_ts"])
def test_contextual_policies_beat_uniform_random(name: str) -> None:
    """Linear rewards with noise (4 arms, 5 features), 2000 seeded steps: mean regret per step
    of LinUCB / linear TS is under a third of uniform random's."""
    rng = np.random.default_rng(5)
    w = rng.normal(size=(4, 5))
    pol: Policy = LinUCB(4, 5, LinUCBSpec(alpha=0.5)) if name == "linucb" else LinTS(4, 5, LinTSSpec(v=0.5))
    regret = regret_rand = 0.0
    for t in range(2000):
        x = np.r_[1.0, rng.normal(size=4)]
        mu = w @ x
        c = pol.select_one(context=x, state=seed_state(5, t))
        assert 0.0 < c.propensity <= 1.0
        regret += mu.max() - mu[c.arm]
        regret_rand += mu.max() - mu.mean()
        pol.update_one(c.arm, float(mu[c.arm] + 0.1 * rng.normal()), context=x)
    assert regret < regret_rand / 3, (regret, regret_rand)


@pytest.mark.parametrize("spec", [
    ThompsonSpec(discount=0.98), ThompsonSpec(window=300), UCB1Spec(c=0.3, discount=0.98), UCB1Spec(c=0.3, window=300),
    GaussianThompsonSpec(prior_variance=0.25, discount=0.98),
], ids=["ts-discount", "ts-window", "ucb-discount", "ucb-window", "gaussian-ts-discount"])
def test_forgetting_policies_recover_after_a_change_point(spec: object) -> None:
    """Two arms swap their click rates (0.3 / 0.1) after 4000 steps. Over steps 250-2000 after
    the change, a discounted or windowed policy plays the new best arm > 75% of the time; the
    same policy without forgetting, held back by its old evidence, at least 0.3 less often."""
    rates = [np.array([0.3, 0.1]), np.array([0.1, 0.3])]

    def run(s: object) -> float:
        pol = make_policy(s, 2)
        rng = np.random.default_rng(3)
        arms = []
        for phase, steps in ((0, 4000), (1, 2000)):
            for t in range(steps):
                c = pol.select_one(state=seed_state(3, phase * 100_000 + t))
                pol.update_one(c.arm, float(rng.random() < rates[phase][c.arm]))
                if phase == 1:
                    arms.append(c.arm)
        return float((np.array(arms[250:]) == 1).mean())

    plain = type(spec)(**{k: getattr(spec, k) for k in spec.__struct_fields__ if k not in ("discount", "window")})  # type: ignore[attr-defined]
    forgetting, stuck = run(spec), run(plain)
    assert forgetting > 0.75 and stuck < forgetting - 0.3, (forgetting, stuck)


def test_thompson_propensity_is_the_selection_probability() -> None:
    """The logged propensity is the integrated probability that the arm's posterior draw is
    highest: equal to the frequency over 20k seeded selections (Z = 4 binomial SEs) and to an
    independent 400k-draw Monte Carlo of the posteriors (within 0.004)."""
    pol = BernoulliThompson(4, ThompsonSpec(batch_size=10**8))
    for arm, (n, s) in enumerate([(20, 4), (20, 7), (20, 2), (5, 2)]):
        for i in range(n):
            pol.update_one(arm, 1.0 if i < s else 0.0)
    p = pol.action_distribution()
    n = 20_000
    arms, props = pol.select_many(n)
    for a in range(4):
        f = (arms == a).mean()
        assert abs(f - p[a]) <= 4 * np.sqrt(p[a] * (1 - p[a]) / n) + 1e-9, (a, f, p[a])
        assert np.all(props[arms == a] == p[a])
    g = np.random.default_rng(0)
    alpha, beta = 1 + np.array([4, 7, 2, 2]), 1 + np.array([16, 13, 18, 3])
    mc = np.bincount(g.beta(alpha, beta, size=(400_000, 4)).argmax(1), minlength=4) / 400_000
    assert np.abs(mc - p).max() < 0.004
    assert pol.error_ < 1e-3


def test_thompson_slate_per_position_propensities() -> None:
    """A top-2 slate from one posterior draw per arm: each position's propensity is the
    marginal probability of that arm there, matching 8000 seeded slates (Z = 4)."""
    pol = BernoulliThompson(4, ThompsonSpec(batch_size=10**8))
    pol.update_many([0, 1, 1, 2, 3, 3, 3], [1, 1, 0, 0, 1, 1, 0])
    ranks = pol.rank_distribution(2)
    assert np.allclose(ranks.sum(axis=0), 1.0, atol=1e-6)
    n = 8000
    counts = np.zeros((4, 2))
    for t in range(n):
        arms, props = pol.select_slate(2, state=seed_state(2, t))
        assert len(set(arms.tolist())) == 2 and np.allclose(props, ranks[arms, [0, 1]])
        counts[arms, [0, 1]] += 1
    freq = counts / n
    assert (np.abs(freq - ranks) <= 4 * np.sqrt(ranks * (1 - ranks) / n) + 1e-9).all()


def test_thompson_batch_size_and_eligibility_refresh() -> None:
    pol = BernoulliThompson(3, ThompsonSpec(batch_size=3))
    pol.select_one()
    assert pol.refreshes_ == 1
    pol.update_one(0, 1.0)
    pol.update_one(0, 1.0)
    pol.select_one()
    assert pol.refreshes_ == 1  # two changes < batch size: same snapshot
    pol.update_one(0, 1.0)
    pol.select_one()
    assert pol.refreshes_ == 2
    c = pol.select_one(np.array([0, 1, 0], np.uint8))
    assert pol.refreshes_ == 3 and c == type(c)(1, 1.0, c.score)  # new mask: new probabilities


def test_delayed_rewards_join_exposures() -> None:
    """Exposure now, reward later: a decision's successes are capped at one (Bernoulli) and
    revenue accumulates with its squares kept consistent (Gaussian)."""
    pol = BernoulliThompson(2)
    pol.expose(1)
    pol.update_one(1, 1.0, exposed=True, previous=0.0)
    pol.update_one(1, 1.0, exposed=True, previous=1.0)  # a second click on the same decision
    assert pol.trials_.tolist() == [0.0, 1.0] and pol.successes_.tolist() == [0.0, 1.0]
    g = GaussianThompson(1)
    g.expose(0)
    g.update_one(0, 5.0, exposed=True, previous=0.0)
    g.update_one(0, 3.0, exposed=True, previous=5.0)
    assert g.stats_.counts_.tolist() == [1.0] and g.stats_.sums_.tolist() == [8.0] and g.stats_.sumsq_.tolist() == [64.0]


def test_no_eligible_single_eligible_and_burn_in() -> None:
    for pol in (BernoulliThompson(3), UCB1(3), EpsilonGreedy(3), Softmax(3), Greedy(3), UniformRandom(3)):
        assert pol.select_one(np.zeros(3, np.uint8)) == type(pol.select_one())(-1, 0.0)
        c = pol.select_one(np.array([0, 0, 1], np.uint8))
        assert (c.arm, c.propensity) == (2, 1.0)
    pol = BernoulliThompson(3, ThompsonSpec(burn_in=2))
    seen = []
    for _ in range(6):
        c = pol.select_one()
        seen.append(c.arm)
        assert c.propensity == pytest.approx(1.0 / int((pol.counts < 2).sum()))
        pol.update_one(c.arm, 0.0)
    assert sorted(seen) == [0, 0, 1, 1, 2, 2]


def test_equal_seeds_equal_decisions() -> None:
    for make in ARM_POLICIES.values():
        a, b = make(), make()
        ca = [a.select_one(state=seed_state(4, t)) for t in range(30)]
        cb = [b.select_one(state=seed_state(4, t)) for t in range(30)]
        assert ca == cb


def test_action_distributions_match_the_closed_forms() -> None:
    eg = EpsilonGreedy(4, EpsilonGreedySpec(epsilon=0.2))
    eg.update_one(2, 1.0)
    assert eg.action_distribution().tolist() == pytest.approx([0.05, 0.05, 0.85, 0.05])
    assert eg.action_distribution(np.array([1, 1, 0, 0], np.uint8)).tolist() == pytest.approx([0.9, 0.1, 0, 0])
    sm = Softmax(2, SoftmaxSpec(temperature=0.5))
    sm.update_one(0, 1.0)
    sm.update_one(1, 0.0)
    assert sm.action_distribution()[0] == pytest.approx(np.exp(2) / (np.exp(2) + 1))
    u = UCB1(3)
    assert u.action_distribution().tolist() == [1.0, 0.0, 0.0]  # unplayed arms first


def test_policy_errors() -> None:
    pol = BernoulliThompson(3)
    for bad in (3, -1, 1.5):
        with pytest.raises(UnknownArmError, match="^" + re.escape(f"Expected an arm in [0, 3), got {bad!r}") + "$"):
            pol.update_one(bad, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^" + re.escape("expected an eligibility mask of shape (3,), got (2,) - at `eligible`") + "$"):
        pol.select_one(np.ones(2, np.uint8))
    with pytest.raises(ConfigError, match="^" + re.escape("expected a finite reward, got nan - at `reward`") + "$"):
        pol.update_one(0, float("nan"))
    with pytest.raises(ConfigError, match="^" + re.escape("`n_arms` must be an int >= 1, got 0") + "$"):
        BernoulliThompson(0)
    lin = LinUCB(2, 3)
    with pytest.raises(ConfigError, match="^" + re.escape("expected a context of 3 features, got None - at `context`") + "$"):
        lin.select_one()
    with pytest.raises(ConfigError, match="^" + re.escape("expected a finite context of shape (3,), got shape (2,) - at `context`") + "$"):
        lin.update_one(0, 1.0, context=[1.0, 2.0])
    with pytest.raises(ConfigError, match="^" + re.escape("expected `arms` and `rewards` of one equal length, got (2,) and (1,)") + "$"):
        pol.update_many([0, 1], [1.0])
    with pytest.raises(ConfigError, match="^" + re.escape("expected an arm policy spec, got `int`") + "$"):
        make_policy(3, 2)


@pytest.mark.parametrize(("kwargs", "msg"), [
    ({"discount": 0.0}, "`discount` must be in (0, 1], got 0.0"),
    ({"window": -1}, "`window` must be in [0, 10000000], got -1"),
    ({"discount": 0.9, "window": 10}, "expected either `discount` < 1 or `window` > 0, got both (0.9, 10)"),
    ({"prior_alpha": 0.0}, "`prior_alpha` must be > 0, got 0.0"),
    ({"batch_size": 0}, "`batch_size` must be in [1, 100000000], got 0"),
])
def test_thompson_spec_errors(kwargs: dict[str, object], msg: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        ThompsonSpec(**kwargs)  # type: ignore[arg-type]


def test_make_policy_and_priors() -> None:
    assert type(make_policy(PopularSpec(), 2)).__name__ == "Greedy"
    assert type(make_policy(GreedySpec(), 2)).__name__ == "Greedy"
    assert type(make_policy(RandomSpec(), 2)).__name__ == "UniformRandom"
    assert type(make_policy(LinTSSpec(), 2, n_features=3)).__name__ == "LinTS"
    pol = BernoulliThompson(2, ThompsonSpec(prior_alpha=2.0, prior_beta=8.0))
    assert pol.means().tolist() == pytest.approx([0.2, 0.2])
