"""Peer: MABWiser (Fidelity's bandit library, ``pip install mabwiser``): Thompson sampling and
LinUCB fitted on the same data as ``bench_allocation.py`` gives decisioner. ``*_select`` makes
one selection from the fitted state (MABWiser's ``predict``; it returns no propensity)."""

from __future__ import annotations

from typing import Any

import numpy as np
from mabwiser.mab import MAB, LearningPolicy

NAME = "MABWiser"


def thompson(n_arms: int, decisions: np.ndarray, rewards: np.ndarray, seed: int = 0) -> Any:
    """Bernoulli Thompson sampling over ``n_arms`` arms fitted on (decision, reward) pairs."""
    model = MAB(arms=list(range(n_arms)), learning_policy=LearningPolicy.ThompsonSampling(), seed=seed)
    model.fit(decisions, rewards)
    return model


def thompson_select(model: Any) -> int:
    return int(model.predict())


def thompson_update(model: Any, arm: int, reward: float) -> None:
    model.partial_fit([arm], [reward])


def linucb(n_arms: int, contexts: np.ndarray, decisions: np.ndarray, rewards: np.ndarray, alpha: float = 1.0,
           seed: int = 0) -> Any:
    """LinUCB with one ridge model per arm over the context columns."""
    model = MAB(arms=list(range(n_arms)), learning_policy=LearningPolicy.LinUCB(alpha=alpha, l2_lambda=1.0), seed=seed)
    model.fit(decisions, rewards, contexts)
    return model


def linucb_select(model: Any, x: np.ndarray) -> int:
    return int(model.predict(x[None, :]))


def linucb_update(model: Any, arm: int, reward: float, x: np.ndarray) -> None:
    model.partial_fit([arm], [reward], x[None, :])
