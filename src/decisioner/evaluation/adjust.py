"""Metrics beyond a plain mean per unit: CUPED variance reduction with a pre-period covariate,
ratio metrics by the delta method, and winsorised (capped) values.

CUPED
-----
Deng, Xu, Kohavi and Walker (2013), "Improving the sensitivity of online controlled experiments
by utilizing pre-experiment data". Each unit ``i`` has an outcome ``Y_i`` and a covariate
``X_i`` measured before the experiment could change it. With
``theta = cov(Y, X) / var(X)`` over the units of every variant pooled (sample covariance and
variance, ``ddof = 1``), the adjusted outcome ``Y_i - theta (X_i - mean(X))`` has the same
expected difference between variants (``X`` does not depend on the assignment) and variance
``(1 - rho^2) var(Y)``. Each variant's adjusted mean is
``mean_k(Y) - theta (mean_k(X) - mean(X))``; the lift and its interval are Welch's t on the
adjusted outcomes (``theta`` taken as known, as is standard: its estimation error is of order
``1 / n``).

Ratio metrics (delta method)
----------------------------
A ratio of sums over units whose denominator is not the unit count: revenue per visit, clicks
per exposure, with the person as the unit of randomisation. Variant ``k``'s ratio is
``R = sum N_i / sum D_i``; visits of one person are correlated, so the variance comes from the
first-order (delta-method) expansion over units, ``var(R) = var(N - R D) / (n mean(D)^2)``
(Deng, Knoblich and Lu 2018, "Applying the delta method in metric analytics"), with sample
variances (``ddof = 1``). Two variants are independent: the difference has the sum of the
variances; the interval is normal.

Winsorising
-----------
Heavy-tailed values (revenue) are capped at the ``percentile`` of the positive per-unit values
of every variant pooled (the cap depends neither on the variant nor on how many units have no
value), then compared like any value metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..schemas import Result
from .inference import norm_ppf, norm_sf, welch_test

__all__ = ["CupedComparison", "RatioComparison", "cuped_theta", "cuped", "ratio_stats", "ratio_comparison",
           "winsorize_cap"]


class CupedComparison(Result, frozen=True):
    """One treatment against the control, CUPED-adjusted.

    ``theta`` and ``rho`` (correlation of outcome and covariate, pooled) are the report's;
    ``variance_reduction`` is ``1 - var(adjusted) / var(raw)`` of the difference of means;
    ``raw_low``/``raw_high`` are the unadjusted interval beside the adjusted one.
    """

    metric: str
    variant: str
    control: str
    covariate: str
    theta: float
    rho: float
    control_mean: float
    variant_mean: float
    abs_lift: float
    abs_low: float
    abs_high: float
    rel_lift: float | None
    rel_low: float | None
    rel_high: float | None
    p_value: float
    raw_low: float
    raw_high: float
    variance_reduction: float


class RatioComparison(Result, frozen=True):
    """A ratio metric (sum of numerators over sum of denominators, per variant) of one treatment
    against the control, with delta-method standard errors and a normal interval."""

    metric: str
    variant: str
    control: str
    control_ratio: float
    variant_ratio: float
    control_se: float
    variant_se: float
    abs_lift: float
    abs_low: float
    abs_high: float
    rel_lift: float | None
    rel_low: float | None
    rel_high: float | None
    p_value: float


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _arrays(*xs: Any) -> list[np.ndarray]:
    out = [np.asarray(x, dtype=np.float64) for x in xs]
    if any(a.ndim != 1 or a.shape != out[0].shape for a in out):
        raise ConfigError(f"expected equal-length 1-d arrays, got shapes {[a.shape for a in out]!r}")
    if not all(np.isfinite(a).all() for a in out):
        raise ConfigError("expected finite values, got NaN or infinity - at the per-unit arrays")
    return out


def cuped_theta(y: Any, x: Any) -> tuple[float, float]:
    """``theta = cov(Y, X) / var(X)`` and the correlation ``rho``, over all units pooled
    (0 and 0 when ``X`` or ``Y`` is constant).

    >>> cuped_theta([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    (0.5, 1.0)
    """
    ya, xa = _arrays(y, x)
    if ya.shape[0] < 2:
        return 0.0, 0.0
    xc, yc = xa - xa.mean(), ya - ya.mean()
    sxx, syy, sxy = float(xc @ xc), float(yc @ yc), float(xc @ yc)
    if sxx <= 0.0:
        return 0.0, 0.0
    rho = sxy / math.sqrt(sxx * syy) if syy > 0.0 else 0.0
    return sxy / sxx, rho


def cuped(
    variant: Any, y: Any, x: Any, names: Sequence[str], control: int, *, alpha: float = 0.05,
    metric: str = "value", covariate: str = "pre_period",
) -> list[CupedComparison]:
    """Every treatment against ``control``, CUPED-adjusted (see the module docstring).

    Parameters
    ----------
    variant
        Variant index of each unit.
    y
        Outcome of each unit.
    x
        Pre-period covariate of each unit (0 for units without pre-period data).
    names
        Variant names (index order).
    control
        Index of the control.
    alpha
        ``1 - alpha`` intervals and the test's level.
    metric
        Name of the outcome in the result.
    covariate
        Name of the covariate in the result.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(10, 2, 4000); v = rng.integers(0, 2, 4000)
    >>> y = x + 0.3 * v + rng.normal(0, 1, 4000)
    >>> c = cuped(v, y, x, ["a", "b"], 0)[0]
    >>> round(c.theta, 1), c.abs_low < 0.3 < c.abs_high, c.variance_reduction > 0.7
    (1.0, True, True)
    """
    var_ = np.asarray(variant, dtype=np.int64)
    ya, xa = _arrays(y, x)
    if var_.shape != ya.shape:
        raise ConfigError(f"expected one variant per unit, got {var_.shape!r} for {ya.shape!r}")
    theta, rho = cuped_theta(ya, xa)
    adj = ya - theta * (xa - (xa.mean() if xa.size else 0.0))
    out = []
    mc = var_ == control
    for t, name in enumerate(names):
        mt = var_ == t
        if t == control or mt.sum() < 2 or mc.sum() < 2:
            continue
        a_c, a_t = adj[mc], adj[mt]
        r = welch_test(float(a_c.mean()), float(a_c.var(ddof=1)), int(a_c.size), float(a_t.mean()),
                       float(a_t.var(ddof=1)), int(a_t.size), alpha=alpha)
        raw = welch_test(float(ya[mc].mean()), float(ya[mc].var(ddof=1)), int(mc.sum()), float(ya[mt].mean()),
                         float(ya[mt].var(ddof=1)), int(mt.sum()), alpha=alpha)
        v_adj = a_c.var(ddof=1) / a_c.size + a_t.var(ddof=1) / a_t.size
        v_raw = ya[mc].var(ddof=1) / mc.sum() + ya[mt].var(ddof=1) / mt.sum()
        out.append(CupedComparison(
            metric=metric, variant=name, control=names[control], covariate=covariate, theta=theta, rho=rho,
            control_mean=r["control_mean"], variant_mean=r["variant_mean"], abs_lift=r["abs_lift"],
            abs_low=r["abs_low"], abs_high=r["abs_high"], rel_lift=_finite(r["rel_lift"]),
            rel_low=_finite(r["rel_low"]), rel_high=_finite(r["rel_high"]), p_value=r["p_value"],
            raw_low=raw["abs_low"], raw_high=raw["abs_high"],
            variance_reduction=float(1.0 - v_adj / v_raw) if v_raw > 0 else 0.0,
        ))
    return out


def ratio_stats(num: Any, den: Any) -> tuple[float, float]:
    """Ratio ``sum(num) / sum(den)`` over units and its delta-method standard error.

    >>> r, se = ratio_stats([1.0, 0.0, 2.0, 1.0], [2.0, 1.0, 3.0, 2.0])
    >>> r, round(se, 6)
    (0.5, 0.102062)
    """
    n_, d_ = _arrays(num, den)
    n = n_.shape[0]
    sd = float(d_.sum())
    if n < 2 or sd <= 0.0:
        return (float(n_.sum()) / sd if sd > 0 else math.nan), math.nan
    r = float(n_.sum()) / sd
    resid = n_ - r * d_
    var = float(resid.var(ddof=1)) / (n * (sd / n) ** 2)
    return r, math.sqrt(var)


def ratio_comparison(
    variant: Any, num: Any, den: Any, names: Sequence[str], control: int, *, metric: str, alpha: float = 0.05,
) -> list[RatioComparison]:
    """Every treatment against ``control`` on the ratio metric ``sum(num) / sum(den)``, with
    delta-method standard errors (see the module docstring)."""
    var_ = np.asarray(variant, dtype=np.int64)
    n_, d_ = _arrays(num, den)
    if var_.shape != n_.shape:
        raise ConfigError(f"expected one variant per unit, got {var_.shape!r} for {n_.shape!r}")
    q = norm_ppf(1 - alpha / 2)
    mc = var_ == control
    rc, sc = ratio_stats(n_[mc], d_[mc])
    out = []
    for t, name in enumerate(names):
        mt = var_ == t
        if t == control or mt.sum() < 2 or mc.sum() < 2:
            continue
        rt, st = ratio_stats(n_[mt], d_[mt])
        diff = rt - rc
        se = math.sqrt(sc * sc + st * st)
        z = diff / se if se > 0 else 0.0
        rel = rlo = rhi = None
        if rc > 0 and math.isfinite(se):
            rel = rt / rc - 1.0
            rse = math.sqrt(st * st / rc**2 + rt**2 * sc * sc / rc**4)
            rlo, rhi = rel - q * rse, rel + q * rse
        out.append(RatioComparison(
            metric=metric, variant=name, control=names[control], control_ratio=rc, variant_ratio=rt,
            control_se=sc, variant_se=st, abs_lift=diff, abs_low=diff - q * se, abs_high=diff + q * se,
            rel_lift=rel, rel_low=rlo, rel_high=rhi, p_value=2 * norm_sf(abs(z)) if se > 0 else 1.0,
        ))
    return out


def winsorize_cap(value: Any, percentile: float) -> float:
    """The cap of winsorising: the ``percentile`` (in (0, 100]) of the positive values, pooled
    (``inf`` when no value is positive).

    >>> winsorize_cap([0.0, 1.0, 2.0, 3.0, 100.0], 75)
    27.25
    """
    if not 0.0 < percentile <= 100.0:
        raise ConfigError(f"expected `winsorize` percentile in (0, 100], got {percentile!r}")
    (v,) = _arrays(value)
    pos = v[v > 0]
    return float(np.percentile(pos, percentile)) if pos.size else math.inf
