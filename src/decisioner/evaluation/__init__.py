"""Evaluation: experiment statistics and reports, and off-policy estimators over decision logs.

:mod:`.inference` holds the statistics (tests, intervals, mSPRT, probability to be best, SRM,
multiple testing, IPW lift), :mod:`.adjust` CUPED, delta-method ratios and winsorising,
:mod:`.power` sample sizes and detectable effects, :mod:`.reports` builds experiment reports from
per-unit arrays or records, :mod:`.decisions` from a decision log file (an experiment, or
personalised traffic against the global holdout), :mod:`.ope` estimates a candidate policy's
value from a bandit log, and :mod:`.engine_log` reads an engine's own decision log into either. :mod:`.identity` scores
identity resolution against a synthetic world's true people and :mod:`.obd_protocol` runs the
Open Bandit Dataset's "evaluation of OPE" protocol; both are imported from their modules, as
they load the identity kernels and the dataset.
"""

from .adjust import CupedComparison, RatioComparison, cuped, ratio_comparison, ratio_stats
from .decisions import decisions_report, holdout_report
from .engine_log import engine_report, log_from_engine, placement_ipw_lift
from .inference import adjust_pvalues, always_valid, ipw_lift, proportion_test, srm_test, welch_test
from .ope import BanditLog, OPEResult, estimate, evaluate_policy, fit_reward_model
from .power import Plan, plan
from .reports import ExperimentReport, experiment_report

__all__ = [
    "BanditLog",
    "CupedComparison",
    "ExperimentReport",
    "OPEResult",
    "Plan",
    "RatioComparison",
    "adjust_pvalues",
    "always_valid",
    "cuped",
    "decisions_report",
    "holdout_report",
    "plan",
    "ratio_comparison",
    "ratio_stats",
    "engine_report",
    "estimate",
    "evaluate_policy",
    "experiment_report",
    "fit_reward_model",
    "ipw_lift",
    "log_from_engine",
    "placement_ipw_lift",
    "proportion_test",
    "srm_test",
    "welch_test",
]
