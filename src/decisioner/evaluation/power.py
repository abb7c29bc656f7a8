"""Planning an experiment: power, sample size and minimum detectable effect of a two-sided
two-sample test, for a proportion (conversion) or a mean (value per unit).

The test is the normal (z) test of a difference between two independent groups of ``n1`` and
``n2 = ratio * n1`` units at level ``alpha``, two-sided. With a standardised effect ``d`` and
``n_eff = 1 / (1 / n1 + 1 / n2)``, its power is both tails:
``P = Phi(d sqrt(n_eff) - z) + Phi(-d sqrt(n_eff) - z)``, ``z = Phi^-1(1 - alpha / 2)``
(the formula of ``statsmodels.stats.power.NormalIndPower``, against which the tests check it).

* Means: ``d = mde / sd``, with ``sd`` the metric's standard deviation per unit.
* Proportions: Cohen's ``h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1))`` with ``p2 = p1 + mde``, the
  variance-stabilising transform (``statsmodels.stats.proportion.proportion_effectsize``).

Sample size and the minimum detectable effect invert the power exactly (Newton steps from the
one-tail closed form, then bisection to machine precision), so plugging them back gives the
requested power.
"""

from __future__ import annotations

import math
from typing import Literal

from ..errors import ConfigError
from ..schemas import Result
from .inference import norm_cdf, norm_ppf, norm_sf

__all__ = ["Plan", "power", "sample_size", "detectable_effect", "plan"]


class Plan(Result, frozen=True):
    """An experiment plan: per-group sizes, the effect, power and level (two-sided).

    ``mde`` is absolute (rate points for a proportion, metric units for a mean) and
    ``relative_mde`` is it over the baseline (``None`` without a baseline mean).
    """

    metric: Literal["proportion", "mean"]
    alpha: float
    power: float
    n1: float
    n2: float
    ratio: float
    baseline: float | None
    sd: float
    mde: float
    relative_mde: float | None
    effect_size: float


def _check(alpha: float, ratio: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"expected `alpha` in (0, 1), got {alpha!r}")
    if not (ratio > 0.0 and math.isfinite(ratio)):
        raise ConfigError(f"expected `ratio` > 0, got {ratio!r}")


def power(effect_size: float, n1: float, *, alpha: float = 0.05, ratio: float = 1.0) -> float:
    """Power of the two-sided test for a standardised effect with ``n1`` and ``ratio * n1``
    units.

    >>> round(power(0.2, 392.443, alpha=0.05), 4)
    0.8
    """
    _check(alpha, ratio)
    if not n1 > 0:
        raise ConfigError(f"expected `n1` > 0, got {n1!r}")
    z = norm_ppf(1.0 - alpha / 2.0)
    s = abs(effect_size) * math.sqrt(1.0 / (1.0 / n1 + 1.0 / (ratio * n1)))
    return norm_sf(z - s) + norm_cdf(-z - s)


def _solve(f_of: float, target: float, guess: float) -> float:
    """The ``s`` > 0 with two-tail power ``target`` at critical value ``f_of``: Newton from
    ``guess``, then bisection to the last bit."""
    def p(s: float) -> float:
        return norm_sf(f_of - s) + norm_cdf(-f_of - s)

    lo, hi = 0.0, max(guess, 1e-3)
    while p(hi) < target:
        hi *= 2.0
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if p(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _s_needed(alpha: float, pw: float) -> float:
    if not 0.0 < pw < 1.0:
        raise ConfigError(f"expected `power` in (0, 1), got {pw!r}")
    z = norm_ppf(1.0 - alpha / 2.0)
    if pw <= alpha:
        raise ConfigError(f"expected `power` > `alpha` ({alpha!r}), got {pw!r}")
    return _solve(z, pw, z + norm_ppf(pw))


def sample_size(effect_size: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> float:
    """Units of the first group (``n1``; the second has ``ratio * n1``) that detect a
    standardised effect with the given power (not rounded up).

    >>> round(sample_size(0.2), 2)
    392.44
    """
    _check(alpha, ratio)
    if not (effect_size != 0.0 and math.isfinite(effect_size)):
        raise ConfigError(f"expected a non-zero finite effect size, got {effect_size!r}")
    s = _s_needed(alpha, power)
    # s = d sqrt(n1 r / (1 + r))  =>  n1 = s^2 (1 + r) / (r d^2)
    return s * s * (1.0 + ratio) / (ratio * effect_size * effect_size)


def detectable_effect(n1: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> float:
    """The smallest standardised effect detected with the given power by ``n1`` and
    ``ratio * n1`` units.

    >>> round(detectable_effect(392.44), 4)
    0.2
    """
    _check(alpha, ratio)
    if not n1 > 0:
        raise ConfigError(f"expected `n1` > 0, got {n1!r}")
    return _s_needed(alpha, power) / math.sqrt(n1 * ratio / (1.0 + ratio))


def _h(p1: float, p2: float) -> float:
    return 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1))


def plan(
    *, baseline_rate: float | None = None, baseline_mean: float | None = None, sd: float | None = None,
    mde: float | None = None, n1: float | None = None, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
) -> Plan:
    """Sample size for an ``mde``, or the minimum detectable effect of ``n1`` units, for a
    proportion (``baseline_rate``) or a mean (``sd``, optional ``baseline_mean``).

    Raises
    ------
    ConfigError
        Unless exactly one of ``mde`` and ``n1`` is given, and a proportion's rate is in (0, 1)
        (and ``baseline_rate + mde`` too) or a mean's ``sd`` is positive.

    Examples
    --------
    >>> p = plan(baseline_rate=0.10, mde=0.01)
    >>> round(p.n1), round(p.mde, 4)
    (14744, 0.01)
    >>> round(plan(baseline_rate=0.10, n1=14745).mde, 4)
    0.01
    """
    _check(alpha, ratio)
    if (mde is None) == (n1 is None):
        raise ConfigError("expected exactly one of `mde` (gives the sample size) and `n1` (gives the mde), got "
                          f"{'both' if mde is not None else 'neither'}")
    if baseline_rate is not None:
        if not 0.0 < baseline_rate < 1.0:
            raise ConfigError(f"expected `baseline_rate` in (0, 1), got {baseline_rate!r}")
        a1 = 2.0 * math.asin(math.sqrt(baseline_rate))
        if mde is not None:
            p2 = baseline_rate + mde
            if not 0.0 < p2 < 1.0 or mde == 0.0:
                raise ConfigError(f"expected `baseline_rate + mde` in (0, 1) and mde != 0, got {p2!r}")
            h = _h(baseline_rate, p2)
            n = sample_size(h, alpha=alpha, power=power, ratio=ratio)
        else:
            assert n1 is not None
            n = n1
            h = detectable_effect(n1, alpha=alpha, power=power, ratio=ratio)
            if a1 + h >= math.pi:
                raise ConfigError(f"expected an `n1` large enough to detect a rate below 1, got {n1!r}")
            mde = math.sin((a1 + h) / 2.0) ** 2 - baseline_rate
        return Plan(
            metric="proportion", alpha=alpha, power=power, n1=n, n2=n * ratio, ratio=ratio, baseline=baseline_rate,
            sd=math.sqrt(baseline_rate * (1.0 - baseline_rate)), mde=mde, relative_mde=mde / baseline_rate,
            effect_size=h,
        )
    if sd is None or not (sd > 0.0 and math.isfinite(sd)):
        raise ConfigError(f"expected `baseline_rate` (a proportion) or `sd` > 0 (a mean), got sd={sd!r}")
    if mde is not None:
        if mde == 0.0 or not math.isfinite(mde):
            raise ConfigError(f"expected a non-zero finite `mde`, got {mde!r}")
        d = mde / sd
        n = sample_size(d, alpha=alpha, power=power, ratio=ratio)
    else:
        assert n1 is not None
        n = n1
        d = detectable_effect(n1, alpha=alpha, power=power, ratio=ratio)
        mde = d * sd
    rel = mde / baseline_mean if baseline_mean else None
    return Plan(
        metric="mean", alpha=alpha, power=power, n1=n, n2=n * ratio, ratio=ratio, baseline=baseline_mean, sd=sd,
        mde=mde, relative_mde=rel, effect_size=d,
    )
