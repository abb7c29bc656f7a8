"""EngagementStore: each profile's engagement inputs and tier (``[engagement]``).

A profile row holds five columns (33 bytes), grown by doubling with the other row-keyed stores:

* ``last_`` (int64): event time of the newest counted event (0: none; the row has no tier);
* ``freq_`` (float64): the decayed count of counted events, as of ``last_``;
* ``value_`` (float64): the decayed sum of purchase values (returns subtract), as of ``last_``;
* ``spend_`` (float64): the plain sum of the same values (what the tier report averages);
* ``tier_`` (uint8): the tier code as of ``last_`` (:data:`NO_TIER`: none), into :attr:`names`.

**Event time, never the wall clock.** Both decayed sums are kept at the time ``last_``: a new
event at ``t >= last_`` decays them to ``t`` and adds; an older event (out of order) adds its
weight decayed to ``last_``. So the state depends on the events, not their arrival order,
and a replay rebuilds it exactly.

**A stored tier is the tier at the row's last event**, when recency is 0. Recency grows and
the decayed sums shrink while nothing happens, so a tier is only meaningful at a time:
:meth:`EngagementStore.tier_at` (one row) and :meth:`EngagementStore.tiers` (every row, one
numpy pass) compute it at ``now`` from the stored inputs without changing anything. A read
never writes ``tier_``: the segment language reads ``tiers(now)`` (or ``tier_`` when "as of
the last event" is what it means).

**What counts.** Every event type except ``exclude_types`` counts for recency and frequency,
and only with the person's personalization consent on the event's channel (engagement tiers
are profiling); purchases with a ``value`` add it, returns subtract theirs.

**Merges** decay both rows to the later ``last_`` and add (frequency, value, spend), then
recompute the tier; erasure, eviction, a split-off piece and the anonymous scratch row clear
rows. The report (:meth:`EngagementStore.report`) counts live tiered profiles per tier at a
time and compares each tier's mean spend with the mean over every tiered profile (the
"+23% / -13%" view).

>>> from decisioner.config import EngagementSpec
>>> store = EngagementStore(EngagementSpec(enabled=True), capacity=2)
>>> store.ensure(2)
>>> day = 86_400_000
>>> for k in range(4):
...     store.update(0, 1_700_000_000_000 + k * day, value=10.0 if k == 3 else 0.0)
>>> store.names[store.tier_[0]], store.names[store.tier_at(0, 1_700_000_000_000 + 13 * day)]
('engaged', 'indifferent')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import numpy as np

from . import arguments
from .config import DAY_MS
from .errors import NotReadyError
from .rows import doubled, grown
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .config import EngagementSpec
    from .identity import IdentityGraph

__all__ = ["EngagementStore", "NO_TIER", "TierColumn", "tier_report"]

#: the tier code of a row with no counted event (no tier)
NO_TIER: Final = 255
_LN2: Final = float(np.log(2.0))


class EngagementStore:
    """Engagement inputs and tiers by profile row (see the module docstring).

    Parameters
    ----------
    spec
        The ``[engagement]`` section; with ``enabled`` False every call returns at once.
    capacity
        Initial number of rows.
    """

    _ARRAYS: Final = ("last_", "freq_", "value_", "spend_", "tier_")

    def __init__(self, spec: EngagementSpec, *, capacity: int = 1024) -> None:
        self.spec = spec
        self.active = spec.enabled
        #: tier names in code order
        self.names = spec.names
        self.excluded = frozenset(spec.exclude_types)
        self._hf = spec.frequency_half_life_days * DAY_MS
        self._hv = spec.value_half_life_days * DAY_MS
        inf = float("inf")
        self._bounds = [
            (inf if t.max_recency_days is None else t.max_recency_days,
             -inf if t.min_frequency is None else t.min_frequency,
             -inf if t.min_value is None else t.min_value)
            for t in spec.tiers[:-1]
        ]
        cap = max(1, capacity) if self.active else 1
        self.last_ = np.zeros(cap, dtype=np.int64)
        self.freq_ = np.zeros(cap, dtype=np.float64)
        self.value_ = np.zeros(cap, dtype=np.float64)
        self.spend_ = np.zeros(cap, dtype=np.float64)
        self.tier_ = np.full(cap, NO_TIER, dtype=np.uint8)

    @property
    def n_rows(self) -> int:
        return int(self.last_.shape[0])

    def ensure(self, n_rows: int) -> None:
        """Grow (by doubling) so rows ``0 .. n_rows - 1`` exist."""
        if not self.active:
            return
        if n_rows <= self.n_rows:
            return
        cap = doubled(self.n_rows, n_rows)
        for name in self._ARRAYS:
            setattr(self, name, grown(getattr(self, name), cap, NO_TIER if name == "tier_" else 0))

    def clear(self, rows: int | np.ndarray | list[int]) -> None:
        """Forget rows (erasure, eviction, a new profile, a split-off piece, the scratch row)."""
        if not self.active:
            return
        self.last_[rows] = 0
        self.freq_[rows] = 0.0
        self.value_[rows] = 0.0
        self.spend_[rows] = 0.0
        self.tier_[rows] = NO_TIER

    # ------------------------------------------------------------------ updates
    def counts(self, event_type: str) -> bool:
        """Whether events of ``event_type`` count as engagement."""
        return self.active and event_type not in self.excluded

    def update(self, row: int, time: int, *, value: float = 0.0) -> None:
        """One counted event of ``row`` at event ``time`` carrying purchase ``value`` (negative
        for a return); recomputes the row's tier as of its last event."""
        # Python floats, one read and one write per column: numpy scalar arithmetic costs 3x
        last = int(self.last_[row])
        f, v = float(self.freq_[row]), float(self.value_[row])
        if last == 0 or time >= last:
            dt = time - last if last else 0
            if dt:
                f *= 2.0 ** (-dt / self._hf)
                v *= 2.0 ** (-dt / self._hv)
            f, v = f + 1.0, v + value
            self.last_[row] = time
        else:  # an older event: its weight decayed to the row's time
            dt = last - time
            f += 2.0 ** (-dt / self._hf)
            v += value * 2.0 ** (-dt / self._hv)
        self.freq_[row], self.value_[row] = f, v
        if value:
            self.spend_[row] += value
        self.tier_[row] = self._tier(0.0, f, v)

    def merge(self, dst: int, src: int) -> None:
        """Fold row ``src`` into ``dst`` (both decayed to the later time, then added); ``src`` is cleared."""
        if not self.active:
            return
        ls, ld = int(self.last_[src]), int(self.last_[dst])
        if ls:
            t = max(ls, ld)
            fd, vd = self._decayed(dst, t)
            fs, vs = self._decayed(src, t)
            self.freq_[dst], self.value_[dst], self.last_[dst] = fd + fs, vd + vs, t
            self.spend_[dst] += self.spend_[src]
            self.tier_[dst] = self._tier(0.0, fd + fs, vd + vs)
        self.clear(src)

    def _decayed(self, row: int, now: int) -> tuple[float, float]:
        last = int(self.last_[row])
        if last == 0:
            return 0.0, 0.0
        dt = max(0, now - last)
        return float(self.freq_[row]) * 2.0 ** (-dt / self._hf), float(self.value_[row]) * 2.0 ** (-dt / self._hv)

    def _tier(self, recency_days: float, freq: float, value: float) -> int:
        for code, (r, f, v) in enumerate(self._bounds):
            if recency_days <= r and freq >= f and value >= v:
                return code
        return len(self._bounds)

    # ------------------------------------------------------------------ reading
    def inputs_at(self, row: int, now: int) -> tuple[float, float, float] | None:
        """(recency in days, frequency, value) of ``row`` at event time ``now`` (None: no counted event)."""
        if not self.active or not 0 <= row < self.n_rows or self.last_[row] == 0:
            return None
        f, v = self._decayed(row, now)
        return max(0, now - int(self.last_[row])) / DAY_MS, f, v

    def tier_at(self, row: int, now: int) -> int:
        """The tier code of ``row`` at event time ``now`` (:data:`NO_TIER`: no counted event)."""
        x = self.inputs_at(row, now)
        return NO_TIER if x is None else self._tier(*x)

    def tiers(self, now: int, rows: int | None = None) -> np.ndarray:
        """The tier code (uint8) of rows ``0 .. rows - 1`` (default: every row) at event time
        ``now``, in one vectorised pass; :data:`NO_TIER` where there is no counted event."""
        n = self.n_rows if rows is None else min(rows, self.n_rows)
        last = self.last_[:n]
        has = last > 0
        dt = np.maximum(0, now - last).astype(np.float64)
        rec = dt / DAY_MS
        f = self.freq_[:n] * np.exp2(-dt / self._hf)
        v = self.value_[:n] * np.exp2(-dt / self._hv)
        out = np.full(n, len(self._bounds), dtype=np.uint8)
        todo = has.copy()
        for code, (r, fmin, vmin) in enumerate(self._bounds):
            hit = todo & (rec <= r) & (f >= fmin) & (v >= vmin)
            out[hit] = code
            todo &= ~hit
        out[~has] = NO_TIER
        return out

    def export(self, row: int, now: int) -> dict[str, Any] | None:
        """What an access export shows: the tier and its inputs at ``now``, and the spend held."""
        x = self.inputs_at(row, now)
        if x is None:
            return None
        return {
            "tier": self.names[self._tier(*x)], "as_of": now, "recency_days": x[0], "frequency": x[1],
            "value": x[2], "spend": float(self.spend_[row]), "last_event": int(self.last_[row]),
        }

    def report(self, now: int, live: np.ndarray) -> dict[str, Any]:
        """People per tier at ``now`` among the ``live`` rows (bool mask over the first rows),
        their share, mean spend and value index (mean spend against the mean of every tiered
        profile, as a fraction: 0.23 is "+23%")."""
        codes = self.tiers(now, live.shape[0])
        keep = live[: codes.shape[0]] & (codes != NO_TIER)
        c = codes[keep]
        spend = self.spend_[: codes.shape[0]][keep]
        total = int(c.shape[0])
        mean_all = float(spend.mean()) if total else 0.0
        tiers = []
        for code, name in enumerate(self.names):
            m = c == code
            n = int(m.sum())
            mean = float(spend[m].mean()) if n else 0.0
            tiers.append({
                "tier": name, "people": n, "share": n / total if total else 0.0, "mean_value": mean,
                "value_index": mean / mean_all - 1.0 if n and mean_all else None,
            })
        return {"now": now, "people": total, "mean_value": mean_all, "tiers": tiers}

    # ------------------------------------------------------------------ state
    def _shape(self) -> dict[str, Any]:
        s = self.spec
        return {
            "enabled": s.enabled,
            "tiers": [[t.name, t.max_recency_days, t.min_frequency, t.min_value] for t in s.tiers],
            "half_lives": [s.frequency_half_life_days, s.value_half_life_days], "exclude": sorted(self.excluded),
        }

    def to_state(self) -> ComponentState:
        """Every row's columns and the spec they were computed with."""
        return {n.rstrip("_"): getattr(self, n) for n in self._ARRAYS}, {"spec": self._shape()}

    def load_state(self, state: ComponentState) -> None:
        """Replace every row with a state from :meth:`to_state` of a store with the same spec.

        Raises
        ------
        NotReadyError
            If the state was computed with other tiers, half-lives or counted types.
        """
        arrays, meta = state
        if meta.get("spec") != self._shape():
            raise NotReadyError(
                f"expected engagement state for {self._shape()!r}, got {meta.get('spec')!r} - at `engagement`"
            )
        for n in self._ARRAYS:
            setattr(self, n, np.array(arrays[n.rstrip("_")], dtype=getattr(self, n).dtype))

    def nbytes_per_profile(self) -> int:
        return int(sum(getattr(self, n)[0:1].nbytes for n in self._ARRAYS)) if self.active else 0


def tier_report(store: EngagementStore, identity: IdentityGraph, now: Any) -> dict[str, Any]:
    """:meth:`EngagementStore.report` at event time ``now`` over the live profiles of ``identity``:
    ``now``, ``people`` (tiered profiles), ``mean_value`` and ``tiers`` (per tier: ``tier``,
    ``people``, ``share``, ``mean_value``, ``value_index``: 0.23 means +23% against the mean).

    Raises
    ------
    SchemaError
        If ``now`` is not epoch milliseconds.
    NotReadyError
        If engagement is off (``[engagement] enabled = false``).
    """
    now = arguments.epoch_ms(now, "now")
    if not store.active:
        raise NotReadyError(
            "Expected engagement tiers on (`[engagement] enabled = true`), got them off - at `engagement`"
        )
    return store.report(now, identity.rows_["root"][: identity.n_rows] >= 0)


class TierColumn:
    """The engagement tier as a category column of the segment language (``tier == "engaged"``,
    audiences ``by="tier"``): the tier at the evaluation time ``now``, -1 where there is none."""

    def __init__(self, store: EngagementStore) -> None:
        self.store = store

    def vocabulary(self) -> list[str]:
        return list(self.store.names)

    def codes_many(self, n: int, now: int) -> np.ndarray:
        out = np.full(n, -1, dtype=np.int32)
        if self.store.active and n:
            t = self.store.tiers(now, n)
            out[: t.shape[0]] = np.where(t == NO_TIER, -1, t)
        return out

    def code_one(self, row: int, now: int) -> int:
        code = self.store.tier_at(row, now) if self.store.active else NO_TIER
        return -1 if code == NO_TIER else int(code)
