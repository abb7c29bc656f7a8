"""Experiments: deterministic bucketing, sticky variant assignment, ramps, namespaces, a global
holdout and exposure logging.

Bucketing (part of the persisted format; test vectors in ``tests/test_experiments.py``)::

    position(salt, unit) = (xxh3_64(key || salt || 0x1f || unit) >> 11) * 2**-53   in [0, 1)

with the deployment secret ``key`` (:func:`decisioner.hashing.hash_unit`), ``salt`` and
``unit`` UTF-8 encoded. Three independent positions decide a unit's fate:

* the **holdout** position under the holdout salt: below ``fraction`` -> holdout (default
  content everywhere, no experiment);
* the **namespace** position under the salt ``"namespace:" + name`` (so it is independent of
  the variant position even when the namespace and the experiment share a name): an
  experiment enrols the units whose
  position falls in ``[start, start + traffic * (end - start))`` of its ``segment``, so
  experiments with disjoint segments of one namespace never share a unit, and raising
  ``traffic`` (a ramp) only adds units;
* the **variant** position under the experiment salt, against the cumulative variant weights.

The first assignment of a profile is stored and reused (sticky): later changes to weights or
traffic never move a unit already assigned. When identities merge, the surviving profile keeps
its assignment, or inherits the absorbed profile's if it had none.
"""

from __future__ import annotations

import bisect
from typing import Final

import numpy as np
import xxhash

from ..config import ExperimentSpec, HoldoutSpec
from ..errors import NotReadyError
from ..hashing import SEPARATOR, hash_unit
from ..snapshot import ComponentState

__all__ = ["bucket", "ExposureLog", "ExperimentRuntime", "HOLDOUT", "NOT_ENROLLED", "SEGMENT"]

#: assignment codes besides variant indices
NOT_ENROLLED: Final = -1
HOLDOUT: Final = -2
#: a decision served by a segment (targeting fallback or rule): logged as not enrolled, and an
#: outcome joined to it rewards no policy (never stored as an assignment)
SEGMENT: Final = -3
_UNASSIGNED: Final = -1
_INV53: Final = 1.0 / 9007199254740992.0
_xxh3 = xxhash.xxh3_64_intdigest


def bucket(key: bytes, salt: str, unit: str) -> float:
    """The unit's position in [0, 1) under ``salt`` (53 bits of the keyed xxh3 hash).

    Examples
    --------
    >>> p = bucket(b"k" * 16, "exp-1", "user-42")
    >>> 0.0 <= p < 1.0 and p == bucket(b"k" * 16, "exp-1", "user-42")
    True
    """
    return (hash_unit(key, salt, unit) >> 11) * _INV53


class ExposureLog:
    """Columns of experiment exposures: decision ``seq``, ``time``, ``experiment`` index,
    ``variant`` code (``HOLDOUT`` = -2) and ``person`` id (never a reusable row; -1 once
    erased), grown by doubling up to ``max_rows``: past it, the oldest quarter is dropped
    (``dropped_`` counts them). Every exposure is also a decision log row (its ``experiment``
    and ``variant`` columns), which is what the reports read.

    Examples
    --------
    >>> log = ExposureLog()
    >>> log.append(0, 1_700_000_000_000, 0, 1, 7)
    >>> len(log), log.column("variant").tolist()
    (1, [1])
    """

    _COLS: Final = (
        ("seq", np.int64), ("time", np.int64), ("experiment", np.int16), ("variant", np.int16), ("person", np.int64),
    )

    def __init__(self, capacity: int = 1024, *, max_rows: int = 1_000_000) -> None:
        self.max_rows = max(max_rows, 4)
        self._cols = {name: np.empty(min(max(capacity, 1), self.max_rows), dtype=dt) for name, dt in self._COLS}
        self._n = 0
        self.dropped_ = 0

    def __len__(self) -> int:
        return self._n

    def append(self, seq: int, time: int, experiment: int, variant: int, person: int) -> None:
        if self._n == self._cols["seq"].shape[0]:
            if self._n >= self.max_rows:
                self._drop_oldest(self._n // 4)
            else:
                cap = min(2 * self._n, self.max_rows)
                for name in list(self._cols):
                    old = self._cols[name]
                    new = np.empty(cap, dtype=old.dtype)
                    new[: self._n] = old[: self._n]
                    self._cols[name] = new
        i = self._n
        c = self._cols
        c["seq"][i] = seq
        c["time"][i] = time
        c["experiment"][i] = experiment
        c["variant"][i] = variant
        c["person"][i] = person
        self._n = i + 1

    def _drop_oldest(self, k: int) -> None:
        n = self._n
        for col in self._cols.values():
            col[: n - k] = col[k:n]
        self._n = n - k
        self.dropped_ += k

    def column(self, name: str) -> np.ndarray:
        """One column over the exposures held, in order (a copy)."""
        return self._cols[name][: self._n].copy()

    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self._cols.values()))

    def erase(self, persons: set[int]) -> int:
        """Erasure: the exposures of ``persons`` lose their person id (-1). Returns how many."""
        if not persons:
            return 0
        col = self._cols["person"][: self._n]
        hit = np.isin(col, np.fromiter(persons, dtype=np.int64))
        col[hit] = -1
        return int(np.count_nonzero(hit))

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {name: self.column(name) for name, _ in self._COLS}
        out["dropped"] = np.array([self.dropped_], dtype=np.int64)
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        n = int(arrays["seq"].shape[0])
        cap = min(max(2 * n, 1024), max(self.max_rows, n))
        self._cols = {name: np.empty(cap, dtype=dt) for name, dt in self._COLS}
        for name, _ in self._COLS:
            self._cols[name][:n] = arrays[name]
        self._n = n
        self.dropped_ = int(arrays["dropped"][0]) if "dropped" in arrays else 0


class ExperimentRuntime:
    """Assignments of profile rows to the experiments of an engine.

    Parameters
    ----------
    key
        Deployment secret for keyed bucketing.
    experiments
        The experiment specs.
    holdout
        The global holdout, if any.
    placements
        Placement names, in configuration order (experiments refer to them by name).
    max_exposures
        Exposures held (the oldest are dropped past it; the engine uses ``decision_log.max_rows``).

    Examples
    --------
    >>> from decisioner.config import ExperimentSpec, VariantSpec
    >>> rt = ExperimentRuntime(b"k" * 16, [ExperimentSpec(name="e", placement="hero",
    ...     variants=[VariantSpec(name="a"), VariantSpec(name="b")])], None, ["hero"])
    >>> code = rt.assign(0, 5, "unit-5")
    >>> code in (0, 1) and rt.assign(0, 5, "another unit id") == code  # sticky by profile
    True
    """

    def __init__(
        self, key: bytes, experiments: list[ExperimentSpec], holdout: HoldoutSpec | None,
        placements: list[str], *, max_exposures: int = 1_000_000,
    ) -> None:
        self.key = key
        self.experiments = list(experiments)
        self.holdout = holdout
        index = {name: i for i, name in enumerate(placements)}
        self.by_placement = [-1] * len(placements)
        self._cum: list[list[float]] = []
        # hash prefixes ``key || salt || 0x1f`` (the unit's UTF-8 bytes complete the input)
        self._ns_prefix: list[bytes] = []
        self._salt_prefix: list[bytes] = []
        for e_i, e in enumerate(self.experiments):
            self.by_placement[index[e.placement]] = e_i
            w = np.array([v.weight for v in e.variants], dtype=np.float64)
            self._cum.append((np.cumsum(w) / w.sum()).tolist())
            self._ns_prefix.append(key + ("namespace:" + e.namespace_).encode() + SEPARATOR)
            self._salt_prefix.append(key + e.salt_.encode() + SEPARATOR)
        self._hold_prefix = key + holdout.salt.encode() + SEPARATOR if holdout is not None else b""
        self.active = bool(self.experiments) or holdout is not None
        self.assign_ = np.full((len(self.experiments), 0), _UNASSIGNED, dtype=np.int16)
        self.holdout_ = np.full(0, -1, dtype=np.int8)  # -1 unknown, 0 no, 1 yes
        self.exposures = ExposureLog(max_rows=max_exposures)

    # ------------------------------------------------------------------ rows
    def ensure(self, n_rows: int) -> None:
        """Grow the per-row arrays to ``n_rows`` (doubling)."""
        cur = self.holdout_.shape[0]
        if n_rows <= cur:
            return
        cap = max(n_rows, 2 * cur, 64)
        a = np.full((len(self.experiments), cap), _UNASSIGNED, dtype=np.int16)
        a[:, :cur] = self.assign_
        h = np.full(cap, -1, dtype=np.int8)
        h[:cur] = self.holdout_
        self.assign_, self.holdout_ = a, h

    def clear(self, rows: np.ndarray | list[int]) -> None:
        """Forget the assignments of ``rows`` (a new person will get them)."""
        for r in rows:
            r = int(r)
            if r < self.holdout_.shape[0]:
                self.assign_[:, r] = _UNASSIGNED
                self.holdout_[r] = -1

    def merge(self, survivor: int, absorbed: np.ndarray) -> None:
        """Identity merge: the survivor keeps its assignments; where it has none it inherits
        the first absorbed profile's. The absorbed rows are then cleared for reuse."""
        self.ensure(max([survivor, *[int(r) for r in absorbed]]) + 1)
        for r in absorbed:
            r = int(r)
            for e in range(len(self.experiments)):
                if self.assign_[e, survivor] == _UNASSIGNED:
                    self.assign_[e, survivor] = self.assign_[e, r]
            if self.holdout_[survivor] < 0:
                self.holdout_[survivor] = self.holdout_[r]
        self.clear(absorbed)

    def adopt(self, previous: ExperimentRuntime) -> None:
        """Carry the assignments of ``previous`` (the runtime of an earlier configuration) over
        to the experiments of the same name, and the holdout if its salt is unchanged: ramps,
        new weights or added experiments then never move a unit already assigned."""
        self.ensure(previous.holdout_.shape[0])
        old = {e.name: i for i, e in enumerate(previous.experiments)}
        n = previous.holdout_.shape[0]
        for e_i, e in enumerate(self.experiments):
            if e.name in old:
                self.assign_[e_i, :n] = previous.assign_[old[e.name], :n]
        if self.holdout is not None and previous.holdout is not None and self.holdout.salt == previous.holdout.salt:
            self.holdout_[:n] = previous.holdout_[:n]

    # ------------------------------------------------------------------ assignment
    def in_holdout(self, row: int, unit: str) -> bool:
        if self.holdout is None:
            return False
        if row >= self.holdout_.shape[0]:
            self.ensure(row + 1)
        h = self.holdout_.item(row)
        if h < 0:
            pos = (_xxh3(self._hold_prefix + unit.encode()) >> 11) * _INV53
            h = 1 if pos < self.holdout.fraction else 0
            self.holdout_[row] = h
        return bool(h)

    def assign(self, placement: int, row: int, unit: str, *, enrol: bool = True) -> int:
        """The variant index of profile ``row`` for the experiment on ``placement``,
        ``HOLDOUT`` or ``NOT_ENROLLED``; the first assignment is stored. With ``enrol`` False
        (outside the experiment's audience) only the holdout applies."""
        if row >= self.holdout_.shape[0]:
            self.ensure(row + 1)
        if self.holdout is not None:
            h = self.holdout_.item(row)  # inlined in_holdout: this is the per-request path
            if h < 0:
                h = 1 if self.in_holdout(row, unit) else 0
            if h:
                return HOLDOUT
        e_i = self.by_placement[placement]
        if e_i < 0 or not enrol:
            return NOT_ENROLLED
        a: int = self.assign_.item(e_i, row)
        if a != _UNASSIGNED:
            return a
        e = self.experiments[e_i]
        lo, hi = e.segment
        data = unit.encode()
        pos = (_xxh3(self._ns_prefix[e_i] + data) >> 11) * _INV53
        if not lo <= pos < lo + e.traffic * (hi - lo):
            return NOT_ENROLLED  # not stored: a later ramp-up may enrol this unit
        u = (_xxh3(self._salt_prefix[e_i] + data) >> 11) * _INV53
        v = min(bisect.bisect_right(self._cum[e_i], u), len(e.variants) - 1)
        self.assign_[e_i, row] = v
        return v

    def to_state(self) -> ComponentState:
        """Sticky assignments (per profile row, cleared when a row is reused) and exposures."""
        arrays: dict[str, np.ndarray] = {"assign": self.assign_, "holdout": self.holdout_}
        arrays.update({f"exposures.{k}": a for k, a in self.exposures.to_arrays().items()})
        return arrays, {"experiments": [e.name for e in self.experiments]}

    def load_state(self, state: ComponentState) -> None:
        """Restore :meth:`to_state` of a runtime with the same experiments.

        Raises
        ------
        NotReadyError
            If the state was written for other experiments.
        """
        arrays, meta = state
        names = [e.name for e in self.experiments]
        if meta.get("experiments") != names:
            raise NotReadyError(f"expected experiment state for {names!r}, got {meta.get('experiments')!r}")
        self.assign_ = np.array(arrays["assign"], dtype=np.int16).reshape(len(names), arrays["holdout"].shape[0])
        self.holdout_ = np.array(arrays["holdout"], dtype=np.int8)
        self.exposures.load_arrays({k.split(".", 1)[1]: a for k, a in arrays.items() if k.startswith("exposures.")})

    def variant_name(self, experiment: int, code: int) -> str:
        return "holdout" if code == HOLDOUT else self.experiments[experiment].variants[code].name
