"""Experiment reports: per-variant summaries and every treatment against the control, built
from per-unit arrays or from decision and exposure records, with the statistics of
:mod:`.inference` (lifts with confidence intervals, fixed-horizon and always-valid tests,
multiple-testing corrections, probability to be best, sample-ratio check, IPW lift).

The unit of analysis is the unit of assignment (a profile): each unit contributes its variant,
whether it converted (any positive outcome) and its total value. Two metrics are reported:
``conversion`` (share of units that converted) and ``value`` (value per unit). Optionally
(:mod:`.adjust`): ``value`` CUPED-adjusted by a pre-period covariate, ``value`` winsorised at a
percentile, and ratio metrics (a numerator and a denominator per unit, e.g. value per decision)
by the delta method.

Reports over an engine's own decision log are in :mod:`.engine_log`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError
from ..schemas import Result
from .adjust import CupedComparison, RatioComparison, cuped, ratio_comparison, winsorize_cap
from .inference import (
    BayesResult,
    IPWLift,
    SRMResult,
    adjust_pvalues,
    bayes_best,
    ipw_lift,
    proportion_test,
    srm_test,
    welch_test,
)

__all__ = [
    "VariantSummary",
    "Comparison",
    "ExperimentReport",
    "summarize",
    "experiment_report",
    "units_from_records",
]


class VariantSummary(Result, frozen=True):
    """Per-variant counts: units exposed, units converted, conversion rate, total value, value
    per unit and its standard deviation."""

    name: str
    units: int
    conversions: int
    rate: float
    value: float
    value_per_unit: float
    value_sd: float


class Comparison(Result, frozen=True):
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


class ExperimentReport(Result, frozen=True):
    """Everything ``experiment_report`` computes, ready to encode as JSON."""

    experiment: str
    control: str
    alpha: float
    correction: str
    variants: list[VariantSummary]
    comparisons: list[Comparison]
    bayes: list[BayesResult]
    srm: SRMResult
    ipw: list[IPWLift] = []  # noqa: RUF012 (a msgspec Struct: defaults are copied)
    cuped: list[CupedComparison] = []  # noqa: RUF012
    ratios: list[RatioComparison] = []  # noqa: RUF012
    winsorized: list[Comparison] = []  # noqa: RUF012
    #: the cap of ``winsorized`` (``None`` without winsorising) and its percentile
    winsor_cap: float | None = None
    winsor_percentile: float | None = None
    units_capped: int = 0


# --------------------------------------------------------------------------- summaries


def summarize(
    variant: np.ndarray, converted: np.ndarray, value: np.ndarray, names: Sequence[str]
) -> list[VariantSummary]:
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


# --------------------------------------------------------------------------- the report


def experiment_report(
    variant: Any, converted: Any, value: Any, names: Sequence[str], *, experiment: str = "experiment",
    control: int | str = 0, weights: Sequence[float] | None = None, alpha: float = 0.05,
    correction: Literal["holm", "bh", "none"] = "holm", tau: float | None = None,
    srm_threshold: float = 0.001, draws: int = 100_000, seed: int = 0,
    logged: tuple[Any, Any, Any] | None = None, covariate: Any = None, covariate_name: str = "pre_period",
    winsorize: float | None = None, ratios: dict[str, tuple[Any, Any]] | None = None,
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
    covariate
        Optional pre-period covariate of each unit: adds ``conversion`` and ``value``
        CUPED-adjusted by it.
    covariate_name
        Name of the covariate in the report.
    winsorize
        Optional percentile in (0, 100]: adds ``value`` capped at that percentile of the
        positive values (pooled).
    ratios
        Optional ratio metrics ``{name: (numerator, denominator)}`` of per-unit arrays, e.g.
        ``{"value_per_decision": (value, decisions)}``, by the delta method.

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
    cov = None
    if covariate is not None:
        cov = np.asarray(covariate, dtype=np.float64)
        if cov.shape != val.shape:
            raise ConfigError(f"expected one covariate value per unit, got {cov.shape!r} for {val.shape!r}")
    cap = None if winsorize is None else winsorize_cap(val, winsorize)
    summaries = summarize(var_, conv, val, names)
    sc = summaries[c]
    comps: list[dict[str, Any]] = []
    comps_w = _value_comparisons(var_, np.minimum(val, cap), names, c, alpha, tau, "value_winsorized") \
        if cap is not None else []
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
    for group in (comps, comps_w):
        for metric in ("conversion", "value", "value_winsorized"):
            idx = [i for i, x in enumerate(group) if x["metric"] == metric]
            adj = adjust_pvalues([group[i]["p_value"] for i in idx], correction)
            for i, pa in zip(idx, adj):
                group[i]["p_adjusted"] = pa
                group[i]["significant"] = bool(pa < alpha)
    fields = set(Comparison.__struct_fields__)
    comparisons = [Comparison(**{f: x[f] for f in fields}) for x in comps]
    winsorized = [Comparison(**{f: x[f] for f in fields}) for x in comps_w]
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
    cup: list[CupedComparison] = []
    if cov is not None:
        for metric, y in (("conversion", conv), ("value", val)):
            cup += cuped(var_, y, cov, names, c, alpha=alpha, metric=metric, covariate=covariate_name)
    rat: list[RatioComparison] = []
    for name, (num, den) in (ratios or {}).items():
        rat += ratio_comparison(var_, num, den, names, c, metric=name, alpha=alpha)
    return ExperimentReport(
        experiment=experiment, control=names[c], alpha=alpha, correction=correction,
        variants=summaries, comparisons=comparisons, bayes=bayes, srm=srm, ipw=ipw, cuped=cup, ratios=rat,
        winsorized=winsorized, winsor_cap=cap if cap is None or math.isfinite(cap) else None,
        winsor_percentile=winsorize, units_capped=0 if cap is None else int((val > cap).sum()),
    )


def _value_comparisons(
    var_: np.ndarray, val: np.ndarray, names: Sequence[str], c: int, alpha: float, tau: float | None, metric: str,
) -> list[dict[str, Any]]:
    """Welch's t of each treatment's per-unit ``val`` against the control's."""
    out: list[dict[str, Any]] = []
    mc = var_ == c
    for t, name in enumerate(names):
        mt = var_ == t
        if t == c or not mc.any() or not mt.any():
            continue
        vc, vt = val[mc], val[mt]
        r = welch_test(float(vc.mean()), float(vc.var(ddof=1)) if vc.size > 1 else 0.0, int(vc.size),
                       float(vt.mean()), float(vt.var(ddof=1)) if vt.size > 1 else 0.0, int(vt.size), alpha=alpha,
                       tau2=None if tau is None else tau**2)
        out.append({"metric": metric, "variant": name, "control": names[c], "test": "welch_t", **r})
    return out


def units_from_records(
    records: Sequence[dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
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
