"""The "evaluation of OPE" protocol of the Open Bandit Dataset paper (Saito, Aihara, Matsutani
and Narita, NeurIPS 2021 Datasets and Benchmarks), run on the sample that
:mod:`decisioner.datasets.obd` loads.

Two policies ran side by side on the same widget, so one policy's value is known on-policy:
:func:`ope_benchmark` estimates the Thompson sampler's click rate from the uniform-random logs
with each estimator of :mod:`.ope`, and compares with its real on-policy click rate (the mean
click of its own logs), over bootstrap resamples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.obd import bts_action_distribution, check_log, load_obd
from ..errors import ConfigError
from .ope import estimate, fit_reward_model

__all__ = ["ope_benchmark"]


def ope_benchmark(
    *, campaign: str = "all", behavior: str = "random", evaluation: str = "bts", n_runs: int = 30,
    seed: int = 12345, n_folds: int = 3,
    estimators: tuple[str, ...] = ("dm", "ipw", "snipw", "dr", "switch_dr", "dr_os"),
    cache: str | Path | None = None,
) -> dict[str, Any]:
    """The "evaluation of OPE" protocol of the Open Bandit Dataset paper on the sample.

    Ground truth: the evaluation policy's on-policy click rate (mean click of its own log).
    For each of ``n_runs`` bootstrap resamples of the behaviour policy's log (resample ``b``
    drawn by ``RandomState(b)``, as the published script), a logistic reward model is
    cross-fitted (``n_folds`` folds, per position, on user features and item features), every
    estimator estimates the evaluation policy's value, and its relative error
    ``|estimate - truth| / truth`` is recorded.

    Returns
    -------
    dict
        ``ground_truth``; ``estimates`` (mean estimate per estimator); ``relative_error`` (mean
        relative error per estimator) and ``relative_error_std`` (their standard deviation,
        ddof 1); plus the protocol's settings and the size of the logs.
    """
    check_log(behavior, campaign)
    check_log(evaluation, campaign)
    if n_runs < 1:
        raise ConfigError(f"`n_runs` must be >= 1, got {n_runs!r}")
    data = load_obd(behavior, campaign, cache=cache)
    truth_log = load_obd(evaluation, campaign, cache=cache)
    ground_truth = float(truth_log.reward.mean())
    if evaluation == "bts":
        dist = bts_action_distribution(campaign, data.len_list, cache=cache)
    else:
        dist = np.full((data.n_actions, data.len_list), 1.0 / data.n_actions)
    log = data.bandit_log()
    n = log.n_rounds
    est: dict[str, list[float]] = {e: [] for e in estimators}
    for b in range(n_runs):
        boot = log.take(np.random.RandomState(b).choice(n, size=n, replace=True))
        q = fit_reward_model(boot, kind="logistic", n_folds=n_folds, seed=seed)
        res = estimate(boot, dist, q=q, estimators=estimators, n_boot=0)
        for e in estimators:
            est[e].append(res[e].estimate)
    rel = {e: np.abs(np.array(v) - ground_truth) / ground_truth for e, v in est.items()}
    return {
        "campaign": campaign,
        "behavior": behavior,
        "evaluation": evaluation,
        "n_runs": n_runs,
        "n_rounds": n,
        "ground_truth": ground_truth,
        "estimates": {e: float(np.mean(v)) for e, v in est.items()},
        "relative_error": {e: float(r.mean()) for e, r in rel.items()},
        "relative_error_std": {e: float(r.std(ddof=1)) if n_runs > 1 else 0.0 for e, r in rel.items()},
    }
