"""Evaluation: experiment reports (A/B statistics) and off-policy estimators over decision logs."""

from .ope import BanditLog, OPEResult, estimate, evaluate_policy, fit_reward_model, log_from_engine
from .reports import (
    ExperimentReport,
    adjust_pvalues,
    always_valid,
    engine_report,
    experiment_report,
    ipw_lift,
    placement_ipw_lift,
    proportion_test,
    srm_test,
    welch_test,
)

__all__ = [
    "BanditLog",
    "ExperimentReport",
    "OPEResult",
    "adjust_pvalues",
    "always_valid",
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
