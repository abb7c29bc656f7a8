"""CUPED, the delta method and winsorising against independent computations (statsmodels OLS,
scipy's Welch test, numpy covariances) to 1e-9."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from decisioner.errors import ConfigError
from decisioner.evaluation.adjust import cuped, cuped_theta, ratio_comparison, ratio_stats, winsorize_cap
from decisioner.evaluation.reports import experiment_report

TOL = 1e-9


def units(seed: int, n: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three variants; a skewed pre-period covariate that predicts the outcome; variant 2 lifts it."""
    g = np.random.default_rng(seed)
    v = g.integers(0, 3, n)
    x = g.gamma(2.0, 3.0, n)
    y = 0.8 * x + np.where(v == 2, 0.5, 0.0) + g.normal(0.0, 2.0, n)
    return v, y, x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cuped_matches_ols_theta_and_scipy_welch_on_the_adjusted_outcome(seed: int) -> None:
    v, y, x = units(seed)
    theta_ols = sm.OLS(y, sm.add_constant(x)).fit().params[1]  # pooled slope = cov(Y, X) / var(X)
    theta, rho = cuped_theta(y, x)
    assert theta == pytest.approx(theta_ols, rel=TOL)
    assert rho == pytest.approx(stats.pearsonr(y, x).statistic, rel=TOL)
    adj = y - theta_ols * (x - x.mean())
    res = cuped(v, y, x, ["a", "b", "c"], 0, alpha=0.05)
    assert [c.variant for c in res] == ["b", "c"]
    for c, t in zip(res, (1, 2)):
        # textbook adjusted means: mean_k(Y) - theta (mean_k(X) - mean(X))
        mean_c = y[v == 0].mean() - theta_ols * (x[v == 0].mean() - x.mean())
        mean_t = y[v == t].mean() - theta_ols * (x[v == t].mean() - x.mean())
        assert c.control_mean == pytest.approx(mean_c, rel=TOL) and c.variant_mean == pytest.approx(mean_t, rel=TOL)
        tt = stats.ttest_ind(adj[v == t], adj[v == 0], equal_var=False)
        ci = tt.confidence_interval(0.95)
        assert c.abs_lift == pytest.approx(mean_t - mean_c, rel=TOL, abs=TOL)
        assert c.abs_low == pytest.approx(ci.low, rel=TOL, abs=TOL)
        assert c.abs_high == pytest.approx(ci.high, rel=TOL, abs=TOL)
        assert c.p_value == pytest.approx(tt.pvalue, rel=1e-7, abs=TOL)
        raw = stats.ttest_ind(y[v == t], y[v == 0], equal_var=False).confidence_interval(0.95)
        assert c.raw_low == pytest.approx(raw.low, rel=TOL, abs=TOL)
        assert c.raw_high == pytest.approx(raw.high, rel=TOL, abs=TOL)
        assert c.abs_high - c.abs_low < c.raw_high - c.raw_low
    # the predictive covariate removes about rho^2 of the variance
    assert res[1].variance_reduction == pytest.approx(rho**2, abs=0.03)
    assert res[1].abs_low < 0.5 < res[1].abs_high


def test_cuped_with_an_unrelated_covariate_changes_little_and_a_constant_one_nothing() -> None:
    v, y, _ = units(3)
    noise = np.random.default_rng(4).normal(size=y.shape)
    c = cuped(v, y, noise, ["a", "b", "c"], 0)[1]
    assert abs(c.variance_reduction) < 0.01
    flat = cuped(v, y, np.ones_like(y), ["a", "b", "c"], 0)[1]
    assert flat.theta == 0.0 and flat.abs_low == flat.raw_low and flat.abs_high == flat.raw_high


def test_delta_method_variance_matches_the_covariance_formula() -> None:
    """Clicks per exposure with the person as the unit: var(R) = (s_NN - 2 R s_ND + R^2 s_DD) /
    (n mean(D)^2), computed here from numpy's covariance matrix."""
    g = np.random.default_rng(5)
    n = 4000
    exposures = 1 + g.poisson(4.0, n)
    clicks = g.binomial(exposures, g.beta(2.0, 18.0, n))
    v = g.integers(0, 2, n)
    out = ratio_comparison(v, clicks, exposures, ["control", "treatment"], 0, metric="clicks_per_exposure")
    (c,) = out
    ses = []
    for k in (0, 1):
        num, den = clicks[v == k].astype(float), exposures[v == k].astype(float)
        r = num.sum() / den.sum()
        s = np.cov(num, den, ddof=1)
        var = (s[0, 0] - 2 * r * s[0, 1] + r * r * s[1, 1]) / (num.size * den.mean() ** 2)
        ses.append(math.sqrt(var))
        r_k, se_k = ratio_stats(num, den)
        assert r_k == pytest.approx(r, rel=TOL) and se_k == pytest.approx(math.sqrt(var), rel=TOL)
    assert c.control_se == pytest.approx(ses[0], rel=TOL) and c.variant_se == pytest.approx(ses[1], rel=TOL)
    q = stats.norm.ppf(0.975)
    se = math.hypot(*ses)
    assert c.abs_low == pytest.approx(c.abs_lift - q * se, rel=TOL, abs=TOL)
    assert c.p_value == pytest.approx(2 * stats.norm.sf(abs(c.abs_lift) / se), rel=1e-7, abs=TOL)


def test_delta_method_agrees_with_a_seeded_bootstrap_over_people() -> None:
    """The linearised standard error against 2,000 bootstrap resamples of people (tolerance 10%:
    the bootstrap's own error at 2,000 resamples is about 1.6%)."""
    g = np.random.default_rng(6)
    n = 3000
    den = 1 + g.poisson(3.0, n)
    num = g.gamma(1.0, 20.0, n) * g.binomial(den, 0.1)
    _, se = ratio_stats(num, den)
    idx = g.integers(0, n, (2000, n))
    boot = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    assert se == pytest.approx(boot.std(ddof=1), rel=0.10)


def test_winsorised_value_is_welch_on_values_capped_at_the_pooled_percentile() -> None:
    g = np.random.default_rng(7)
    n = 3000
    v = g.integers(0, 2, n)
    value = np.where(g.random(n) < 0.1, g.lognormal(3.0, 1.5, n), 0.0)
    cap = winsorize_cap(value, 99)
    assert cap == pytest.approx(np.percentile(value[value > 0], 99), rel=TOL)
    rep = experiment_report(v, (value > 0).astype(int), value, ["control", "treatment"], winsorize=99, draws=1000)
    capped = np.minimum(value, cap)
    tt = stats.ttest_ind(capped[v == 1], capped[v == 0], equal_var=False)
    ci = tt.confidence_interval(0.95)
    (w,) = rep.winsorized
    assert w.metric == "value_winsorized" and rep.units_capped == int((value > cap).sum()) > 0
    assert w.abs_low == pytest.approx(ci.low, rel=TOL, abs=TOL) and w.abs_high == pytest.approx(ci.high, rel=TOL, abs=TOL)
    assert w.p_value == pytest.approx(tt.pvalue, rel=1e-7, abs=TOL)


def test_report_carries_cuped_ratios_and_strict_nulls() -> None:
    v, y, x = units(8, 1200)
    rep = experiment_report(v, (y > 5).astype(int), y, ["a", "b", "c"], covariate=x, covariate_name="pre",
                            ratios={"y_per_x": (y, x)}, draws=1000)
    assert {(c.metric, c.variant) for c in rep.cuped} == {(m, t) for m in ("conversion", "value") for t in "bc"}
    assert {c.covariate for c in rep.cuped} == {"pre"} and [c.metric for c in rep.ratios] == ["y_per_x"] * 2


@pytest.mark.parametrize(("call", "msg"), [
    (lambda: winsorize_cap([1.0], 0), "expected `winsorize` percentile in (0, 100], got 0"),
    (lambda: cuped_theta([1.0, math.nan], [1.0, 2.0]), "expected finite values, got NaN or infinity - at the per-unit arrays"),
    (lambda: experiment_report([0, 1], [0, 1], [1.0, 2.0], ["a", "b"], covariate=[1.0]),
     "expected one covariate value per unit, got (1,) for (2,)"),
])
def test_adjust_errors(call: object, msg: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        call()  # type: ignore[operator]
