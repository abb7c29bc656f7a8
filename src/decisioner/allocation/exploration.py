"""Arm policies that explore around the empirical means: epsilon-greedy, softmax (Boltzmann),
greedy and uniform random. Their propensities are closed forms of the means."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._kernels import bandit as B
from ..config import EpsilonGreedySpec, GreedySpec, RandomSpec, SoftmaxSpec
from .base import ArmStats, Choice, Policy

__all__ = ["EpsilonGreedy", "Softmax", "Greedy", "UniformRandom"]


class _MeanPolicy(Policy):
    mode: int = B.MODE_GREEDY

    def __init__(self, n_arms: int, spec: Any, *, seed: int | None = None) -> None:
        super().__init__(n_arms, seed=seed)
        self.spec = spec
        self.stats_ = ArmStats(n_arms)

    @property
    def param(self) -> float:
        return 0.0

    @property
    def counts(self) -> np.ndarray:
        return self.stats_.counts_

    def means(self) -> np.ndarray:
        return self.stats_.means()

    def _select(self, eligible: np.ndarray, state: np.ndarray, context: Any, bonus: np.ndarray | None) -> Choice:
        m = self.means() if bonus is None else self.means() + bonus  # the rule over shifted means: exact
        arm, prop = B.arm_select(self.mode, self.param, m, self.stats_.counts_, eligible, state)
        return Choice(int(arm), float(prop), float(m[arm]))

    def _export(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return self.stats_.to_arrays("stats."), {}

    def _import(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.stats_.load_arrays(arrays, "stats.")

    def _learn(self, arm: int, dn: float, reward: float, previous: float, context: Any) -> None:
        self.stats_.add(arm, dn, reward, 0.0)

    def action_distribution(
        self, eligible: Any = None, *, context: Any = None, bonus: np.ndarray | None = None
    ) -> np.ndarray:
        el = self._eligible(eligible).astype(bool)
        out = np.zeros(self.n_arms)
        k = int(el.sum())
        if k == 0:
            return out
        means = self.means() if bonus is None else self.means() + self._bonus(bonus)
        m = np.where(el, means, -np.inf)
        best = int(np.argmax(m))  # first maximum: the kernels' tie rule
        if self.mode == B.MODE_GREEDY:
            out[best] = 1.0
        elif self.mode == B.MODE_UNIFORM:
            out[el] = 1.0 / k
        elif self.mode == B.MODE_EPSILON:
            out[el] = self.param / k
            out[best] += 1.0 - self.param
        else:
            w = np.where(el, np.exp((m - m[best]) / self.param), 0.0)
            out = w / w.sum()
        return out


class EpsilonGreedy(_MeanPolicy):
    """The arm with the best empirical mean with probability ``1 - epsilon``, else a uniform
    draw; propensity ``(1 - eps) [best] + eps / m`` over ``m`` eligible arms.

    Parameters
    ----------
    n_arms
        Number of arms.
    spec
        ``epsilon`` (``pool`` is for slates and ignored here).
    seed
        Seed of the policy's own random stream.

    Examples
    --------
    >>> p = EpsilonGreedy(4, EpsilonGreedySpec(epsilon=0.2), seed=0)
    >>> p.update_one(2, 1.0)
    >>> [round(x, 12) for x in p.action_distribution().tolist()]
    [0.05, 0.05, 0.85, 0.05]
    """

    mode = B.MODE_EPSILON

    def __init__(self, n_arms: int, spec: EpsilonGreedySpec = EpsilonGreedySpec(), *, seed: int | None = None) -> None:
        super().__init__(n_arms, spec, seed=seed)

    @property
    def param(self) -> float:
        return float(self.spec.epsilon)


class Softmax(_MeanPolicy):
    """Boltzmann exploration: arm k with probability ``exp(mean_k / tau) / sum``.

    Parameters
    ----------
    n_arms
        Number of arms.
    spec
        ``temperature`` tau (``pool`` is for slates and ignored here).
    seed
        Seed of the policy's own random stream.

    Examples
    --------
    >>> p = Softmax(2, SoftmaxSpec(temperature=1.0))
    >>> round(float(p.action_distribution()[0]), 3)
    0.5
    """

    mode = B.MODE_SOFTMAX

    def __init__(self, n_arms: int, spec: SoftmaxSpec = SoftmaxSpec(), *, seed: int | None = None) -> None:
        super().__init__(n_arms, spec, seed=seed)

    @property
    def param(self) -> float:
        return float(self.spec.temperature)


class Greedy(_MeanPolicy):
    """The arm with the best empirical mean (ties: lower index); propensity 1.

    Parameters
    ----------
    n_arms
        Number of arms.
    spec
        No parameters.
    seed
        Unused.

    Examples
    --------
    >>> Greedy(3).select_one().arm
    0
    """

    mode = B.MODE_GREEDY

    def __init__(self, n_arms: int, spec: GreedySpec = GreedySpec(), *, seed: int | None = None) -> None:
        super().__init__(n_arms, spec, seed=seed)


class UniformRandom(_MeanPolicy):
    """Each eligible arm with probability ``1 / m``: the randomised control.

    Parameters
    ----------
    n_arms
        Number of arms.
    spec
        No parameters.
    seed
        Seed of the policy's own random stream.

    Examples
    --------
    >>> UniformRandom(4).select_one().propensity
    0.25
    """

    mode = B.MODE_UNIFORM

    def __init__(self, n_arms: int, spec: RandomSpec = RandomSpec(), *, seed: int | None = None) -> None:
        super().__init__(n_arms, spec, seed=seed)
