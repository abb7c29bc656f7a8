"""Experiment statistics against SciPy on fixtures, the always-valid sequential test under
continuous peeking (1,000 seeded A/A runs), the sample-ratio-mismatch check, multiple-testing
corrections, Bayesian summaries and the IPW lift on bandit-collected data."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from decisioner.errors import ConfigError
from decisioner.evaluation import inference as D
from decisioner.evaluation.inference import (
    adjust_pvalues,
    always_valid,
    ipw_lift,
    proportion_test,
    srm_test,
    welch_test,
)
from decisioner.evaluation.reports import experiment_report

# ---------------------------------------------------------------- distributions


def test_distribution_functions_match_scipy() -> None:
    for p in (1e-12, 1e-6, 0.001, 0.025, 0.3, 0.5, 0.77, 0.975, 0.999999):
        assert D.norm_ppf(p) == pytest.approx(stats.norm.ppf(p), rel=1e-12, abs=1e-12)
    for z in (-8.0, -1.96, 0.0, 0.3, 2.5, 12.0):
        assert D.norm_sf(z) == pytest.approx(stats.norm.sf(z), rel=1e-12)
    for df in (1.0, 2.5, 7.0, 30.0, 1000.0):
        for t in (-4.0, -0.5, 0.0, 1.0, 2.2, 9.0):
            assert D.t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-10, abs=1e-300)
        for p in (0.9, 0.975, 0.995):
            assert D.t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-10)
    for k in (1, 2, 3, 10, 63):
        for x in (0.01, 0.5, 3.0, 20.0, 160.0):
            assert D.chi2_sf(x, k) == pytest.approx(stats.chi2.sf(x, k), rel=1e-10, abs=1e-300)


# ---------------------------------------------------------------- fixed-horizon tests


@pytest.mark.parametrize(("x_c", "n_c", "x_t", "n_t"), [(100, 1000, 130, 1000), (480, 5000, 530, 5200), (3, 40, 9, 45)])
def test_two_proportion_z_test_matches_scipy(x_c: int, n_c: int, x_t: int, n_t: int) -> None:
    """The pooled z test is the uncorrected chi-square test of the 2x2 table (z^2 = chi2)."""
    r = proportion_test(x_c, n_c, x_t, n_t)
    chi2, p, _, _ = stats.chi2_contingency([[x_t, n_t - x_t], [x_c, n_c - x_c]], correction=False)
    assert r["statistic"] ** 2 == pytest.approx(chi2, rel=1e-10)
    assert r["p_value"] == pytest.approx(p, rel=1e-9)
    pc, pt = x_c / n_c, x_t / n_t
    se = math.sqrt(pc * (1 - pc) / n_c + pt * (1 - pt) / n_t)
    assert (r["abs_low"], r["abs_high"]) == pytest.approx((pt - pc - stats.norm.ppf(0.975) * se, pt - pc + stats.norm.ppf(0.975) * se), rel=1e-10)


def test_welch_t_test_matches_scipy(make_rng) -> None:  # type: ignore[no-untyped-def]
    g = make_rng()
    for n_c, n_t, shift in ((30, 45, 0.4), (500, 480, 0.05), (8, 12, 2.0)):
        c = g.lognormal(1.0, 1.0, n_c)
        t = g.lognormal(1.0 + shift, 1.2, n_t)
        r = welch_test(c.mean(), c.var(ddof=1), n_c, t.mean(), t.var(ddof=1), n_t)
        ref = stats.ttest_ind(t, c, equal_var=False)
        assert r["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
        assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-8)
        ci = ref.confidence_interval(0.95)
        assert (r["abs_low"], r["abs_high"]) == pytest.approx((ci.low, ci.high), rel=1e-8)


# ---------------------------------------------------------------- sample ratio mismatch


def test_srm_matches_scipy_and_flags_52_48_over_100k() -> None:
    res = srm_test([52_000, 48_000], [0.5, 0.5])
    ref = stats.chisquare([52_000, 48_000], [50_000, 50_000])
    assert res.chi2 == pytest.approx(ref.statistic, rel=1e-12) == 160.0
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-8) and res.p_value < 1e-35
    assert res.flagged
    ok = srm_test([50_150, 49_850], [0.5, 0.5])  # 0.3 point off: within chance (p ~ 0.34)
    assert not ok.flagged and ok.p_value == pytest.approx(stats.chisquare([50_150, 49_850]).pvalue, rel=1e-9)
    three = srm_test([2000, 3100, 4900], [2, 3, 5])
    assert three.p_value == pytest.approx(stats.chisquare([2000, 3100, 4900], [2000, 3000, 5000]).pvalue, rel=1e-9)
    with pytest.raises(ConfigError, match="^" + re.escape("expected one weight per variant, got 3 weights for 2 variants") + "$"):
        srm_test([1, 2], [1, 1, 1])


# ---------------------------------------------------------------- multiple testing


def test_holm_and_benjamini_hochberg() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    holm = adjust_pvalues(p, "holm")
    srt = sorted(range(5), key=lambda i: p[i])
    want, run = [0.0] * 5, 0.0
    for rank, i in enumerate(srt):
        run = max(run, min(1.0, (5 - rank) * p[i]))
        want[i] = run
    assert holm == pytest.approx(want)
    assert adjust_pvalues(p, "bh") == pytest.approx(stats.false_discovery_control(p, method="bh").tolist())
    assert adjust_pvalues(p, "none") == p
    with pytest.raises(ConfigError, match="^" + re.escape("expected `correction` in ['holm', 'bh', 'none'], got 'x'") + "$"):
        adjust_pvalues(p, "x")  # type: ignore[arg-type]


# ---------------------------------------------------------------- always-valid inference


def test_sequential_interval_covers_under_continuous_peeking() -> None:
    """1,000 seeded A/A runs of a conversion metric (rate 0.2, 5,000 units per arm), looked at
    every 50 units from 200 on (97 looks). The always-valid (mSPRT) interval contains the true
    difference 0 at every look in >= 95% of runs; the fixed-horizon 95% interval, looked at
    the same way, does not (peeking inflates its error)."""
    runs, n, rate, alpha = 1000, 5000, 0.2, 0.05
    g = np.random.default_rng(20240611)
    looks = np.arange(200, n + 1, 50)
    ca = np.cumsum(g.random((runs, n), dtype=np.float32) < rate, axis=1)[:, looks - 1]
    cb = np.cumsum(g.random((runs, n), dtype=np.float32) < rate, axis=1)[:, looks - 1]
    pa, pb = ca / looks, cb / looks
    var = (pa * (1 - pa) + pb * (1 - pb)) / looks
    pooled = (pa + pb) / 2
    _, lo, hi = always_valid(pb - pa, var, (0.1 * np.sqrt(pooled * (1 - pooled))) ** 2, alpha)
    covered = ((lo <= 0) & (hi >= 0)).all(axis=1)
    z = stats.norm.ppf(1 - alpha / 2)
    naive = (np.abs(pb - pa) <= z * np.sqrt(var)).all(axis=1)
    assert covered.mean() >= 0.95, covered.mean()
    assert naive.mean() < 0.85, naive.mean()


def test_sequential_test_detects_a_real_effect() -> None:
    r = proportion_test(1000, 10_000, 1200, 10_000)
    assert r["seq_p_value"] < 0.05 and r["seq_low"] > 0
    assert r["seq_low"] < r["abs_low"] and r["seq_high"] > r["abs_high"]  # wider than fixed horizon
    p, lo, hi = always_valid(0.0, 1e-4, 1e-4)
    assert p == 1.0 and lo == -hi


# ---------------------------------------------------------------- Bayesian and IPW


def test_probability_to_be_best_and_expected_loss() -> None:
    """Two variants with 120/1000 vs 100/1000 conversions: P(best) matches the exact
    P(Beta(121, 881) > Beta(101, 901)) by quadrature (MC error of 100k draws: < 0.005)."""
    rng = np.random.default_rng(0)
    v = np.r_[np.zeros(1000, int), np.ones(1000, int)]
    conv = np.r_[np.arange(1000) < 100, np.arange(1000) < 120].astype(int)
    rep = experiment_report(v, conv, conv * 1.0, ["a", "b"], seed=1, draws=100_000)
    from scipy import integrate

    exact = integrate.quad(lambda x: stats.beta.pdf(x, 121, 881) * stats.beta.cdf(x, 101, 901), 0, 1, points=[0.12])[0]
    best = {b.variant: b for b in rep.bayes if b.metric == "conversion"}
    assert best["b"].prob_best == pytest.approx(exact, abs=0.005)
    assert best["a"].prob_best + best["b"].prob_best == pytest.approx(1.0)
    assert best["b"].expected_loss < best["a"].expected_loss
    del rng


def test_ipw_lift_is_unbiased_on_bandit_collected_data() -> None:
    """A bandit shifts traffic to the treatment over time while the base rate rises: the naive
    difference of means is biased upwards, the IPW lift recovers the true +0.05 (4 SEs)."""
    g = np.random.default_rng(7)
    n = 200_000
    t = np.arange(n) / n
    p_treat = 0.2 + 0.7 * t  # the bandit's allocation grows with time
    arm = (g.random(n) < p_treat).astype(int)
    prop = np.where(arm == 1, p_treat, 1 - p_treat)
    base = 0.1 + 0.2 * t  # and so does the base rate
    reward = (g.random(n) < base + 0.05 * arm).astype(float)
    naive = reward[arm == 1].mean() - reward[arm == 0].mean()
    res = ipw_lift(arm, reward, prop, 1, 0, names=["control", "bandit"])
    se = (res.high - res.low) / (2 * 1.959964)
    assert abs(res.lift - 0.05) < 4 * se and res.low < 0.05 < res.high
    assert naive - 0.05 > 8 * se  # the naive estimate is far off
    assert res.variant == "bandit" and res.effective_n > 1000
    with pytest.raises(ConfigError, match="^" + re.escape("expected propensities in (0, 1] for every logged decision - at `propensities`") + "$"):
        ipw_lift(arm[:3], reward[:3], np.zeros(3), 1, 0)
