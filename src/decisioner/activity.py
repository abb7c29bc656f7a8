"""ActivityStore: per-profile recency and frequency of counted event types.

For the segment functions ``days_since("purchase")`` and ``count("email_open", days=30)``
(:mod:`decisioner.segments`), each profile row keeps, for each type in ``activity.types``
(:class:`~decisioner.config.ActivitySpec`), the time of its newest event and a ring of
``buckets`` counts of ``bucket_days`` each (layout in :mod:`decisioner._kernels.activity`).

**Exact semantics** (which ``tests/reference.py`` mirrors with plain event lists):

* an event of a counted type at time ``t`` falls in bucket ``t // bucket_ms``; a row holds the
  ``buckets`` buckets up to its newest one (over every type); older events are not counted;
* ``days_since(type)`` at ``now`` is ``(now - last) / DAY_MS`` (float days; +inf when the row
  never had one, so ``days_since(...) <= 30`` is false and ``> 30`` true for such a person);
* ``count(type, days=N)`` at ``now`` is the number of held events of ``type`` whose bucket is
  one of the ``ceil(N / bucket_days)`` buckets ending with the bucket of ``now`` (so with daily
  buckets, ``days=30`` counts today and the 29 days before, whole days).

**Consent.** Activity is profiling for targeting: an event is counted only when the person
allows ``personalization`` on the channel it counts on (as interests and attributes from
events); an anonymous or suppressed event counts nothing.

**Merges** add the counts of the buckets the newer head holds and keep the newest times;
erasure, eviction, a new profile and the anonymous scratch row clear rows; a split leaves the
state with the profile that keeps it. Memory: ``len(types) * (8 + 2 * buckets) + 4`` bytes a
profile.

>>> from decisioner.config import ActivitySpec
>>> store = ActivityStore(ActivitySpec(types=("purchase",), buckets=4), capacity=1)
>>> store.record(0, "purchase", 3 * 86_400_000)
>>> store.record(0, "purchase", 5 * 86_400_000)
>>> store.days_since_one(0, "purchase", 6 * 86_400_000), store.count_one(0, "purchase", 2, 6 * 86_400_000)
(1.0, 1.0)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ._kernels import activity as K
from .config import DAY_MS
from .errors import NotReadyError
from .rows import doubled, grown
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .config import ActivitySpec

__all__ = ["ActivityStore"]

_ONE: Final = np.empty(1, dtype=np.float64)


class ActivityStore:
    """Last event time and windowed counts per counted event type, by profile row.

    Parameters
    ----------
    spec
        Counted types, bucket width and number of buckets.
    capacity
        Initial number of rows.
    """

    def __init__(self, spec: ActivitySpec, *, capacity: int = 1024) -> None:
        self.spec = spec
        self.capacity = capacity
        self.types = list(spec.types)
        self.type_index = {t: i for i, t in enumerate(self.types)}
        #: whether any type is counted: without one, every call returns at once
        self.active = bool(self.types)
        self.bucket_ms = spec.bucket_days * DAY_MS
        cap = max(1, capacity)
        nt = max(1, len(self.types))
        self.last_ = np.zeros((cap, nt), dtype=np.int64)
        self.ring_ = np.zeros((cap, nt, spec.buckets), dtype=np.uint16)
        self.head_ = np.full(cap, -1, dtype=np.int32)

    @property
    def n_rows(self) -> int:
        return int(self.head_.shape[0])

    def ensure(self, n_rows: int) -> None:
        """Grow (by doubling) so rows ``0 .. n_rows - 1`` exist."""
        if n_rows <= self.head_.shape[0] or not self.active:
            return
        cap = doubled(self.head_.shape[0], n_rows)
        for name, fill in (("last_", 0), ("ring_", 0), ("head_", -1)):
            setattr(self, name, grown(getattr(self, name), cap, fill))

    def clear(self, rows: int | np.ndarray | list[int]) -> None:
        """Forget the activity of a row (or rows): erasure, eviction, a new profile."""
        if not self.active:
            return
        self.last_[rows] = 0
        self.ring_[rows] = 0
        self.head_[rows] = -1

    def record(self, row: int, event_type: str, time: int) -> None:
        """Count one event of ``event_type`` at ``time`` (types not counted are ignored)."""
        ti = self.type_index.get(event_type, -1)
        if ti >= 0:
            K.activity_record(self.last_, self.ring_, self.head_, row, ti, time, self.bucket_ms)

    def merge(self, dst: int, src: int) -> None:
        """Fold ``src`` into ``dst`` (identity merge); ``src`` is cleared."""
        if self.active:
            K.activity_merge(self.last_, self.ring_, self.head_, dst, src)

    # ------------------------------------------------------------------ reading
    def window_buckets(self, days: float) -> int:
        """Buckets a window of ``days`` covers."""
        return max(1, math.ceil(days / self.spec.bucket_days))

    def days_since_one(self, row: int, event_type: str, now: int) -> float:
        last = int(self.last_[row, self.type_index[event_type]])
        return math.inf if last == 0 else (now - last) / DAY_MS

    def days_since_many(self, event_type: str, now: int, n: int) -> np.ndarray:
        """``days_since`` of rows ``0 .. n - 1`` (float64)."""
        last = self.last_[:n, self.type_index[event_type]]
        out = (now - last).astype(np.float64) / DAY_MS
        out[last == 0] = math.inf
        return out

    def count_one(self, row: int, event_type: str, nb: int, now: int) -> float:
        K.activity_count(self.ring_[row : row + 1], self.head_[row : row + 1], self.type_index[event_type],
                         now // self.bucket_ms, nb, _ONE)
        return float(_ONE[0])

    def count_many(self, event_type: str, nb: int, now: int, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.float64)
        K.activity_count(self.ring_[:n], self.head_[:n], self.type_index[event_type], now // self.bucket_ms, nb, out)
        return out

    def export(self, row: int, now: int | None = None) -> dict[str, Any]:
        """The row's activity by type: the last time and the counts per held bucket (oldest first)."""
        if not self.active or row >= self.n_rows:
            return {}
        h, B = int(self.head_[row]), self.spec.buckets
        out: dict[str, Any] = {}
        for t, ti in self.type_index.items():
            last = int(self.last_[row, ti])
            counts = [int(self.ring_[row, ti, d % B]) for d in range(h - B + 1, h + 1)] if h >= 0 else []
            if last == 0 and not any(counts):
                continue
            out[t] = {"last": last, "buckets_from": (h - B + 1) * self.bucket_ms if h >= 0 else None, "counts": counts}
        return out

    # ------------------------------------------------------------------ state
    def to_state(self) -> ComponentState:
        return {"last": self.last_, "ring": self.ring_, "head": self.head_}, {
            "types": self.types, "bucket_days": self.spec.bucket_days, "buckets": self.spec.buckets,
        }

    def load_state(self, state: ComponentState) -> None:
        """Restore :meth:`to_state` of a store with the same types and buckets.

        Raises
        ------
        NotReadyError
            If the state was written for other types or buckets.
        """
        arrays, meta = state
        want = {"types": self.types, "bucket_days": self.spec.bucket_days, "buckets": self.spec.buckets}
        got = {k: (list(meta.get(k) or []) if k == "types" else meta.get(k)) for k in want}
        if got != want:
            raise NotReadyError(f"expected activity state for {want}, got {got} - at `activity`")
        self.last_ = np.array(arrays["last"], dtype=np.int64)
        self.ring_ = np.array(arrays["ring"], dtype=np.uint16)
        self.head_ = np.array(arrays["head"], dtype=np.int32)

    def nbytes(self) -> int:
        """Bytes held (every row, grown capacity included)."""
        return int(self.last_.nbytes + self.ring_.nbytes + self.head_.nbytes)

    def nbytes_per_profile(self) -> int:
        if not self.active:
            return 0
        return int(self.last_[0:1].nbytes + self.ring_[0:1].nbytes + self.head_[0:1].nbytes)
