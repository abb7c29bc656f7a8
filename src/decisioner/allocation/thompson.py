"""Bernoulli Thompson sampling over a campaign's arms (experiences)."""

from __future__ import annotations

import numpy as np

from .._kernels import bandit as B
from ..config import ThompsonSpec
from ..errors import UnknownArmError

__all__ = ["BernoulliThompson"]


class BernoulliThompson:
    """Beta-Bernoulli Thompson sampling with exposure-time trials and delayed rewards.

    A selection counts a trial for its arm at once; a later reward converts it into a success,
    so rewards can arrive in any order after their decisions. ``trials_`` and ``successes_`` are
    sums, so the statistics of several workers merge by addition.

    Parameters
    ----------
    n_arms
        Number of arms.
    spec
        Priors and the Monte Carlo size of the propensity estimate.

    Examples
    --------
    >>> from decisioner._kernels.rng import seed_state
    >>> p = BernoulliThompson(3)
    >>> arm, prop = p.select_one(np.ones(3, np.uint8), seed_state(0))
    >>> 0 <= arm < 3 and 0.0 < prop <= 1.0
    True
    """

    def __init__(self, n_arms: int, spec: ThompsonSpec = ThompsonSpec()) -> None:
        self.n_arms = n_arms
        self.spec = spec
        self.trials_ = np.zeros(n_arms, dtype=np.float64)
        self.successes_ = np.zeros(n_arms, dtype=np.float64)

    def select_one(self, eligible: np.ndarray, state: np.ndarray) -> tuple[int, float]:
        """Choose an arm among ``eligible`` (uint8[n_arms]); returns ``(arm, propensity)``,
        ``(-1, 0.0)`` when none is eligible. Counts the trial."""
        arm, prop = B.thompson_select(
            self.spec.prior_alpha, self.spec.prior_beta, self.trials_, self.successes_,
            eligible, state, self.spec.propensity_draws,
        )
        if arm >= 0:
            self.trials_[arm] += 1.0
        return int(arm), float(prop)

    def reward(self, arm: int, value: float = 1.0) -> None:
        """Credit a success (``value`` in [0, 1]) to ``arm``; never more successes than trials."""
        if not 0 <= arm < self.n_arms:
            raise UnknownArmError(f"Expected an arm in [0, {self.n_arms}), got {arm!r}")
        self.successes_[arm] = min(self.trials_[arm], self.successes_[arm] + min(max(value, 0.0), 1.0))

    def means(self) -> np.ndarray:
        """Posterior mean success rate of every arm."""
        a = self.spec.prior_alpha + self.successes_
        b = self.spec.prior_beta + self.trials_ - self.successes_
        return a / (a + b)
