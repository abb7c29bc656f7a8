"""AffinityScorer: affinity . item facets + popularity prior + boosts, then top-K.

The popularity prior is a decayed count per item kept as ``acc_i * 2**(-(t - t_ref)/h)``; only
ratios are used (``pop_i / max pop``), so the common decay factor cancels and an update touches
one item. ``t_ref`` is moved forward before the scale factor could overflow.
"""

from __future__ import annotations

import math

import numpy as np

from ._kernels import affinity as A
from ._kernels import topk as T
from .catalog import Catalog
from .config import ScoringSpec
from .snapshot import ComponentState

__all__ = ["AffinityScorer", "Popularity"]

DAY_MS = 86_400_000


class Popularity:
    """Decayed event counts per item (views, clicks, carts, purchases weighted).

    Parameters
    ----------
    n_items
        Number of catalog items.
    half_life_ms
        Half-life of a count.
    """

    def __init__(self, n_items: int, *, half_life_ms: float) -> None:
        self.n_items = n_items
        self.half_life_ms = half_life_ms
        self.acc_ = np.zeros(n_items, dtype=np.float64)
        self.t_ref_ = 0
        self.max_ = 0.0

    def add(self, item: int, weight: float, now: int) -> None:
        """Count ``weight`` for ``item`` at event time ``now`` (ms)."""
        if self.t_ref_ == 0:
            self.t_ref_ = now
        x = (now - self.t_ref_) / self.half_life_ms
        if x > 500.0:  # rebase before 2**x overflows; all counts shrink by the same factor
            self.acc_ *= math.pow(2.0, -x)
            self.max_ *= math.pow(2.0, -x)
            self.t_ref_ = now
            x = 0.0
        v = self.acc_[item] + weight * math.pow(2.0, x)
        if v < 0.0:
            v = 0.0
        self.acc_[item] = v
        if v > self.max_:
            self.max_ = v

    def inv_max(self) -> float:
        """``1 / max count`` (0 before any count): the prior of item ``i`` is ``acc_[i] * inv_max()``."""
        return 1.0 / self.max_ if self.max_ > 0.0 else 0.0

    def to_state(self) -> ComponentState:
        return {"acc": self.acc_}, {"t_ref": self.t_ref_, "max": self.max_}

    def load_state(self, state: ComponentState) -> None:
        arrays, meta = state
        self.acc_ = np.array(arrays["acc"], dtype=np.float64)
        self.t_ref_ = int(meta["t_ref"])
        self.max_ = float(meta["max"])

    def normalised(self) -> np.ndarray:
        """Counts divided by the largest one (all zeros before any event)."""
        if self.max_ <= 0.0:
            return np.zeros(self.n_items, dtype=np.float64)
        # times 1/max, as the fused kernels compute the prior (a division can differ in the last bit)
        return self.acc_ * self.inv_max()


class AffinityScorer:
    """Scores catalog items for one profile with the ``score_items`` kernel.

    Parameters
    ----------
    catalog
        The catalog to score.
    spec
        Score-term weights.
    """

    def __init__(self, catalog: Catalog, spec: ScoringSpec = ScoringSpec()) -> None:
        self.catalog = catalog
        self.spec = spec
        self.popularity_ = Popularity(catalog.n_items, half_life_ms=spec.popularity_half_life_days * DAY_MS)
        self._prior = np.zeros(catalog.n_items, dtype=np.float64)
        self._dirty = False
        self._empty_i32 = np.empty(0, dtype=np.int32)

    def prior(self) -> np.ndarray:
        """Normalised popularity (cached until it changes)."""
        if self._dirty:
            self._prior = self.popularity_.normalised()
            self._dirty = False
        return self._prior

    def mark_dirty(self) -> None:
        """Recompute the cached prior on next use (after popularity was replaced)."""
        self._dirty = True

    def add_popularity(self, item: int, weight: float, now: int) -> None:
        self.popularity_.add(item, weight, now)
        self._dirty = True

    def score_one(
        self,
        fids: np.ndarray,
        scores: np.ndarray,
        *,
        eligible: np.ndarray,
        extra: np.ndarray,
        excluded: np.ndarray | None = None,
        affinity_weight: float | None = None,
        prior_weight: float | None = None,
    ) -> tuple[np.ndarray, int]:
        """Scores of every item (float64, -inf where ineligible) and the count of finite ones.

        ``fids``/``scores`` are the profile's live affinities; they are normalised to sum 1 so
        the affinity term is a share of interest, comparable across profiles.
        """
        total = float(scores.sum()) if scores.shape[0] else 0.0
        norm = scores / total if total > 0.0 else scores
        out = np.empty(self.catalog.n_items, dtype=np.float64)
        cat = self.catalog
        n = A.score_items(
            cat.fv_indptr, cat.fv_items, cat.fv_data,
            np.ascontiguousarray(fids, dtype=np.int32), np.ascontiguousarray(norm, dtype=np.float64),
            fids.shape[0],
            float(self.spec.affinity_weight if affinity_weight is None else affinity_weight),
            self.prior(), float(self.spec.popularity_weight if prior_weight is None else prior_weight),
            extra, eligible, self._empty_i32 if excluded is None else excluded, out,
        )
        return out, int(n)

    def to_state(self) -> ComponentState:
        return self.popularity_.to_state()

    def load_state(self, state: ComponentState) -> None:
        self.popularity_.load_state(state)
        self._dirty = True

    def fallback(self, in_stock: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most popular in-stock items (int64) and their prior (a placement's fallback
        when none of its candidates is eligible)."""
        scores = np.where(in_stock != 0, self.prior(), -np.inf)
        idx = self.top(scores, k)
        return idx, scores[idx]

    @staticmethod
    def top(scores: np.ndarray, k: int) -> np.ndarray:
        """Indices of the ``k`` best finite scores, best first (int64)."""
        out = np.empty(max(k, 0), dtype=np.int64)
        n = T.top_k(scores, k, out)
        return out[:n]
