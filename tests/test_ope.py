"""Off-policy estimators: known-truth logs, the reward models, bootstrap intervals, the
engine's own decision log, and candidate-policy evaluation."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import optimize

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import EpsilonGreedySpec, GreedySpec, load_config_dict
from decisioner.errors import ConfigError
from decisioner.evaluation.engine_log import log_from_engine
from decisioner.evaluation.ope import (
    ESTIMATORS,
    BanditLog,
    estimate,
    evaluate_policy,
    fit_reward_model,
    kfold_indices,
    logistic_fit,
)

RATES = np.array([0.05, 0.10, 0.30, 0.15, 0.20])


def uniform_log(n: int, seed: int) -> BanditLog:
    g = np.random.default_rng(seed)
    a = g.integers(0, 5, n)
    return BanditLog(action=a, reward=(g.random(n) < RATES[a]).astype(float), pscore=np.full(n, 0.2), n_actions=5)


def test_estimators_recover_a_known_value() -> None:
    """Uniform logging over 5 arms (20k rounds); evaluation policy 70% arm 2, 30% arm 4: true
    value 0.27. Every importance-weighted estimator's 95% bootstrap interval contains it (the
    bootstrap is conditional on the reward model, so DM's interval is only its resampling
    noise: DM is checked against the truth directly), and IPW is the plain formula."""
    log = uniform_log(20_000, 1)
    pi = np.array([0.0, 0.0, 0.7, 0.0, 0.3])[:, None]
    q = fit_reward_model(log, kind="tabular", seed=1)
    res = estimate(log, pi, q=q, n_boot=400, seed=2)
    assert set(res) == set(ESTIMATORS)
    for e, r in res.items():
        assert r.low < r.estimate < r.high and r.se > 0
        if e != "dm":
            assert r.low <= 0.27 <= r.high, r
    assert abs(res["dm"].estimate - 0.27) < 0.01
    w = pi[log.action, 0] / log.pscore
    assert res["ipw"].estimate == pytest.approx(np.mean(w * log.reward), rel=1e-15)
    assert res["snipw"].estimate == pytest.approx((w * log.reward).sum() / w.sum(), rel=1e-15)
    assert res["dm"].se < res["ipw"].se  # the model-based estimate has lower variance
    assert res == estimate(log, pi, q=q, n_boot=400, seed=2)  # seeded bootstrap


def test_switch_and_shrinkage_interpolate_between_dm_and_dr() -> None:
    log = uniform_log(5000, 3)
    pi = np.eye(5)[2][:, None]
    q = fit_reward_model(log, kind="tabular", seed=3)
    r = estimate(log, pi, q=q, n_boot=0)
    assert estimate(log, pi, q=q, n_boot=0, switch_tau=1e9)["switch_dr"].estimate == pytest.approx(r["dr"].estimate)
    assert estimate(log, pi, q=q, n_boot=0, switch_tau=1.0)["switch_dr"].estimate == pytest.approx(r["dm"].estimate)
    assert estimate(log, pi, q=q, n_boot=0, os_lambda=1e12)["dr_os"].estimate == pytest.approx(r["dr"].estimate, rel=1e-9)


def test_contextual_logistic_model_and_dr() -> None:
    """Rewards depend on a context feature and the arm, through a logistic model whose arm effect flips with the context); a deterministic contextual evaluation policy
    (arm 1 when x > 0, else arm 0) is estimated by DR, IPW and SNIPW within 0.02 of its true
    value, while DM carries its model's misspecification (no arm-context interaction)."""
    g = np.random.default_rng(4)
    n = 30_000
    x = g.normal(size=(n, 1))
    a = g.integers(0, 2, n)
    logit = lambda arm: -1.0 + 1.5 * x[:, 0] + 0.8 * arm - 2.0 * arm * (x[:, 0] < 0)  # noqa: E731
    r = (g.random(n) < 1 / (1 + np.exp(-logit(a)))).astype(float)
    log = BanditLog(action=a, reward=r, pscore=np.full(n, 0.5), n_actions=2, context=np.hstack([x, x * x]))
    chosen = (x[:, 0] > 0).astype(int)
    pi = np.zeros((n, 2, 1))
    pi[np.arange(n), chosen, 0] = 1.0
    truth = np.mean(1 / (1 + np.exp(-logit(chosen))))
    q = fit_reward_model(log, kind="logistic", n_folds=3, seed=0)
    res = estimate(log, pi, q=q, n_boot=0)
    for e in ("dr", "ipw", "snipw"):
        assert abs(res[e].estimate - truth) < 0.02, (e, res[e].estimate, truth)
    # DM inherits the model's misspecification (no arm-context interaction in its features)
    assert abs(res["dm"].estimate - truth) > abs(res["dr"].estimate - truth)


def test_logistic_fit_minimises_the_regularised_log_loss(make_rng) -> None:  # type: ignore[no-untyped-def]
    g = make_rng()
    x = g.normal(size=(400, 3))
    y = (g.random(400) < 1 / (1 + np.exp(-(x @ [1.0, -2.0, 0.5] + 0.3)))).astype(float)
    w = logistic_fit(x, y, c=2.0)

    def objective(v: np.ndarray) -> float:
        z = v[0] + x @ v[1:]
        return float(2.0 * np.sum(np.logaddexp(0, z) - y * z) + 0.5 * v[1:] @ v[1:])

    ref = optimize.minimize(objective, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    assert np.allclose(w, ref, atol=1e-5)


def test_kfold_indices_partition_and_sizes() -> None:
    folds = kfold_indices(10, 3, seed=1)
    assert [f.size for f in folds] == [4, 3, 3]
    assert sorted(np.concatenate(folds).tolist()) == list(range(10))
    assert all(np.array_equal(a, b) for a, b in zip(folds, kfold_indices(10, 3, seed=1)))


def test_bandit_log_and_estimate_errors() -> None:
    with pytest.raises(ConfigError, match="^" + re.escape("expected propensities in (0, 1] - at `pscore`") + "$"):
        BanditLog(action=np.array([0]), reward=np.array([1.0]), pscore=np.array([0.0]), n_actions=1)
    with pytest.raises(ConfigError, match="^" + re.escape("expected actions in [0, 2) - at `action`") + "$"):
        BanditLog(action=np.array([2]), reward=np.array([1.0]), pscore=np.array([0.5]), n_actions=2)
    log = uniform_log(10, 0)
    with pytest.raises(ConfigError, match="^" + re.escape("expected `action_dist` of shape (5, 1) or (10, 5, 1), got (4, 1)") + "$"):
        estimate(log, np.ones((4, 1)))
    with pytest.raises(ConfigError, match="^" + re.escape("expected estimators from ['ipw', 'snipw', 'dm', 'dr', 'switch_dr', 'dr_os'], got ['x']") + "$"):
        estimate(log, np.ones((5, 1)) / 5, estimators=("x",))


def test_evaluate_a_candidate_policy_on_the_engines_log() -> None:
    """A campaign served uniformly at random (the logging policy) with known click rates: the
    engine's decision log, read as a bandit log, evaluates a greedy and an epsilon-greedy
    candidate; their estimated click rates are near the truth and beat the logging policy."""
    key = "ab" * 16
    cfg = load_config_dict({"identity": {"hash_key": key}, "placements": [
        {"name": "hero", "kind": "campaign", "policy": {"kind": "random"},
         "experiences": [{"id": f"e{i}"} for i in range(5)]}]})
    eng = Engine(cfg, Catalog([{"id": "i0", "category": "c"}], cfg.catalog), seed=2)
    g = np.random.default_rng(9)
    t0 = 1_700_000_000_000
    for t in range(6000):
        d = eng.decide({"type": "view", "time": t0 + t, "ids": {"cookie": f"p{t % 500}"}}, placement="hero")
        assert d.slots[0].propensity == pytest.approx(0.2)
        if g.random() < RATES[int(d.slots[0].content[1:])]:
            eng.observe({"decision_id": d.decision_id, "kind": "click", "time": t0 + t})
    log = log_from_engine(eng, "hero")
    assert log.n_rounds == 6000 and log.n_actions == 5 and np.allclose(log.pscore, 0.2)
    greedy = evaluate_policy(log, GreedySpec(), n_boot=200)
    assert greedy["action_distribution"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    for e in ("ipw", "dr", "dm"):
        assert abs(greedy["estimates"][e]["estimate"] - 0.30) < 0.04
    eps = evaluate_policy(log, EpsilonGreedySpec(epsilon=0.2), n_boot=0)
    truth = 0.8 * 0.30 + 0.2 * RATES.mean()
    assert abs(eps["estimates"]["dr"]["estimate"] - truth) < 0.04
    assert greedy["logging_value"] == pytest.approx(RATES.mean(), abs=0.02)
