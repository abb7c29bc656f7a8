"""Contextual linear bandits: LinUCB and linear Thompson sampling, one ridge model per arm kept
as a Cholesky factor (``_kernels/linear.py``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._kernels import bandit as B
from .._kernels import linear as K
from ..config import LinTSSpec, LinUCBSpec
from ..errors import ConfigError, NotReadyError
from .base import Choice, Policy

__all__ = ["LinUCB", "LinTS"]


class _Linear(Policy):
    def __init__(self, n_arms: int, n_features: int, spec: Any, *, seed: int | None = None) -> None:
        super().__init__(n_arms, seed=seed)
        if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)) or n_features < 1:
            raise ConfigError(f"`n_features` must be an int >= 1, got {n_features!r}")
        self.n_features = int(n_features)
        self.spec = spec
        d = self.n_features
        self.chol_ = np.zeros((n_arms, d, d), dtype=np.float64)
        self.chol_[:, np.arange(d), np.arange(d)] = math.sqrt(spec.l2)
        self.inv_ = np.zeros((n_arms, d, d), dtype=np.float64)
        self.inv_[:, np.arange(d), np.arange(d)] = 1.0 / math.sqrt(spec.l2)
        self.b_ = np.zeros((n_arms, d), dtype=np.float64)
        self.theta_ = np.zeros((n_arms, d), dtype=np.float64)
        self.counts_ = np.zeros(n_arms, dtype=np.float64)
        self._work = np.empty(d, dtype=np.float64)
        self._mean = np.empty(n_arms, dtype=np.float64)
        self._sd = np.empty(n_arms, dtype=np.float64)

    @property
    def counts(self) -> np.ndarray:
        return self.counts_

    def _context(self, context: Any) -> np.ndarray:
        if context is None:
            raise ConfigError(f"expected a context of {self.n_features} features, got None - at `context`")
        x = np.ascontiguousarray(context, dtype=np.float64)
        # one reduction checks finiteness (a sum of finite values overflowing also fails)
        if x.shape != (self.n_features,) or not math.isfinite(np.add.reduce(x)):
            raise ConfigError(
                f"expected a finite context of shape ({self.n_features},), got shape {x.shape!r} - at `context`"
            )
        return x

    _ARRAYS = ("chol_", "inv_", "b_", "theta_", "counts_")

    def _export(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {n.rstrip("_"): getattr(self, n) for n in self._ARRAYS}, {"n_features": self.n_features}

    def _import(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        if meta.get("n_features") != self.n_features:
            got = meta.get("n_features")
            raise NotReadyError(f"expected a linear policy of {self.n_features} features, got {got!r}")
        for n in self._ARRAYS:
            setattr(self, n, np.array(arrays[n.rstrip("_")], dtype=np.float64))

    def _learn(self, arm: int, dn: float, reward: float, previous: float, context: Any) -> None:
        x = self._context(context)
        self.counts_[arm] += dn
        K.linear_update(self.chol_, self.inv_, self.b_, self.theta_, arm, x, reward, dn, self._work)

    def scores(self, context: Any, eligible: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``theta . x`` and standard deviation ``||L^-1 x||`` of every arm's score."""
        x = self._context(context)
        K.linear_scores(self.inv_, self.theta_, x, self._eligible(eligible), self._mean, self._sd)
        return self._mean.copy(), self._sd.copy()

    def means(self) -> np.ndarray:
        """The intercept-free coefficient norm is not a mean; use ``scores(context)``."""
        return np.zeros(self.n_arms)


class LinUCB(_Linear):
    """LinUCB (Li, Chu, Langford and Schapire 2010): the arm with the highest
    ``theta_k . x + alpha sqrt(x^T A_k^-1 x)``; deterministic, propensity 1.

    Parameters
    ----------
    n_arms
        Number of arms.
    n_features
        Context dimension d.
    spec
        ``alpha`` (exploration) and ``l2`` (ridge).
    seed
        Unused (LinUCB draws nothing).

    Examples
    --------
    >>> p = LinUCB(2, 2, LinUCBSpec(alpha=0.0))
    >>> for _ in range(20):
    ...     p.update_one(1, 1.0, context=[1.0, 0.5]); p.update_one(0, 0.0, context=[1.0, 0.5])
    >>> p.select_one(context=[1.0, 0.5])
    Choice(arm=1, propensity=1.0, score=0.9...)
    """

    def __init__(
        self, n_arms: int, n_features: int, spec: LinUCBSpec = LinUCBSpec(), *, seed: int | None = None
    ) -> None:
        super().__init__(n_arms, n_features, spec, seed=seed)

    def _select(self, eligible: np.ndarray, state: np.ndarray, context: Any, bonus: np.ndarray | None) -> Choice:
        x = self._context(context)
        if bonus is not None:
            return self._select_shifted(eligible, x, bonus)
        arm, score = K.linucb_select(self.inv_, self.theta_, x, eligible, float(self.spec.alpha))
        return Choice(int(arm), 1.0, float(score))

    def _select_shifted(self, eligible: np.ndarray, x: np.ndarray, bonus: np.ndarray) -> Choice:
        """The highest ``theta . x + alpha sd + bonus`` (ties: the lower index, as the kernel)."""
        K.linear_scores(self.inv_, self.theta_, x, eligible, self._mean, self._sd)
        s = np.where(eligible != 0, self._mean + float(self.spec.alpha) * self._sd + bonus, -np.inf)
        arm = int(np.argmax(s))
        return Choice(arm, 1.0, float(s[arm]))

    def action_distribution(
        self, eligible: Any = None, *, context: Any = None, bonus: np.ndarray | None = None
    ) -> np.ndarray:
        el = self._eligible(eligible)
        out = np.zeros(self.n_arms)
        if el.any():
            x = self._context(context)
            if bonus is not None:
                arm = self._select_shifted(el, x, self._bonus(bonus)).arm
            else:
                arm, _ = K.linucb_select(self.inv_, self.theta_, x, el, float(self.spec.alpha))
            out[arm] = 1.0
        return out


class LinTS(_Linear):
    """Linear Thompson sampling (Agrawal and Goyal 2013): arm k's score is drawn from
    ``N(theta_k . x, v^2 x^T A_k^-1 x)``, the law of ``theta~ . x`` for
    ``theta~ ~ N(theta_k, v^2 A_k^-1)`` drawn through the Cholesky factor. The arm is drawn from
    the probability that each score is highest (computed by integration, so the propensity is
    exact rather than simulated).

    Parameters
    ----------
    n_arms
        Number of arms.
    n_features
        Context dimension d.
    spec
        ``v`` (posterior scale) and ``l2`` (ridge).
    seed
        Seed of the policy's own random stream.

    Examples
    --------
    >>> p = LinTS(3, 2, seed=0)
    >>> c = p.select_one(context=[1.0, 0.0])
    >>> abs(c.propensity - 1 / 3) < 1e-6
    True
    """

    def __init__(self, n_arms: int, n_features: int, spec: LinTSSpec = LinTSSpec(), *, seed: int | None = None) -> None:
        super().__init__(n_arms, n_features, spec, seed=seed)

    def _distribution(self, el: np.ndarray, context: Any, bonus: np.ndarray | None = None) -> np.ndarray:
        x = self._context(context)
        K.linear_scores(self.inv_, self.theta_, x, el, self._mean, self._sd)
        mean = np.where(el == 1, self._mean if bonus is None else self._mean + bonus, 0.0)
        sd = np.maximum(self.spec.v * self._sd, 1e-12)
        out = np.empty((self.n_arms, 1), dtype=np.float64)
        coarse = 16 if self.n_arms <= 32 else 48
        B.rank_probabilities(B.FAMILY_NORMAL, mean, sd, el, 1, 12.0, coarse, 4096, 1e-4, out)
        w = out[:, 0] * el
        dist: np.ndarray = w / w.sum()
        return dist

    def _select(self, eligible: np.ndarray, state: np.ndarray, context: Any, bonus: np.ndarray | None) -> Choice:
        w = self._distribution(eligible, context, bonus)
        arm = int(B.categorical_select(np.cumsum(w), state))
        return Choice(arm, float(w[arm]), float(self._mean[arm] + (0.0 if bonus is None else bonus[arm])))

    def action_distribution(
        self, eligible: Any = None, *, context: Any = None, bonus: np.ndarray | None = None
    ) -> np.ndarray:
        el = self._eligible(eligible)
        b = None if bonus is None else self._bonus(bonus)
        return self._distribution(el, context, b) if el.any() else np.zeros(self.n_arms)
