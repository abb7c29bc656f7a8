"""Allocation: bandit policies over arms (one module per family), slate exploration over ranked
candidates, and experiments (bucketing, splits, ramps, namespaces, holdouts)."""

from __future__ import annotations

from typing import Any

from ..config import (
    EpsilonGreedySpec,
    GaussianThompsonSpec,
    GreedySpec,
    LinTSSpec,
    LinUCBSpec,
    PopularSpec,
    RandomSpec,
    SoftmaxSpec,
    ThompsonSpec,
    UCB1Spec,
)
from ..errors import ConfigError
from .base import ArmStats, Choice, Policy
from .exploration import EpsilonGreedy, Greedy, Softmax, UniformRandom
from .linear import LinTS, LinUCB
from .slate import SlatePolicy
from .thompson import BernoulliThompson, GaussianThompson
from .ucb import UCB1

__all__ = [
    "ArmStats",
    "BernoulliThompson",
    "Choice",
    "EpsilonGreedy",
    "GaussianThompson",
    "Greedy",
    "LinTS",
    "LinUCB",
    "Policy",
    "SlatePolicy",
    "Softmax",
    "UCB1",
    "UniformRandom",
    "make_policy",
]


def make_policy(spec: Any, n_arms: int, *, n_features: int = 0, seed: int | None = None) -> Policy:
    """The arm policy a spec describes (``n_features``: context size of the linear ones).

    Examples
    --------
    >>> type(make_policy(UCB1Spec(), 3)).__name__
    'UCB1'
    """
    if isinstance(spec, ThompsonSpec):
        return BernoulliThompson(n_arms, spec, seed=seed)
    if isinstance(spec, GaussianThompsonSpec):
        return GaussianThompson(n_arms, spec, seed=seed)
    if isinstance(spec, UCB1Spec):
        return UCB1(n_arms, spec, seed=seed)
    if isinstance(spec, LinUCBSpec):
        return LinUCB(n_arms, n_features, spec, seed=seed)
    if isinstance(spec, LinTSSpec):
        return LinTS(n_arms, n_features, spec, seed=seed)
    if isinstance(spec, EpsilonGreedySpec):
        return EpsilonGreedy(n_arms, spec, seed=seed)
    if isinstance(spec, SoftmaxSpec):
        return Softmax(n_arms, spec, seed=seed)
    if isinstance(spec, (GreedySpec, PopularSpec)):
        return Greedy(n_arms, GreedySpec(), seed=seed)
    if isinstance(spec, RandomSpec):
        return UniformRandom(n_arms, spec, seed=seed)
    raise ConfigError(f"expected an arm policy spec, got `{type(spec).__name__}`")
