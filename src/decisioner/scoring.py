"""AffinityScorer: affinity . item facets + popularity prior + boosts, then top-K.

The popularity prior is a decayed count per item kept as ``acc_i * 2**(-(t - t_ref)/h)``; only
ratios are used (``pop_i / max pop``), so the common decay factor cancels and an update touches
one item. ``t_ref`` is moved forward before the scale factor could overflow.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from ._kernels import affinity as A
from ._kernels import topk as T
from .catalog import Catalog
from .config import ScoringSpec
from .snapshot import ComponentState

__all__ = ["AffinityScorer", "ItemCounters", "Popularity", "ENGAGEMENTS"]

#: event types that count as an engagement with an item (the numerator of its engagement rate)
ENGAGEMENTS = frozenset({"click", "add_to_cart", "purchase"})

DAY_MS = 86_400_000


class _Decayed(ABC):
    """Counts kept as ``acc * 2**(-(t - t_ref)/h)``: an update at ``now`` adds its weight times
    :meth:`_weight`; ``t_ref`` moves forward (every count shrinking by the same factor,
    :meth:`_shrink`) before ``2**x`` could overflow."""

    half_life_ms: float
    t_ref_: int

    @abstractmethod
    def _shrink(self, f: float) -> None:
        """Scale every held count by ``f`` (each subclass its own arrays)."""

    def _weight(self, now: int) -> float:
        if self.t_ref_ == 0:
            self.t_ref_ = now
        x = (now - self.t_ref_) / self.half_life_ms
        if x > 500.0:  # rebase before 2**x overflows; all counts shrink by the same factor
            self._shrink(math.pow(2.0, -x))
            self.t_ref_ = now
            x = 0.0
        return math.pow(2.0, x)


class Popularity(_Decayed):
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

    def _shrink(self, f: float) -> None:
        self.acc_ *= f
        self.max_ *= f

    def add(self, item: int, weight: float, now: int) -> None:
        """Count ``weight`` for ``item`` at event time ``now`` (ms)."""
        v = self.acc_[item] + weight * self._weight(now)
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


class ItemCounters(_Decayed):
    """Decayed interactions and engagements per item, for the ranking features' item click
    rate: ``counts_[i, 0]`` every interaction with item ``i`` (views, clicks, carts, purchases
    ...), ``counts_[i, 1]`` the engagements among them (:data:`ENGAGEMENTS`), both kept as
    ``acc * 2**(-(t - t_ref)/h)`` like :class:`Popularity`, with their totals over every item
    (the prior rate).

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
        self.counts_ = np.zeros((n_items, 2), dtype=np.float64)
        self.totals_ = np.zeros(2, dtype=np.float64)
        self.t_ref_ = 0

    def _shrink(self, f: float) -> None:
        self.counts_ *= f
        self.totals_ *= f

    def add(self, item: int, engaged: bool, now: int) -> None:
        """Count one interaction (and an engagement if ``engaged``) with ``item`` at ``now`` (ms)."""
        w = self._weight(now)
        row = self.counts_[item]
        row[0] += w
        self.totals_[0] += w
        if engaged:
            row[1] += w
            self.totals_[1] += w

    def scale(self, now: int) -> float:
        """The factor turning an accumulator into the decayed count at ``now``."""
        if self.t_ref_ == 0:
            return 0.0
        return math.pow(2.0, -(now - self.t_ref_) / self.half_life_ms)

    def prior_rate(self) -> float:
        """Engagements per interaction over every item (0 before any)."""
        return float(self.totals_[1] / self.totals_[0]) if self.totals_[0] > 0.0 else 0.0

    def to_state(self) -> ComponentState:
        return {"counts": self.counts_, "count_totals": self.totals_}, {"counts_t_ref": self.t_ref_}

    def load_state(self, state: ComponentState) -> None:
        """Load :meth:`to_state`'s arrays; a state written before the counters existed loads as none."""
        arrays, meta = state
        if "counts" not in arrays:
            self.counts_ = np.zeros((self.n_items, 2), dtype=np.float64)
            self.totals_ = np.zeros(2, dtype=np.float64)
            self.t_ref_ = 0
            return
        self.counts_ = np.array(arrays["counts"], dtype=np.float64).reshape(-1, 2)
        self.totals_ = np.array(arrays["count_totals"], dtype=np.float64)
        self.t_ref_ = int(meta["counts_t_ref"])


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
        self.counters_ = ItemCounters(catalog.n_items, half_life_ms=spec.popularity_half_life_days * DAY_MS)
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

    def count(self, item: int, engaged: bool, now: int) -> None:
        """Count an interaction with ``item`` (an engagement if ``engaged``) for the item rates."""
        self.counters_.add(item, engaged, now)

    def to_state(self) -> ComponentState:
        """Popularity and the item counters (one state: the snapshot's ``popularity`` entry)."""
        arrays, meta = self.popularity_.to_state()
        c_arrays, c_meta = self.counters_.to_state()
        return {**arrays, **c_arrays}, {**meta, **c_meta}

    def load_state(self, state: ComponentState) -> None:
        self.popularity_.load_state(state)
        self.counters_.load_state(state)
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
