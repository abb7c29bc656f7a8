"""UCB1 over arms, with discounted and sliding-window variants for drifting rewards."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._kernels import bandit as B
from ..config import UCB1Spec
from .base import ArmStats, Choice, Policy

__all__ = ["UCB1"]


class UCB1(Policy):
    """UCB1 (Auer, Cesa-Bianchi and Fischer 2002): play every eligible arm once, then the
    highest ``mean + c sqrt(2 ln N / n)``. Deterministic given its statistics, so every
    selection has propensity 1. ``discount`` gives discounted UCB, ``window`` sliding-window
    UCB (Garivier and Moulines 2011).

    Parameters
    ----------
    n_arms
        Number of arms.
    spec
        Exploration scale, forgetting and burn-in.
    seed
        Unused (UCB1 draws nothing); kept for a uniform constructor.

    Examples
    --------
    >>> p = UCB1(2)
    >>> [p.select_one().arm for _ in range(1)], p.select_one().propensity
    ([0], 1.0)
    """

    def __init__(self, n_arms: int, spec: UCB1Spec = UCB1Spec(), *, seed: int | None = None) -> None:
        super().__init__(n_arms, seed=seed)
        self.spec = spec
        self.burn_in = int(spec.burn_in)
        self.stats_ = ArmStats(n_arms, discount=spec.discount, window=spec.window)

    @property
    def counts(self) -> np.ndarray:
        return self.stats_.counts_

    def means(self) -> np.ndarray:
        return self.stats_.means()

    def _select(self, eligible: np.ndarray, state: np.ndarray, context: Any, bonus: np.ndarray | None) -> Choice:
        m = self.means() if bonus is None else self.means() + bonus
        arm, prop = B.arm_select(B.MODE_UCB1, self.spec.c, m, self.stats_.counts_, eligible, state)
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
        el = self._eligible(eligible)
        out = np.zeros(self.n_arms)
        if el.any():
            m = self.means() if bonus is None else self.means() + self._bonus(bonus)
            arm, _ = B.arm_select(B.MODE_UCB1, self.spec.c, m, self.stats_.counts_, el, self._state.copy())
            out[arm] = 1.0
        return out
