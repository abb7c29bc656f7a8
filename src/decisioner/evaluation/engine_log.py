"""Evaluation over an engine's own decision log: an experiment's report, the IPW lift between
two experiences of a campaign placement, and a placement's decisions as a bandit log for
off-policy evaluation.

These functions read ``engine.config``, ``engine.placement(name)`` and ``engine.decision_log``
only; the statistics live in :mod:`.inference`, :mod:`.reports` and :mod:`.ope`, which know
nothing of the engine. They see the decisions in the decision log's window in memory
(``decision_log.max_rows``); rows spilled to disk are read with
:func:`decisioner.decisionlog.read_spilled`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from .inference import IPWLift, ipw_lift
from .ope import BanditLog
from .reports import ExperimentReport, experiment_report

__all__ = ["engine_report", "placement_ipw_lift", "log_from_engine"]


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


def log_from_engine(engine: Any, placement: str) -> BanditLog:
    """The engine's decisions on a placement as a bandit log: action = chosen content, position =
    slot, reward = the outcome value joined by decision id, pscore = the logged propensity."""
    pl = engine.placement(placement)
    log = engine.decision_log
    m = log.column("placement") == pl.index
    slot = log.column("slot")[m].astype(np.int64)
    return BanditLog(
        action=log.column("content")[m].astype(np.int64), reward=log.column("reward")[m].astype(np.float64),
        pscore=log.column("propensity")[m].astype(np.float64), n_actions=len(pl.contents),
        position=slot, len_list=int(slot.max()) + 1 if slot.size else 1,
        time=log.column("time")[m].astype(np.int64),
    )
