"""Slate policies over a ranked candidate list: greedy, epsilon-greedy, softmax, uniform."""

from __future__ import annotations

import numpy as np

from .._kernels import bandit as B
from .._kernels import topk as T
from ..config import EpsilonGreedySpec, GreedySpec, PolicySpec, PopularSpec, RandomSpec, SoftmaxSpec
from ..errors import ConfigError

__all__ = ["SlatePolicy"]


class SlatePolicy:
    """Fills a placement's slots from item scores, with a propensity per slot.

    The exploration pool is the top ``pool`` items by score (epsilon-greedy, softmax); for the
    uniform (random) policy it is every eligible item. Items outside the pool have propensity 0
    under this policy (deterministic given the scores), which offline evaluation must respect.

    Parameters
    ----------
    spec
        One of the ranking policy specs.

    Examples
    --------
    >>> from decisioner._kernels.rng import seed_state
    >>> pol = SlatePolicy(EpsilonGreedySpec(epsilon=0.0, pool=3))
    >>> idx, prop = pol.select(np.array([0.1, 0.9, -np.inf, 0.5]), 2, seed_state(0))
    >>> idx.tolist(), prop.tolist()
    ([1, 3], [1.0, 1.0])
    """

    def __init__(self, spec: PolicySpec) -> None:
        self.spec = spec
        if isinstance(spec, EpsilonGreedySpec):
            self.mode, self.param, self.pool = B.MODE_EPSILON, float(spec.epsilon), spec.pool
        elif isinstance(spec, SoftmaxSpec):
            self.mode, self.param, self.pool = B.MODE_SOFTMAX, float(spec.temperature), spec.pool
        elif isinstance(spec, (GreedySpec, PopularSpec)):
            self.mode, self.param, self.pool = B.MODE_GREEDY, 0.0, 0
        elif isinstance(spec, RandomSpec):
            self.mode, self.param, self.pool = B.MODE_UNIFORM, 0.0, -1
        else:
            raise ConfigError(f"expected a ranking policy, got `{type(spec).__name__}`")

    @property
    def name(self) -> str:
        return str(type(self.spec).__struct_config__.tag)

    def select(self, scores: np.ndarray, n_slots: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Item indices (int64) and per-slot propensities (float64) for up to ``n_slots`` slots."""
        if self.mode == B.MODE_UNIFORM:
            pool = np.flatnonzero(np.isfinite(scores)).astype(np.int64)
        else:
            k = max(self.pool, n_slots)
            pool = np.empty(k, dtype=np.int64)
            pool = pool[: T.top_k(scores, k, pool)]
        pool_scores = np.ascontiguousarray(scores[pool], dtype=np.float64)
        out_idx = np.empty(n_slots, dtype=np.int64)
        out_prop = np.empty(n_slots, dtype=np.float64)
        n = B.rank_slate(pool, pool_scores, pool.shape[0], n_slots, self.mode, self.param, state, out_idx, out_prop)
        return out_idx[:n], out_prop[:n]
