"""ProfileStore: per-profile decayed affinity, recent purchases and activity.

Each profile is a fixed-size row across a few arrays (so it can travel as one blob):
``fid_``/``score_`` (K affinity slots), ``t_`` (time the slots are decayed to),
``purchased_`` (ring of the last R purchased item indices), ``purchased_pos_``, ``last_seen_``,
``events_``, and ``recent_item_``/``recent_t_`` (the items the person touched last, with the event
time of the latest touch: the ranking features' recency of an item and of its facets).
Consent has a store of its own (:mod:`decisioner.consent.store`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from ._kernels import affinity as A
from .config import DAY_MS
from .errors import NotReadyError
from .rows import doubled, grown
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .catalog import Catalog
    from .config import ProfileSpec

__all__ = ["idle_rows", "ProfileStore"]


def half_lives(spec: ProfileSpec, catalog: Catalog) -> np.ndarray:
    """The decay half-life of each facet value of ``catalog`` in ms (float64[n_fv], ``[1.0]`` for
    a catalog without facet values): its facet's in ``spec.facet_half_life_days``, else
    ``spec.half_life_days``."""
    hl = {f: spec.facet_half_life_days.get(f, spec.half_life_days) * DAY_MS for f in catalog.facet_names}
    fv_hl = [hl[catalog.facet_names[f]] for f in catalog.fv_facet] if catalog.n_fv else [1.0]
    return np.array(fv_hl, dtype=np.float64)


class ProfileStore:
    """Struct-of-arrays profile state, grown by doubling.

    Parameters
    ----------
    slots
        Affinity slots per profile (K).
    purchased_slots
        Recent purchases remembered per profile (R), for "exclude already purchased".
    capacity
        Initial number of rows.
    recent_slots
        Recently touched items remembered per profile, with their latest event time (the
        oldest is replaced first).

    Examples
    --------
    >>> import numpy as np
    >>> store = ProfileStore(slots=4, capacity=2)
    >>> store.ensure(1)
    >>> hl = np.full(3, 86_400_000.0)
    >>> store.update(0, np.array([2], np.int32), np.array([1.0]), 0, hl)
    >>> store.update(0, np.array([2], np.int32), np.array([1.0]), 86_400_000, hl)
    >>> store.read(0, 86_400_000, hl)
    (array([2], dtype=int32), array([1.5]))
    """

    def __init__(
        self,
        *,
        slots: int = 24,
        purchased_slots: int = 8,
        capacity: int = 1024,
        recent_slots: int = 8,
        journey_slots: int = 8,
    ) -> None:
        self.slots = slots
        self.purchased_slots = purchased_slots
        self.capacity = capacity
        self.recent_slots = recent_slots
        cap = max(1, capacity)
        self.fid_ = np.full((cap, slots), -1, dtype=np.int32)
        self.score_ = np.zeros((cap, slots), dtype=np.float32)
        self.t_ = np.zeros(cap, dtype=np.int64)
        self.purchased_ = np.full((cap, max(1, purchased_slots)), -1, dtype=np.int32)
        self.purchased_pos_ = np.zeros(cap, dtype=np.int32)
        self.last_seen_ = np.zeros(cap, dtype=np.int64)
        self.events_ = np.zeros(cap, dtype=np.int64)
        self.recent_item_ = np.full((cap, max(1, recent_slots)), -1, dtype=np.int32)
        self.recent_t_ = np.zeros((cap, max(1, recent_slots)), dtype=np.int64)
        self.journey_slots = journey_slots
        j = max(1, journey_slots)
        self.journey_t_ = np.zeros((cap, j), dtype=np.int64)  # 0: an empty slot
        self.journey_kind_ = np.zeros((cap, j), dtype=np.int8)  # event type code (schemas.EVENT_TYPES)
        self.journey_channel_ = np.zeros((cap, j), dtype=np.int8)  # consent channel index
        self.journey_item_ = np.full((cap, j), -1, dtype=np.int32)
        self.journey_pos_ = np.zeros(cap, dtype=np.int16)  # the slot the next touchpoint takes
        self._out_fid = np.empty(slots, dtype=np.int32)
        self._out_score = np.empty(slots, dtype=np.float64)

    _ARRAYS: Final = (
        "fid_", "score_", "t_", "purchased_", "purchased_pos_", "last_seen_", "events_", "recent_item_", "recent_t_",
        "journey_t_", "journey_kind_", "journey_channel_", "journey_item_", "journey_pos_",
    )
    #: arrays a snapshot written before they existed lacks (filled as for a new profile)
    _ADDED: Final = (
        "recent_item_", "recent_t_", "journey_t_", "journey_kind_", "journey_channel_", "journey_item_",
        "journey_pos_",
    )
    _FILL: Final = {"fid_": -1, "purchased_": -1, "recent_item_": -1, "journey_item_": -1}

    @classmethod
    def from_spec(cls, spec: ProfileSpec) -> ProfileStore:
        """A store with the slots and purchase slots of ``spec``."""
        return cls(slots=spec.slots, purchased_slots=spec.purchased_slots, recent_slots=spec.recent_slots,
                   journey_slots=spec.journey_slots)

    @property
    def n_rows(self) -> int:
        return int(self.t_.shape[0])

    def ensure(self, n_rows: int) -> None:
        """Grow (by doubling) so rows ``0 .. n_rows - 1`` exist."""
        if n_rows <= self.t_.shape[0]:
            return
        cap = doubled(self.t_.shape[0], n_rows)
        for name in self._ARRAYS:
            setattr(self, name, grown(getattr(self, name), cap, self._FILL.get(name, 0)))

    def clear(self, row: int | np.ndarray) -> None:
        """Reset a row (or an int array of rows, in one pass) to the state of a new profile."""
        self.fid_[row] = -1
        self.score_[row] = 0.0
        self.t_[row] = 0
        self.purchased_[row] = -1
        self.purchased_pos_[row] = 0
        self.last_seen_[row] = 0
        self.events_[row] = 0
        self.recent_item_[row] = -1
        self.recent_t_[row] = 0
        self.journey_t_[row] = 0
        self.journey_kind_[row] = 0
        self.journey_channel_[row] = 0
        self.journey_item_[row] = -1
        self.journey_pos_[row] = 0

    def update(self, row: int, fvs: np.ndarray, weights: np.ndarray, now: int, half_lives: np.ndarray) -> None:
        """Add decayed interest in facet values ``fvs`` (int32) with ``weights`` (float64)."""
        A.affinity_update(self.fid_, self.score_, self.t_, row, fvs, weights, now, half_lives)

    def read(self, row: int, now: int, half_lives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Live affinities of ``row`` decayed to ``now``, highest first: (fids int32, scores float64)."""
        n = A.affinity_read(self.fid_, self.score_, self.t_, row, now, half_lives, self._out_fid, self._out_score)
        return self._out_fid[:n].copy(), self._out_score[:n].copy()

    def read_copy(self, row: int, now: int, half_lives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`read` into fresh buffers: safe for concurrent readers (``read`` reuses one
        scratch buffer and is for the writer only)."""
        out_fid = np.empty(self.slots, dtype=np.int32)
        out_score = np.empty(self.slots, dtype=np.float64)
        n = A.affinity_read(self.fid_, self.score_, self.t_, row, now, half_lives, out_fid, out_score)
        return out_fid[:n], out_score[:n]

    def touch(self, row: int, now: int) -> None:
        """Record activity at event time ``now``."""
        if now > self.last_seen_[row]:
            self.last_seen_[row] = now
        self.events_[row] += 1

    def add_purchase(self, row: int, item: int) -> None:
        """Remember ``item`` in the row's ring of recent purchases."""
        if self.purchased_slots == 0:
            return
        ring = self.purchased_[row]
        if item in ring:
            return
        pos = int(self.purchased_pos_[row])
        ring[pos % self.purchased_slots] = item
        self.purchased_pos_[row] = (pos + 1) % self.purchased_slots

    def add_recent(self, row: int, item: int, now: int) -> None:
        """Remember that the person touched ``item`` at event time ``now``: its time moves to the
        later of the two if it is held, else it replaces the oldest slot (an empty one first)."""
        if self.recent_slots == 0:
            return
        # a handful of slots: Python lists beat numpy calls on arrays this small (it runs per event)
        held = self.recent_item_[row].tolist()
        t = self.recent_t_[row].tolist()
        if item in held:
            k = held.index(item)
            if now > t[k]:
                self.recent_t_[row, k] = now
            return
        if -1 in held:
            k = held.index(-1)
        else:
            k = t.index(min(t))  # the oldest (the first of equals, as argmin)
            if not now > t[k]:
                return
        self.recent_item_[row, k] = item
        self.recent_t_[row, k] = now

    def add_touch(self, row: int, now: int, kind: int, channel: int, item: int) -> None:
        """Remember a touchpoint of the person (event type code ``kind`` on consent channel
        ``channel`` at ``now``, about ``item`` or -1) in the row's ring of the last
        ``journey_slots``; the oldest goes."""
        if self.journey_slots == 0:
            return
        k = int(self.journey_pos_[row])
        self.journey_t_[row, k] = now
        self.journey_kind_[row, k] = kind
        self.journey_channel_[row, k] = channel
        self.journey_item_[row, k] = item
        self.journey_pos_[row] = (k + 1) % self.journey_slots

    def journey(self, row: int) -> list[tuple[int, int, int, int]]:
        """The row's touchpoints ``(time, kind, channel, item)``, newest first (ties: the later
        recorded first)."""
        if self.journey_slots == 0:
            return []
        n = self.journey_slots
        k = int(self.journey_pos_[row])
        order = [(k - 1 - j) % n for j in range(n)]  # newest recorded first
        t, kd, ch, it = (a[row].tolist() for a in (self.journey_t_, self.journey_kind_, self.journey_channel_,
                                                    self.journey_item_))
        out = [(t[j], kd[j], ch[j], it[j]) for j in order if t[j] != 0]
        return sorted(out, key=lambda x: -x[0])

    def _merge_journey(self, dst: int, src: int) -> None:
        both = self.journey(dst) + self.journey(src)
        keep = sorted(both, key=lambda x: x[0])[-self.journey_slots:] if self.journey_slots else []
        self.journey_t_[dst] = 0
        self.journey_kind_[dst] = 0
        self.journey_channel_[dst] = 0
        self.journey_item_[dst] = -1
        self.journey_pos_[dst] = 0
        for t, kd, ch, it in keep:  # oldest first, so the ring's order is time order
            self.add_touch(dst, t, kd, ch, it)

    def recent(self, row: int) -> list[tuple[int, int]]:
        """The recently touched items of ``row`` with their latest event time, newest first."""
        pairs = [(int(i), int(t)) for i, t in zip(self.recent_item_[row].tolist(), self.recent_t_[row].tolist())
                 if i >= 0]
        return sorted(pairs, key=lambda p: (-p[1], p[0]))

    def purchased(self, row: int) -> np.ndarray:
        """Recent purchases of ``row`` (int32, -1 padded)."""
        ring: np.ndarray = self.purchased_[row]
        return ring

    def merge(self, dst: int, src: int, half_lives: np.ndarray) -> None:
        """Fold ``src`` into ``dst``: affinities added with decay, purchases united, activity
        summed; ``src`` is reset."""
        A.affinity_merge(self.fid_, self.score_, self.t_, dst, src, half_lives)
        for item in self.purchased_[src]:
            if item >= 0:
                self.add_purchase(dst, int(item))
        self.last_seen_[dst] = max(self.last_seen_[dst], self.last_seen_[src])
        self.events_[dst] += self.events_[src]
        for item, t in self.recent(src):
            self.add_recent(dst, item, t)
        self._merge_journey(dst, src)
        self.clear(src)

    def to_state(self) -> ComponentState:
        """Every row's arrays (the state a snapshot holds), and the shape parameters."""
        return {n.rstrip("_"): getattr(self, n) for n in self._ARRAYS}, {
            "slots": self.slots, "purchased_slots": self.purchased_slots, "recent_slots": self.recent_slots,
            "journey_slots": self.journey_slots,
        }

    def load_state(self, state: ComponentState) -> None:
        """Replace every row with a state from :meth:`to_state` of a store of the same shape.
        A snapshot written before the recent items existed loads with none remembered.

        Raises
        ------
        NotReadyError
            If the state was written for another number of slots.
        """
        arrays, meta = state
        recent = meta.get("recent_slots", self.recent_slots)  # absent: written before recent items existed
        journey = meta.get("journey_slots", self.journey_slots)  # absent: written before the journey
        if (meta.get("slots"), meta.get("purchased_slots"), recent, journey) != (
            self.slots, self.purchased_slots, self.recent_slots, self.journey_slots
        ):
            raise NotReadyError(
                f"expected profile state with {self.slots} slots, {self.purchased_slots} purchases, "
                f"{self.recent_slots} recent items and {self.journey_slots} touchpoints, got {meta.get('slots')}, "
                f"{meta.get('purchased_slots')}, {recent} and {journey} - at `profiles`"
            )
        rows = int(np.asarray(arrays["t"]).shape[0])
        for n in self._ARRAYS:
            old = getattr(self, n)
            key = n.rstrip("_")
            if key not in arrays and n in self._ADDED:
                new = np.full((rows, *old.shape[1:]), self._FILL.get(n, 0), dtype=old.dtype)
            else:
                new = np.array(arrays[key], dtype=old.dtype)
            setattr(self, n, new)

    def nbytes_per_profile(self) -> int:
        return int(sum(getattr(self, n)[0:1].nbytes for n in self._ARRAYS))


def idle_rows(root: np.ndarray, last_seen: np.ndarray, n: int, *, keep: int) -> np.ndarray:
    """The ``n`` live rows idle longest (oldest ``last_seen``; ties: lowest row), never ``keep``.

    ``root`` int[rows] is the identity graph's row table (< 0: no live profile). Exact and
    deterministic in the state, so a log replay selects the same rows; a strided sample's
    quantile narrows the candidates first, so the cost follows ``n``, not the population.
    """
    n_rows = root.shape[0]
    seen = last_seen[:n_rows]
    n_live = int(np.count_nonzero(root >= 0))
    step = max(1, n_rows // 8192)
    sample = seen[::step][root[::step] >= 0]
    live = None
    if sample.shape[0] and 4 * n < n_live:
        thr = np.quantile(sample, min(1.0, 2.0 * n / n_live + 0.002), method="higher")
        live = np.flatnonzero((seen <= thr) & (root >= 0))
        live = live[live != keep]
        if live.shape[0] < n:
            live = None
    if live is None:
        live = np.flatnonzero(root >= 0)
        live = live[live != keep]
    n = min(n, live.shape[0])
    if n < live.shape[0]:
        cand = seen[live]
        kth = np.partition(cand, n - 1)[n - 1]
        below = live[cand < kth]
        return np.concatenate([below, live[cand == kth][: n - below.shape[0]]])
    return live
