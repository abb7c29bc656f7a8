"""Statistical inference for experiments: fixed-horizon and always-valid sequential tests with
their intervals, Bayesian probability to be best, a sample-ratio-mismatch check, multiple-testing
corrections and inverse-propensity-weighted lift for bandit-collected data, over the
distribution functions they need.

Tests
-----
* Fixed horizon: conversion, two-proportion z test (pooled standard error for the test,
  unpooled for the interval); value, Welch's t test. Valid when the sample size is fixed in
  advance and the result is looked at once.
* Always valid: the mixture sequential probability ratio test (mSPRT, Johari, Pekelis and
  Walsh 2017, "Always valid inference") with a normal mixture of variance ``tau^2`` over the
  difference of means. Its p-value and confidence interval hold at every look, so peeking at
  any time (and stopping when significant) keeps the error rate below ``alpha``. For a series
  of looks, take the running minimum of the p-value and the running intersection of the
  intervals.
* Bayesian: independent Beta(1 + conversions, 1 + non-conversions) posteriors (conversion) or
  normal posteriors of the mean (value); probability to be best and expected loss
  ``E[max_j theta_j - theta_k]``, by seeded Monte Carlo (``draws`` samples).
* Sample ratio mismatch: chi-square goodness of fit of the units per variant against the
  configured weights, flagged below ``srm_threshold`` (0.001 by default).
* Multiple variants: p-values of each treatment against the control adjusted by Holm
  (family-wise error) or Benjamini-Hochberg (false discovery rate).

Distributions
-------------
Normal, Student t and chi-square tails and quantiles in plain Python (no SciPy at run time),
checked against SciPy in the tests. The incomplete beta and gamma functions use the classic
continued fractions and series (Numerical Recipes, 3rd ed., sections 6.2 and 6.4) with relative
accuracy near 1e-14.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError
from ..schemas import Result

__all__ = [
    "BayesResult",
    "SRMResult",
    "IPWLift",
    "proportion_test",
    "welch_test",
    "always_valid",
    "srm_test",
    "adjust_pvalues",
    "bayes_best",
    "ipw_lift",
    "norm_cdf",
    "norm_sf",
    "norm_ppf",
    "t_sf",
    "t_cdf",
    "t_ppf",
    "chi2_sf",
    "betainc",
    "gammaincc",
]


class BayesResult(Result, frozen=True):
    """Probability that the variant is best on the metric, and its expected loss."""

    metric: str
    variant: str
    prob_best: float
    expected_loss: float


class SRMResult(Result, frozen=True):
    """Sample-ratio-mismatch check: observed and expected units, chi-square and p-value."""

    observed: list[int]
    expected: list[float]
    chi2: float
    p_value: float
    flagged: bool
    threshold: float


class IPWLift(Result, frozen=True):
    """Inverse-propensity-weighted (self-normalised) means of two arms under the logging policy's
    randomisation, their difference and its normal confidence interval."""

    variant: str
    control: str
    variant_mean: float
    control_mean: float
    lift: float
    low: float
    high: float
    p_value: float
    effective_n: float


# --------------------------------------------------------------------------- distributions


_SQRT2 = math.sqrt(2.0)


def norm_cdf(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-z / _SQRT2)


def norm_sf(z: float) -> float:
    """Standard normal upper tail ``P(Z > z)`` (accurate far into the tail)."""
    return 0.5 * math.erfc(z / _SQRT2)


def norm_ppf(p: float) -> float:
    """Standard normal quantile: Acklam's rational approximation refined by two Newton steps
    (relative error ~1e-15).

    >>> round(norm_ppf(0.975), 6)
    1.959964
    """
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        raise ValueError(f"expected a probability in [0, 1], got {p!r}")
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    lo = 0.02425
    if p < lo:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    elif p <= 1.0 - lo:
        q = p - 0.5
        r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (
            ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    else:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    for _ in range(2):  # Newton on the CDF (Halley is unnecessary at this starting accuracy)
        err = (norm_cdf(x) - p) if p < 0.5 else ((1.0 - p) - norm_sf(x))
        x -= err * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
    return x


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """Student t upper tail ``P(T > t)``."""
    if math.isinf(df):
        return norm_sf(t)
    tail = 0.5 * betainc(0.5 * df, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """Student t CDF."""
    return t_sf(-t, df)


def t_ppf(p: float, df: float) -> float:
    """Student t quantile by bisection on the CDF (to ~1e-12)."""
    if math.isinf(df):
        return norm_ppf(p)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    lo, hi = 0.0, max(2.0 * norm_ppf(p), 1.0)
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def gammaincc(s: float, x: float) -> float:
    """Regularised upper incomplete gamma ``Q(s, x)``."""
    if x <= 0.0:
        return 1.0
    lg = s * math.log(x) - x - math.lgamma(s)
    if x < s + 1.0:  # series for P, then Q = 1 - P
        term = 1.0 / s
        total = term
        ap = s
        for _ in range(100_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(lg))
    tiny = 1e-300  # continued fraction for Q (modified Lentz)
    b = x + 1.0 - s
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - s)
        b += 2.0
        d = an * d + b
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-16:
            break
    return math.exp(lg) * h


def chi2_sf(x: float, k: float) -> float:
    """Chi-square upper tail with ``k`` degrees of freedom."""
    return gammaincc(0.5 * k, 0.5 * x)


# --------------------------------------------------------------------------- tests


def _rel_interval(m_c: float, v_c: float, m_t: float, v_t: float, z: float) -> tuple[float, float, float]:
    """Relative lift ``m_t / m_c - 1`` with a delta-method interval (variances of the means)."""
    if m_c == 0.0:
        return math.nan, math.nan, math.nan
    rel = m_t / m_c - 1.0
    se = math.sqrt(v_t / m_c**2 + m_t**2 * v_c / m_c**4)
    return rel, rel - z * se, rel + z * se


def always_valid(diff: Any, var: Any, tau2: Any, alpha: float = 0.05) -> tuple[Any, Any, Any]:
    """mSPRT with a normal mixture: always-valid p-value and confidence interval for a
    difference of means ``diff`` with variance ``var`` (both may be arrays).

    ``Lambda = sqrt(V / (V + tau2)) exp(tau2 diff^2 / (2 V (V + tau2)))``, ``p = min(1, 1 /
    Lambda)``; the interval is ``diff +- sqrt(V (V + tau2) / tau2 * (2 log(1/alpha) +
    log((V + tau2) / V)))``.

    >>> p, lo, hi = always_valid(0.0, 1e-4, 1e-4)
    >>> p == 1.0 and lo < 0 < hi
    True
    """
    d = np.asarray(diff, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    t2 = np.asarray(tau2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a metric without variance
        log_lam = 0.5 * np.log(v / (v + t2)) + t2 * d * d / (2.0 * v * (v + t2))
        p = np.minimum(1.0, np.exp(-log_lam))
    p = np.where(np.isnan(p), 1.0, p)  # 0/0: no difference and no variance, no evidence
    half = np.sqrt(v * (v + t2) / t2 * (2.0 * math.log(1.0 / alpha) + np.log((v + t2) / v)))
    if p.ndim == 0:
        return float(p), float(d - half), float(d + half)
    return p, d - half, d + half


def proportion_test(
    x_c: int, n_c: int, x_t: int, n_t: int, *, alpha: float = 0.05, tau2: float | None = None
) -> dict[str, float]:
    """Two-proportion z test (two-sided), interval of the difference, and the always-valid
    counterparts; ``tau2`` defaults to ``(0.1 * pooled sd)^2``.

    >>> r = proportion_test(100, 1000, 130, 1000)
    >>> round(r["p_value"], 4)  # pooled z = 2.103
    0.0355
    """
    p_c, p_t = x_c / n_c, x_t / n_t
    pooled = (x_c + x_t) / (n_c + n_t)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    v_c, v_t = p_c * (1 - p_c) / n_c, p_t * (1 - p_t) / n_t
    diff = p_t - p_c
    z = diff / se0 if se0 > 0 else 0.0
    q = norm_ppf(1 - alpha / 2)
    se = math.sqrt(v_c + v_t)
    var = v_c + v_t if v_c + v_t > 0 else pooled * (1 - pooled) * (1 / n_c + 1 / n_t) or 1e-300
    t2 = (0.1 * math.sqrt(pooled * (1 - pooled))) ** 2 if tau2 is None else tau2
    sp, slo, shi = always_valid(diff, var, max(t2, 1e-300), alpha)
    rel, rlo, rhi = _rel_interval(p_c, v_c, p_t, v_t, q)
    return {
        "control_mean": p_c, "variant_mean": p_t, "abs_lift": diff, "abs_low": diff - q * se,
        "abs_high": diff + q * se, "rel_lift": rel, "rel_low": rlo, "rel_high": rhi, "statistic": z,
        "p_value": 2 * norm_sf(abs(z)), "seq_p_value": sp, "seq_low": slo, "seq_high": shi,
    }


def welch_test(
    m_c: float, s2_c: float, n_c: int, m_t: float, s2_t: float, n_t: int, *, alpha: float = 0.05,
    tau2: float | None = None,
) -> dict[str, float]:
    """Welch's t test (two-sided) for a difference of means with unequal variances
    (Welch-Satterthwaite degrees of freedom), its interval and the always-valid counterparts.

    >>> round(welch_test(1.0, 1.0, 50, 1.5, 2.0, 60)["p_value"], 4)  # scipy: 0.03264
    0.0326
    """
    v_c, v_t = s2_c / n_c, s2_t / n_t
    var = v_c + v_t
    diff = m_t - m_c
    if var <= 0:
        t, df, p = 0.0, math.inf, 1.0
    else:
        t = diff / math.sqrt(var)
        df = var**2 / (v_c**2 / (n_c - 1) + v_t**2 / (n_t - 1)) if n_c > 1 and n_t > 1 else math.inf
        p = 2 * t_sf(abs(t), df)
    q = t_ppf(1 - alpha / 2, df)
    half = q * math.sqrt(var)
    pooled_sd = math.sqrt(((n_c - 1) * s2_c + (n_t - 1) * s2_t) / max(n_c + n_t - 2, 1))
    t2 = (0.1 * pooled_sd) ** 2 if tau2 is None else tau2
    sp, slo, shi = always_valid(diff, max(var, 1e-300), max(t2, 1e-300), alpha)
    rel, rlo, rhi = _rel_interval(m_c, v_c, m_t, v_t, q)
    return {
        "control_mean": m_c, "variant_mean": m_t, "abs_lift": diff, "abs_low": diff - half,
        "abs_high": diff + half, "rel_lift": rel, "rel_low": rlo, "rel_high": rhi, "statistic": t,
        "p_value": p, "df": df, "seq_p_value": sp, "seq_low": slo, "seq_high": shi,
    }


def srm_test(observed: Sequence[int], weights: Sequence[float], *, threshold: float = 0.001) -> SRMResult:
    """Chi-square goodness of fit of the units per variant against the intended weights.

    >>> srm_test([52_000, 48_000], [0.5, 0.5]).flagged
    True
    """
    obs = np.asarray(observed, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if obs.shape != w.shape or obs.size < 1:
        raise ConfigError(f"expected one weight per variant, got {w.size} weights for {obs.size} variants")
    exp = w / w.sum() * obs.sum()
    chi2 = float(((obs - exp) ** 2 / np.where(exp > 0, exp, 1.0)).sum())
    p = chi2_sf(chi2, obs.size - 1) if obs.size > 1 and obs.sum() > 0 else 1.0
    return SRMResult(
        observed=[int(x) for x in obs], expected=[float(x) for x in exp], chi2=chi2, p_value=p,
        flagged=bool(p < threshold), threshold=threshold,
    )


def adjust_pvalues(p: Sequence[float], method: Literal["holm", "bh", "none"] = "holm") -> list[float]:
    """Holm step-down (family-wise error) or Benjamini-Hochberg step-up (false discovery rate)
    adjusted p-values, in the input order.

    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm")
    [0.03, 0.06, 0.06]
    >>> [round(x, 3) for x in adjust_pvalues([0.01, 0.04, 0.03], "bh")]
    [0.03, 0.04, 0.04]
    """
    ps = np.asarray(p, dtype=np.float64)
    m = ps.size
    if m == 0 or method == "none":
        return [float(x) for x in ps]
    order = np.argsort(ps, kind="stable")
    adj = np.empty(m)
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * ps[i]))
            adj[i] = running
    elif method == "bh":
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, ps[i] * m / (rank + 1))
            adj[i] = min(running, 1.0)
    else:
        raise ConfigError(f"expected `correction` in ['holm', 'bh', 'none'], got {method!r}")
    return [float(x) for x in adj]


def bayes_best(
    means_draws: np.ndarray, names: Sequence[str], metric: str
) -> list[BayesResult]:
    """Probability to be best and expected loss from posterior draws (draws x variants)."""
    best = means_draws.argmax(axis=1)
    top = means_draws.max(axis=1)
    return [
        BayesResult(metric=metric, variant=name, prob_best=float((best == k).mean()),
                    expected_loss=float((top - means_draws[:, k]).mean()))
        for k, name in enumerate(names)
    ]


def ipw_lift(
    arms: np.ndarray, rewards: np.ndarray, propensities: np.ndarray, treatment: int, control: int,
    *, names: Sequence[str] | None = None, alpha: float = 0.05,
) -> IPWLift:
    """Lift of ``treatment`` over ``control`` from bandit-collected data.

    Each logged decision chose ``arms[i]`` with probability ``propensities[i]``. The mean
    reward of always playing arm k is estimated by the self-normalised (Hajek) IPW estimator
    ``sum w_i r_i / sum w_i`` with ``w_i = 1[a_i = k] / p_i``, which is unbiased in the limit
    under the logging policy's randomisation even though a bandit shifted traffic towards the
    winner (the naive per-arm mean is not, when the reward drifts with the allocation). The
    interval uses the linearised (influence-function) variance, covariance included.

    >>> rng = np.random.default_rng(0)
    >>> p = np.where(rng.random(4000) < 0.5, 0.8, 0.2)
    >>> a = (rng.random(4000) < p).astype(int)
    >>> prop = np.where(a == 1, p, 1 - p)
    >>> r = (rng.random(4000) < np.where(a == 1, 0.3, 0.2)).astype(float)
    >>> abs(ipw_lift(a, r, prop, 1, 0).lift - 0.1) < 0.05
    True
    """
    a = np.asarray(arms)
    r = np.asarray(rewards, dtype=np.float64)
    p = np.asarray(propensities, dtype=np.float64)
    if not (a.shape == r.shape == p.shape) or a.ndim != 1:
        raise ConfigError(f"expected equal-length 1-d arrays, got {a.shape!r}, {r.shape!r}, {p.shape!r}")
    if a.size == 0 or not ((p > 0) & (p <= 1)).all():
        raise ConfigError("expected propensities in (0, 1] for every logged decision - at `propensities`")
    n = a.size

    def part(k: int) -> tuple[float, np.ndarray, float]:
        w = (a == k) / p
        sw = w.sum()
        if sw <= 0:
            raise ConfigError(f"expected decisions for arm {k}, got none - at `arms`")
        mu = float((w * r).sum() / sw)
        psi = w * (r - mu) / (sw / n)
        ess = float(sw**2 / (w * w).sum())  # a float: a numpy scalar in a result broke JSON encoding
        return mu, psi, ess

    mu_t, psi_t, ess_t = part(treatment)
    mu_c, psi_c, ess_c = part(control)
    se = math.sqrt(float(((psi_t - psi_c) ** 2).sum())) / n
    q = norm_ppf(1 - alpha / 2)
    lift = mu_t - mu_c
    z = lift / se if se > 0 else 0.0
    nm = names if names is not None else [str(i) for i in range(int(a.max()) + 1)]
    return IPWLift(
        variant=str(nm[treatment]), control=str(nm[control]), variant_mean=mu_t, control_mean=mu_c,
        lift=lift, low=lift - q * se, high=lift + q * se, p_value=2 * norm_sf(abs(z)),
        effective_n=min(ess_t, ess_c),
    )
