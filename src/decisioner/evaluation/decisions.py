"""Reports over a decision log file (:mod:`decisioner.decisionfile`): one experiment's report,
and the headline personalisation number, personalised traffic against the global holdout.

Units and metrics
-----------------
The unit is the person (``person`` >= 0; anonymous or erased rows, ``-1``, belong to no unit and
are counted as ``anonymous_rows``). A unit's ``value`` is the summed ``reward`` of every row of
its decisions in the analysis window (every slot: a click rewards the slot clicked), it
converted when that is positive, and ``decisions`` counts its decisions (first slots). Ratio
metric: ``value_per_decision`` (delta method). An experiment's unit takes the variant of its
first row (assignment is sticky); in the holdout report a unit is ``holdout`` when its first
row is in the global holdout and ``personalized`` otherwise.

Analysis window and the pre-period covariate (CUPED)
----------------------------------------------------
``start`` (epoch ms) opens the analysis window: only rows at or after it count. The covariate of
a unit comes from its rows in the ``pre_window_ms`` before ``start`` (every placement, every
experiment): ``"decisions"``, how many decisions it had there (its visits), or ``"reward"``,
their summed reward; a unit without such rows has 0. In the synthetic worlds decisions are made
at the world's own page views and email opens, which no decision changes (the generator writes
them before anything is decided; closed-loop clicks are not among them), so ``"decisions"`` is
a pre-treatment covariate even when the experiment ran before ``start``. ``"reward"`` is one
only when the experiment started at ``start`` (rewards before it may carry the treatment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np

from ..errors import ConfigError
from .reports import ExperimentReport, experiment_report

__all__ = ["DecisionUnits", "decision_units", "decisions_report", "holdout_report", "experiments_in"]

#: a pre-period covariate derived from the log, or given per unit (``{person: value}``; a person
#: may be keyed by its int id or its decimal string, units missing from it have 0)
Covariate: TypeAlias = Literal["decisions", "reward"] | Mapping[Any, float]


class DecisionUnits:
    """Per-unit arrays of one analysis: variant index, value, decisions, covariate and names."""

    def __init__(
        self, person: np.ndarray, variant: np.ndarray, value: np.ndarray, decisions: np.ndarray,
        covariate: np.ndarray | None, names: list[str], anonymous_rows: int,
    ) -> None:
        self.person = person
        self.variant = variant
        self.value = value
        self.decisions = decisions
        self.covariate = covariate
        self.names = names
        self.anonymous_rows = anonymous_rows


def experiments_in(records: Sequence[dict[str, Any]]) -> list[str]:
    """The experiment names of a decision log's records, sorted."""
    return sorted({str(r["experiment"]) for r in records if r.get("experiment") is not None})


def _default_order(names: set[str]) -> list[str]:
    """``control`` first when a variant has that name, the rest sorted."""
    rest = sorted(n for n in names if n != "control")
    return (["control"] if "control" in names else []) + rest


def decision_units(
    records: Sequence[dict[str, Any]], *, group: Any, start: int | None = None, pre_window_ms: int | None = None,
    covariate: Covariate | None = None, order: Sequence[str] | None = None,
) -> DecisionUnits:
    """Per-unit arrays from decision log records.

    Parameters
    ----------
    records
        Decision log lines (dicts with the keys of :data:`decisioner.decisionfile.DECISION_KEYS`).
    group
        ``group(record)``: the unit's group name for an analysed row, or ``None`` for a row
        outside the analysis.
    start
        Analysis window start (epoch ms); ``None``: every row.
    pre_window_ms
        Length of the pre-period before ``start`` (default: everything before it).
    covariate
        ``"decisions"`` or ``"reward"`` (needs ``start``), a mapping person -> value, or
        ``None``.
    order
        Group names in report order (default: ``control`` first, the rest sorted).
    """
    derived = isinstance(covariate, str)
    if derived and start is None:
        raise ConfigError("expected an analysis `start` for a pre-period covariate, got none - at `start`")
    lo = None if start is None or pre_window_ms is None else start - pre_window_ms
    first: dict[int, str] = {}
    value: dict[int, float] = {}
    decisions: dict[int, int] = {}
    pre: dict[int, float] = {}
    anonymous = 0
    for rec in records:
        t = int(rec["time"])
        person = int(rec["person"])
        reward = float(rec.get("reward") or 0.0)
        if start is not None and t < start:
            if derived and person >= 0 and (lo is None or t >= lo):
                if covariate == "reward":
                    pre[person] = pre.get(person, 0.0) + reward
                elif int(rec["slot"]) == 0:
                    pre[person] = pre.get(person, 0.0) + 1.0
            continue
        g = group(rec)
        if g is None:
            continue
        if person < 0:
            anonymous += 1
            continue
        first.setdefault(person, str(g))
        value[person] = value.get(person, 0.0) + reward
        if int(rec["slot"]) == 0:
            decisions[person] = decisions.get(person, 0) + 1
    names = list(order) if order is not None else _default_order(set(first.values()))
    index = {n: i for i, n in enumerate(names)}
    persons = np.fromiter(first, dtype=np.int64, count=len(first))
    variant = np.array([index.get(first[p], -1) for p in first], dtype=np.int64)
    keep = variant >= 0
    persons, variant = persons[keep], variant[keep]
    val = np.array([value[int(p)] for p in persons], dtype=np.float64)
    dec = np.array([decisions.get(int(p), 0) for p in persons], dtype=np.float64)
    cov = None
    if derived:
        cov = np.array([pre.get(int(p), 0.0) for p in persons], dtype=np.float64)
    elif covariate is not None:
        assert not isinstance(covariate, str)
        given = {str(k): float(v) for k, v in covariate.items()}
        cov = np.array([given.get(str(int(p)), 0.0) for p in persons], dtype=np.float64)
    return DecisionUnits(persons, variant, val, dec, cov, names, anonymous)


def _report(units: DecisionUnits, title: str, covariate: Covariate | None, **kwargs: Any) -> ExperimentReport:
    if units.variant.size == 0:
        raise ConfigError(f"expected units in {title!r}, got none (no decision of a known person in the window)")
    kwargs.setdefault("covariate_name", f"pre_period_{covariate}" if isinstance(covariate, str) else "pre_period")
    return experiment_report(
        units.variant, (units.value > 0).astype(np.int64), units.value, units.names, experiment=title,
        covariate=units.covariate, ratios={"value_per_decision": (units.value, units.decisions)}, **kwargs,
    )


def decisions_report(
    records: Sequence[dict[str, Any]], experiment: str, *, start: int | None = None,
    pre_window_ms: int | None = None, covariate: Covariate | None = None, **kwargs: Any,
) -> ExperimentReport:
    """The report of one experiment of a decision log (see the module docstring); ``kwargs``
    go to :func:`~decisioner.evaluation.reports.experiment_report` (``control``, ``weights``,
    ``alpha``, ``winsorize`` ...).

    Raises
    ------
    ConfigError
        If the log has no such experiment or no unit in the window.
    """
    known = experiments_in(records)
    if experiment not in known:
        raise ConfigError(f"expected an experiment in {known!r}, got {experiment!r} - at `experiment`")

    def group(rec: dict[str, Any]) -> str | None:
        return str(rec["variant"]) if rec.get("experiment") == experiment and rec.get("variant") is not None else None

    units = decision_units(records, group=group, start=start, pre_window_ms=pre_window_ms, covariate=covariate)
    control = kwargs.get("control")
    if isinstance(control, str) and control not in units.names:
        raise ConfigError(f"expected `control` to be one of {units.names!r}, got {control!r}")
    kwargs.setdefault("control", units.names[0] if units.names else 0)
    return _report(units, experiment, covariate, **kwargs)


def holdout_report(
    records: Sequence[dict[str, Any]], *, placement: str | None = None, start: int | None = None,
    pre_window_ms: int | None = None, covariate: Covariate | None = None, holdout_fraction: float | None = None,
    **kwargs: Any,
) -> ExperimentReport:
    """The headline personalisation number: ``personalized`` (every unit outside the global
    holdout, whatever experiment it is in) against ``holdout`` (the control), value per unit,
    conversion and value per decision with intervals, over every placement or one.
    ``holdout_fraction`` gives the sample-ratio check its expected split.

    Raises
    ------
    ConfigError
        If the log has no decision in the global holdout.
    """
    if not any(r.get("variant") == "holdout" for r in records):
        raise ConfigError("expected decisions in the global holdout, got none (configure `[holdout]`) - at `holdout`")

    def group(rec: dict[str, Any]) -> str | None:
        if placement is not None and rec.get("placement") != placement:
            return None
        return "holdout" if rec.get("variant") == "holdout" else "personalized"

    units = decision_units(records, group=group, start=start, pre_window_ms=pre_window_ms, covariate=covariate,
                           order=["holdout", "personalized"])
    if holdout_fraction is not None:
        kwargs["weights"] = [holdout_fraction, 1.0 - holdout_fraction]
    else:  # the split is not in the log: the sample-ratio check has nothing to compare against
        kwargs.setdefault("weights", [float((units.variant == k).sum()) or 1.0 for k in (0, 1)])
    kwargs["control"] = "holdout"
    title = "global holdout" + (f" ({placement})" if placement else "")
    return _report(units, title, covariate, **kwargs)
