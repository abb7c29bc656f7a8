"""Experiment reports: per-variant summaries, lifts with confidence intervals, fixed-horizon and
always-valid sequential tests, Bayesian probability to be best, a sample-ratio-mismatch check,
multiple-testing corrections and inverse-propensity-weighted lift for bandit-collected data.

The unit of analysis is the unit of assignment (a profile): each unit contributes its variant,
whether it converted (any positive outcome) and its total value. Two metrics are reported:
``conversion`` (share of units that converted) and ``value`` (value per unit).

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
import numpy as np

from ..errors import ConfigError
from .stats import chi2_sf, norm_ppf, norm_sf, t_ppf, t_sf

__all__ = [
    "VariantSummary",
    "Comparison",
    "BayesResult",
    "SRMResult",
    "IPWLift",
    "ExperimentReport",
    "summarize",
    "proportion_test",
    "welch_test",
    "always_valid",
    "srm_test",
    "adjust_pvalues",
    "bayes_best",
    "ipw_lift",
    "experiment_report",
    "units_from_records",
    "engine_report",
    "placement_ipw_lift",
]


class VariantSummary(msgspec.Struct, frozen=True):
    """Per-variant counts: units exposed, units converted, conversion rate, total value, value
    per unit and its standard deviation."""

    name: str
    units: int
    conversions: int
    rate: float
    value: float
    value_per_unit: float
    value_sd: float


class Comparison(msgspec.Struct, frozen=True):
    """One treatment against the control on one metric.

    ``abs_*``: difference of means and its interval; ``rel_*``: relative lift
    ``treatment / control - 1`` and its delta-method interval; ``p_value`` and ``statistic`` of
    the fixed-horizon test, ``p_adjusted`` after the multiple-testing correction; ``seq_*``:
    the always-valid (mSPRT) p-value and confidence interval.
    """

    metric: str
    variant: str
    control: str
    control_mean: float
    variant_mean: float
    abs_lift: float
    abs_low: float
    abs_high: float
    rel_lift: float
    rel_low: float
    rel_high: float
    test: str
    statistic: float
    p_value: float
    p_adjusted: float
    significant: bool
    seq_p_value: float
    seq_low: float
    seq_high: float


class BayesResult(msgspec.Struct, frozen=True):
    """Probability that the variant is best on the metric, and its expected loss."""

    metric: str
    variant: str
    prob_best: float
    expected_loss: float


class SRMResult(msgspec.Struct, frozen=True):
    """Sample-ratio-mismatch check: observed and expected units, chi-square and p-value."""

    observed: list[int]
    expected: list[float]
    chi2: float
    p_value: float
    flagged: bool
    threshold: float


class IPWLift(msgspec.Struct, frozen=True):
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


class ExperimentReport(msgspec.Struct, frozen=True):
    """Everything ``experiment_report`` computes, ready to encode as JSON."""

    experiment: str
    control: str
    alpha: float
    correction: str
    variants: list[VariantSummary]
    comparisons: list[Comparison]
    bayes: list[BayesResult]
    srm: SRMResult
    ipw: list[IPWLift] = []


# --------------------------------------------------------------------------- building blocks


def summarize(variant: np.ndarray, converted: np.ndarray, value: np.ndarray, names: Sequence[str]) -> list[VariantSummary]:
    """Per-variant summaries from per-unit arrays (variant index, converted 0/1, value).

    >>> summarize(np.array([0, 0, 1]), np.array([1, 0, 1]), np.array([5.0, 0.0, 2.0]), ["a", "b"])[0].rate
    0.5
    """
    out = []
    for k, name in enumerate(names):
        m = variant == k
        n = int(m.sum())
        v = value[m]
        out.append(VariantSummary(
            name=name, units=n, conversions=int(converted[m].sum()),
            rate=float(converted[m].mean()) if n else 0.0, value=float(v.sum()),
            value_per_unit=float(v.mean()) if n else 0.0,
            value_sd=float(v.std(ddof=1)) if n > 1 else 0.0,
        ))
    return out


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
    log_lam = 0.5 * np.log(v / (v + t2)) + t2 * d * d / (2.0 * v * (v + t2))
    p = np.minimum(1.0, np.exp(-log_lam))
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
        ess = sw**2 / float((w * w).sum())
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


# --------------------------------------------------------------------------- the report


def experiment_report(
    variant: Any, converted: Any, value: Any, names: Sequence[str], *, experiment: str = "experiment",
    control: int | str = 0, weights: Sequence[float] | None = None, alpha: float = 0.05,
    correction: Literal["holm", "bh", "none"] = "holm", tau: float | None = None,
    srm_threshold: float = 0.001, draws: int = 100_000, seed: int = 0,
    logged: tuple[Any, Any, Any] | None = None,
) -> ExperimentReport:
    """The full report of an experiment from per-unit arrays.

    Parameters
    ----------
    variant
        Variant index of each unit (int array).
    converted
        Whether each unit converted (0/1).
    value
        Value of each unit (e.g. revenue).
    names
        Variant names (index order).
    experiment
        Name shown in the report.
    control
        The control variant (index or name).
    weights
        Intended traffic weights (default: equal) for the sample-ratio check.
    alpha
        Significance level of every test and (1 - alpha) intervals.
    correction
        Multiple-testing correction across the treatment-vs-control p-values.
    tau
        Mixture standard deviation of the always-valid test, in the metric's units; default
        0.1 pooled standard deviations of the metric.
    srm_threshold
        p-value below which a sample ratio mismatch is flagged.
    draws
        Monte Carlo draws of the Bayesian summaries.
    seed
        Seed of those draws.
    logged
        Optional per-decision ``(arm, reward, propensity)`` arrays of bandit-collected data:
        adds the IPW lift of each treatment over the control.

    Returns
    -------
    ExperimentReport

    Raises
    ------
    ConfigError
        On mismatched arrays or an unknown control.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> v = rng.integers(0, 2, 4000)
    >>> conv = (rng.random(4000) < np.where(v == 1, 0.12, 0.10)).astype(int)
    >>> rep = experiment_report(v, conv, conv * 20.0, ["control", "treatment"], seed=1)
    >>> [c.metric for c in rep.comparisons], rep.srm.flagged
    (['conversion', 'value'], False)
    """
    var_ = np.asarray(variant, dtype=np.int64)
    conv = np.asarray(converted, dtype=np.float64)
    val = np.asarray(value, dtype=np.float64)
    if not (var_.shape == conv.shape == val.shape) or var_.ndim != 1:
        raise ConfigError(f"expected equal-length 1-d arrays, got {var_.shape!r}, {conv.shape!r}, {val.shape!r}")
    k = len(names)
    if k < 1 or (var_.size and (var_.min() < 0 or var_.max() >= k)):
        raise ConfigError(f"expected variant indices in [0, {k}) - at `variant`")
    c = names.index(control) if isinstance(control, str) and control in names else control
    if not isinstance(c, (int, np.integer)) or not 0 <= c < k:
        raise ConfigError(f"expected `control` to be one of {list(names)!r}, got {control!r}")
    c = int(c)
    summaries = summarize(var_, conv, val, names)
    sc = summaries[c]
    comps: list[dict[str, Any]] = []
    for metric in ("conversion", "value"):
        for t in range(k):
            if t == c:
                continue
            st = summaries[t]
            if sc.units == 0 or st.units == 0:
                continue
            if metric == "conversion":
                t2 = None if tau is None else tau**2
                r = proportion_test(sc.conversions, sc.units, st.conversions, st.units, alpha=alpha, tau2=t2)
                test = "z"
            else:
                t2 = None if tau is None else tau**2
                r = welch_test(sc.value_per_unit, sc.value_sd**2, sc.units, st.value_per_unit,
                               st.value_sd**2, st.units, alpha=alpha, tau2=t2)
                test = "welch_t"
            comps.append({"metric": metric, "variant": st.name, "control": sc.name, "test": test, **r})
    for metric in ("conversion", "value"):
        idx = [i for i, x in enumerate(comps) if x["metric"] == metric]
        adj = adjust_pvalues([comps[i]["p_value"] for i in idx], correction)
        for i, pa in zip(idx, adj):
            comps[i]["p_adjusted"] = pa
            comps[i]["significant"] = bool(pa < alpha)
    fields = set(Comparison.__struct_fields__)
    comparisons = [Comparison(**{f: x[f] for f in fields}) for x in comps]
    # Bayesian summaries
    g = np.random.default_rng(seed)
    succ = np.array([s.conversions for s in summaries], dtype=np.float64)
    units = np.array([s.units for s in summaries], dtype=np.float64)
    theta = g.beta(1.0 + succ, 1.0 + units - succ, size=(draws, k))
    bayes = bayes_best(theta, names, "conversion")
    mean = np.array([s.value_per_unit for s in summaries])
    se = np.array([s.value_sd / math.sqrt(s.units) if s.units > 1 else 0.0 for s in summaries])
    bayes += bayes_best(mean + se * g.standard_normal((draws, k)), names, "value")
    w = [1.0] * k if weights is None else list(weights)
    srm = srm_test([s.units for s in summaries], w, threshold=srm_threshold)
    ipw: list[IPWLift] = []
    if logged is not None:
        la, lr, lp = (np.asarray(x) for x in logged)
        for t in range(k):
            if t != c and (la == t).any() and (la == c).any():
                ipw.append(ipw_lift(la, lr, lp, t, c, names=names, alpha=alpha))
    return ExperimentReport(
        experiment=experiment, control=names[c], alpha=alpha, correction=correction,
        variants=summaries, comparisons=comparisons, bayes=bayes, srm=srm, ipw=ipw,
    )


def units_from_records(records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """Per-unit arrays from decision or exposure records.

    Each record has ``variant`` (name or index) and optionally ``unit`` (or ``profile``),
    ``reward`` (or ``value``) and ``propensity``. Records of one unit are summed (the unit's
    variant is its first record's); without a unit column every record is a unit. Records with
    propensities also come back as logged ``(arm, reward, propensity)`` arrays.
    """
    if not records:
        raise ConfigError("expected at least one record, got none")
    names: list[str] = []
    index: dict[str, int] = {}
    per_unit: dict[Any, list[float]] = {}
    arms: list[int] = []
    rewards: list[float] = []
    props: list[float] = []
    for i, rec in enumerate(records):
        if "variant" not in rec:
            raise ConfigError(f"expected a `variant` in every record, got none - at record {i}")
        name = str(rec["variant"])
        if name not in index:
            index[name] = len(names)
            names.append(name)
        v = index[name]
        reward = float(rec.get("reward", rec.get("value", 0.0)) or 0.0)
        unit = rec.get("unit", rec.get("person", rec.get("profile", i)))
        entry = per_unit.setdefault(unit, [v, 0.0])
        entry[1] += reward
        if rec.get("propensity") is not None:
            arms.append(v)
            rewards.append(reward)
            props.append(float(rec["propensity"]))
    variant = np.array([e[0] for e in per_unit.values()], dtype=np.int64)
    value = np.array([e[1] for e in per_unit.values()], dtype=np.float64)
    logged = None
    if props and len(props) == len(records):
        logged = (np.array(arms), np.array(rewards), np.array(props))
    return variant, (value > 0).astype(np.int64), value, names, logged


def engine_report(engine: Any, experiment: str, **kwargs: Any) -> ExperimentReport:
    """The report of one of an engine's experiments, from its decision log.

    A unit is a person exposed to the experiment, counted by stable person id (merged people
    count once, as the person they were merged into; variant assignment is sticky, so each has
    one variant); its value is the summed reward of its decisions in the experiment. Variant
    weights and the control come from the experiment's spec unless given.
    """
    names_cfg = [e.name for e in engine.config.experiments]
    if experiment not in names_cfg:
        raise ConfigError(f"expected an experiment in {names_cfg!r}, got {experiment!r} - at `experiment`")
    e_i = names_cfg.index(experiment)
    spec = engine.config.experiments[e_i]
    log = engine.decision_log
    m = (log.column("experiment") == e_i) & (log.column("slot") == 0) & (log.column("variant") >= 0)
    prof = engine.people.canonical_many(log.column("person")[m])
    var = log.column("variant")[m].astype(np.int64)
    rew = log.column("reward")[m]
    units: dict[int, list[float]] = {}
    for p_, v_, r_ in zip(prof.tolist(), var.tolist(), rew.tolist()):
        e = units.setdefault(p_, [v_, 0.0])
        e[1] += r_
    variant = np.array([e[0] for e in units.values()], dtype=np.int64)
    value = np.array([e[1] for e in units.values()], dtype=np.float64)
    names = [v.name for v in spec.variants]
    kwargs.setdefault("weights", [v.weight for v in spec.variants])
    kwargs.setdefault("control", spec.control_)
    return experiment_report(variant, (value > 0).astype(np.int64), value, names, experiment=experiment, **kwargs)


def placement_ipw_lift(engine: Any, placement: str, treatment: str, control: str, *, alpha: float = 0.05) -> IPWLift:
    """IPW lift between two experiences of a campaign placement from the engine's own
    bandit-collected decisions (first slot, logged propensities)."""
    pl = engine.placement(placement)
    if treatment not in pl.contents or control not in pl.contents:
        raise ConfigError(f"expected experiences in {pl.contents!r}, got {treatment!r} and {control!r}")
    log = engine.decision_log
    m = (log.column("placement") == pl.index) & (log.column("slot") == 0)
    return ipw_lift(
        log.column("content")[m], log.column("reward")[m], log.column("propensity")[m],
        pl.contents.index(treatment), pl.contents.index(control), names=pl.contents, alpha=alpha,
    )
