"""Power, sample size and minimum detectable effect against ``statsmodels.stats.power``.

The power function agrees with ``NormalIndPower.power`` to 1e-9; our sample sizes and effects,
plugged into statsmodels' power, give the requested power to 1e-9. statsmodels' own solver
(``solve_power``, a bracketing root finder with its default tolerance) agrees with them to
1e-3 relative, the precision it reaches (1.4e-4 off at d = 0.01, power 0.5)."""

from __future__ import annotations

import math
import re

import pytest
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import proportion_effectsize

from decisioner.errors import ConfigError
from decisioner.evaluation.power import detectable_effect, plan, power, sample_size

TOL = 1e-9
CASES = [(0.2, 393.4, 0.05, 1.0), (0.05, 1000.0, 0.01, 2.5), (0.01, 50_000.0, 0.1, 0.3), (-0.3, 120.0, 0.05, 1.0)]


@pytest.mark.parametrize(("d", "n", "alpha", "ratio"), CASES)
def test_power_matches_normal_ind_power(d: float, n: float, alpha: float, ratio: float) -> None:
    sm = NormalIndPower().power(d, n, alpha, ratio=ratio, alternative="two-sided")
    assert power(d, n, alpha=alpha, ratio=ratio) == pytest.approx(sm, abs=TOL)


@pytest.mark.parametrize(("d", "n", "alpha", "ratio"), CASES)
@pytest.mark.parametrize("target", [0.8, 0.9, 0.5])
def test_sample_size_and_mde_invert_statsmodels_power(d: float, n: float, alpha: float, ratio: float, target: float) -> None:
    pw = NormalIndPower()
    n1 = sample_size(d, alpha=alpha, power=target, ratio=ratio)
    assert pw.power(d, n1, alpha, ratio=ratio) == pytest.approx(target, abs=TOL)
    e = detectable_effect(n, alpha=alpha, power=target, ratio=ratio)
    assert pw.power(e, n, alpha, ratio=ratio) == pytest.approx(target, abs=TOL)
    assert zt_ind_solve_power(effect_size=d, alpha=alpha, power=target, ratio=ratio) == pytest.approx(n1, rel=1e-3)
    assert zt_ind_solve_power(nobs1=n, alpha=alpha, power=target, ratio=ratio) == pytest.approx(e, rel=1e-3)


@pytest.mark.parametrize(("p1", "mde"), [(0.10, 0.01), (0.02, 0.005), (0.5, -0.05)])
def test_proportion_plan_uses_cohens_h(p1: float, mde: float) -> None:
    p = plan(baseline_rate=p1, mde=mde, alpha=0.05, power=0.8)
    h = proportion_effectsize(p1 + mde, p1)
    assert p.effect_size == pytest.approx(h, rel=TOL)
    assert NormalIndPower().power(h, p.n1, 0.05) == pytest.approx(0.8, abs=TOL)
    back = plan(baseline_rate=p1, n1=p.n1, alpha=0.05, power=0.8)
    assert back.mde == pytest.approx(abs(mde), rel=1e-9)  # the detectable effect is an increase
    assert p.relative_mde == pytest.approx(mde / p1, rel=TOL)


def test_mean_plan() -> None:
    p = plan(sd=20.0, baseline_mean=15.0, mde=1.0, ratio=2.0)
    assert p.effect_size == 0.05 and p.n2 == pytest.approx(2 * p.n1, rel=TOL)
    assert NormalIndPower().power(0.05, p.n1, 0.05, ratio=2.0) == pytest.approx(0.8, abs=TOL)
    back = plan(sd=20.0, n1=p.n1, ratio=2.0)
    assert back.mde == pytest.approx(1.0, rel=TOL) and back.relative_mde is None
    assert math.ceil(plan(sd=1.0, mde=0.2).n1) == 393  # the textbook 393 per group at d = 0.2


@pytest.mark.parametrize(("kwargs", "msg"), [
    ({"baseline_rate": 0.1}, "expected exactly one of `mde` (gives the sample size) and `n1` (gives the mde), got neither"),
    ({"baseline_rate": 1.5, "mde": 0.1}, "expected `baseline_rate` in (0, 1), got 1.5"),
    ({"baseline_rate": 0.95, "mde": 0.1}, "expected `baseline_rate + mde` in (0, 1) and mde != 0, got 1.05"),
    ({"mde": 1.0}, "expected `baseline_rate` (a proportion) or `sd` > 0 (a mean), got sd=None"),
    ({"sd": 1.0, "mde": 1.0, "alpha": 0.0}, "expected `alpha` in (0, 1), got 0.0"),
    ({"sd": 1.0, "mde": 1.0, "power": 0.01}, "expected `power` > `alpha` (0.05), got 0.01"),
])
def test_plan_errors(kwargs: dict[str, float], msg: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        plan(**kwargs)  # type: ignore[arg-type]
