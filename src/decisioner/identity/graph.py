"""IdentityGraph: the typed API over the identity kernels (``_kernels/graph.py``).

Every identifier is normalised, checked against the blocked values and hashed with the
deployment secret into a 64-bit key plus a 32-bit check tag (:mod:`.keys`, :mod:`.rules`); raw
values are never stored. An event links its identifiers into one component; each component
owns one profile row.

**Merge rules** (:class:`~decisioner.config.IdentitySpec`), checked in the kernel on every
link: blocked values never link; a merge that would give a profile more values of a type than
its limit (one for a *unique* type such as a user id) or more identifiers than the size cap is
refused and counted by reason (:meth:`IdentityGraph.metrics`). The event resolves to its
*anchor*, the identifier of the highest-priority type (ties: the first listed): the anchor's
profile is the event's own profile, and a lower-priority identifier whose link is refused stays
with the profile it already had (a shared family tablet keeps its first owner; the second
person's login still resolves to the second person).

**Survivor rule**: when components merge, the larger keeps its row (ties: the lower row); the
absorbed rows go to the merge listeners, so the profile store folds their state into the
survivor and recycles them.

**Evidence**: every link is kept once as an edge (anchor key, other key, first event time,
source), so the partition is a function of evidence + configuration + do-not-link pairs:
:meth:`IdentityGraph.partition_from_evidence` recomputes it from scratch.

**Unmerge and erasure** (:meth:`IdentityGraph.unlink`, :meth:`IdentityGraph.split`,
:meth:`IdentityGraph.forget`, ``block``, ``evict``, ``expire``): the rules are in
:mod:`.unmerge`.

**Scratch row**: events with no usable identifier (all blocked, or erased) resolve to one
shared scratch row that holds nothing between events (anonymous listeners reset it).

The class is assembled from one layer per idea, each built on the one before: :mod:`.keys`
(registries, key arrays) < :mod:`.store` (arrays, growth, metrics, persistence) <
:mod:`.unmerge` (removal and recomputation) < this module (linking, listeners, resolution).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from .._kernels import graph as K
from ..config import IdentitySpec
from ..errors import SchemaError
from .keys import KEY_ROWS
from .unmerge import IdentityUnmerge, UnmergeResult

__all__ = ["IdentityGraph", "LinkResult", "UnmergeResult", "KEY_ROWS"]

MergeListener = Callable[[int, np.ndarray], None]
SplitListener = Callable[[int, np.ndarray], None]
RowsListener = Callable[[np.ndarray], None]
RowListener = Callable[[int], None]

_TWO63, _TWO64 = 1 << 63, 1 << 64
_NO_ROWS = np.zeros(0, dtype=np.int32)
_NO_ROWS.flags.writeable = False


class LinkResult(NamedTuple):
    """The profile row an event resolved to, the rows merged into it (int32 array), whether
    the row is new, and the kernel's status bits (``_kernels.graph.S_*``)."""

    row: int
    absorbed: np.ndarray
    new: bool
    status: int = 0

    @property
    def refused(self) -> bool:
        """Some identifier or link of the event was refused by a rule."""
        return bool(self.status & K.S_REFUSED)

    @property
    def anonymous(self) -> bool:
        """No usable identifier: the event resolved to the scratch row."""
        return bool(self.status & K.S_ANONYMOUS)

    @property
    def suppressed(self) -> bool:
        """The event carried an erased identifier, so nothing was linked."""
        return bool(self.status & K.S_SUPPRESSED)


class IdentityGraph(IdentityUnmerge):
    """Union-find over keyed identifier hashes with merge rules, evidence, unmerge and erasure.

    Parameters
    ----------
    key
        The deployment secret (bytes, >= 16) used for keyed hashing.
    types
        Identifier types in code order (default: ``spec.types``); others get codes when seen.
    capacity
        Initial identifier capacity (grown as needed).
    default_region
        Country code added to national phone numbers (default: ``spec.default_phone_region``).
    spec
        Identity configuration: identifier rules, blocked values, size cap, rules on or off
        (default: :class:`~decisioner.config.IdentitySpec` defaults, rules on).

    Examples
    --------
    >>> g = IdentityGraph(b"0" * 16)
    >>> a = g.link_one({"cookie": "c1"}).row
    >>> b = g.link_one({"cookie": "c1", "email": "ada@example.com"}).row
    >>> a == b == g.resolve_one({"email": " ADA@example.com"})
    True
    >>> g.link_one({"email": "null", "cookie": "c2"}).refused  # a placeholder never links
    True
    """

    def __init__(
        self,
        key: bytes,
        *,
        types: Iterable[str] | None = None,
        capacity: int = 1024,
        default_region: str | None = None,
        spec: IdentitySpec | None = None,
    ) -> None:
        super().__init__(key, types=types, capacity=capacity, default_region=default_region, spec=spec)
        self._listeners: list[MergeListener] = []
        self._split_listeners: list[SplitListener] = []
        self._erase_listeners: list[RowsListener] = []
        self._anonymous_listeners: list[RowListener] = []

    # ------------------------------------------------------------------ listeners
    def add_listener(self, fn: MergeListener) -> None:
        """Call ``fn(survivor_row, absorbed_rows)`` after every merge."""
        self._listeners.append(fn)

    def add_split_listener(self, fn: SplitListener) -> None:
        """Call ``fn(row, new_rows)`` when an unmerge gives pieces of ``row`` fresh rows."""
        self._split_listeners.append(fn)

    def add_erase_listener(self, fn: RowsListener) -> None:
        """Call ``fn(rows)`` when profiles lose every identifier (erasure, expiry, blocking).
        The listener clears the rows and releases them (:meth:`release_rows`); without one,
        the graph releases them itself."""
        self._erase_listeners.append(fn)

    def add_anonymous_listener(self, fn: RowListener) -> None:
        """Call ``fn(scratch_row)`` before an event resolves to the scratch row."""
        self._anonymous_listeners.append(fn)

    def _notify_split(self, row: int, new_rows: np.ndarray) -> None:
        if new_rows.shape[0]:
            for fn in self._split_listeners:
                fn(row, new_rows)

    def _notify_erased(self, rows: np.ndarray) -> None:
        if self._erase_listeners:
            for fn in self._erase_listeners:
                fn(rows)
        else:
            super()._notify_erased(rows)

    # ------------------------------------------------------------------ linking
    def link_keys(
        self, keys: np.ndarray, types: np.ndarray, *, time: int | None = None, source: str | None = None,
        consent: Mapping[str, object] | None = None,
    ) -> LinkResult:
        """Link the pre-hashed keys of one event; see :meth:`link_one`."""
        if keys.ndim != 2:
            keys = self._as_keys(keys)
        m = keys.shape[1]
        if m == 0:
            raise SchemaError("Expected at least one identifier, got none - at `$.ids`")
        if m > self._room:
            self._reserve(m)
        self._room -= m
        work = self._work if self._work.shape[0] >= 8 * m + 16 else self._work_for(m)
        readmit = consent is not None and consent.get("personalization") is True
        src = self._source_code.get(source, -1) if source is not None else 0
        if src < 0:
            src = self.source_code(source)
        row, n_abs, status = K.graph_link(
            self.tab_, self.nodes_, self.rows_, self.cnt_, self.free_rows_, self.free_nodes_,
            self.meta_, self.trules_, self.dnl_, self.edges_, self.ev_head_, keys, types,
            0 if time is None else time, src, readmit, self._absorbed, work,
        )
        absorbed = self._absorbed[:n_abs].copy() if n_abs else _NO_ROWS
        if n_abs:
            for fn in self._listeners:
                fn(int(row), absorbed)
        if status & K.S_ANONYMOUS:
            for afn in self._anonymous_listeners:
                afn(int(row))
            return LinkResult(int(row), absorbed, False, int(status))
        return LinkResult(int(row), absorbed, bool(status & K.S_NEW), int(status))

    def link_one(
        self, ids: Mapping[str, str], *, time: int | None = None, source: str | None = None,
        consent: Mapping[str, object] | None = None,
    ) -> LinkResult:
        """Resolve an event's identifiers (type -> value) to one profile row, merging the
        components they touch where the rules allow.

        Parameters
        ----------
        ids
            Identifier type -> raw value.
        time
            Event time (epoch ms): evidence time and last-seen of the identifiers.
        source
            Where the link comes from (channel or system), kept with the evidence.
        consent
            The event's consent; ``{"personalization": True}`` lifts the tombstones of erased
            identifiers it carries (an explicit new consent).

        Raises
        ------
        SchemaError
            If there is no identifier or one is malformed (nothing is changed then).
        """
        keys, types = self.keys_of(ids)
        return self.link_keys(keys, self.register_types(ids, types), time=time, source=source, consent=consent)

    def link_many(
        self, keys: np.ndarray, types: np.ndarray, offsets: np.ndarray, *,
        times: np.ndarray | int | None = None, sources: np.ndarray | str | None = None,
    ) -> np.ndarray:
        """Bulk link: group ``g`` is ``keys[:, offsets[g]:offsets[g+1]]`` (an event). Returns the
        final profile row of every group (after all merges of the batch; -1 for a group with no
        usable identifier: all blocked or erased). Listeners are called per merge. ``times``
        (epoch ms, per group or one) and ``sources`` (source codes per group
        or one name) go to the evidence.

        Raises
        ------
        SchemaError
            On bad offsets or an empty group (nothing is changed then).
        """
        keys = self._as_keys(keys)
        types = np.ascontiguousarray(types, dtype=np.int8)
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        n = keys.shape[1]
        groups = offsets.shape[0] - 1
        if types.shape[0] != n:
            raise SchemaError(f"Expected {n} type codes, got {types.shape[0]} - at `types`")
        if groups > 0:  # validated first: the kernel assumes non-empty groups in bounds
            if offsets[0] != 0 or offsets[-1] != n:
                raise SchemaError(
                    f"Expected `offsets` from 0 to {n}, got {int(offsets[0])} to {int(offsets[-1])} - at `offsets`"
                )
            sizes = np.diff(offsets)
            if int(sizes.min()) <= 0:
                empty = int(np.flatnonzero(sizes <= 0)[0])
                raise SchemaError(
                    f"Expected at least one identifier per group, got none in group {empty} - at `offsets`"
                )
            biggest = int(sizes.max())
        else:
            biggest = 0
        if n and (int(types.min()) < 0 or int(types.max()) >= len(self.types)):
            raise SchemaError(f"Expected type codes in [0, {len(self.types)}), got {int(types.max())} - at `types`")
        # one value for every group travels as a length-1 array
        t = np.array(np.asarray(0 if times is None else times, dtype=np.int64).reshape(-1), dtype=np.int64)
        if sources is None or isinstance(sources, str):
            s = np.array([self.source_code(sources)], dtype=np.int64)
        else:
            s = np.array(np.asarray(sources, dtype=np.int64).reshape(-1), dtype=np.int64)
        for name, arr in (("times", t), ("sources", s)):
            if arr.shape[0] not in (1, groups):
                raise SchemaError(f"Expected 1 or {groups} `{name}`, got {arr.shape[0]} - at `{name}`")
        # a group of s identifiers adds at most one row and s - 1 links
        self._reserve(n, rows=groups + 1, edges=n - groups)
        out = np.empty(groups, dtype=np.int32)
        absorbed = np.empty(max(n, 1), dtype=np.int32)
        into = np.empty(max(n, 1), dtype=np.int32)
        n_abs = K.graph_link_many(
            self.tab_, self.nodes_, self.rows_, self.cnt_, self.free_rows_, self.free_nodes_,
            self.meta_, self.trules_, self.dnl_, self.edges_, self.ev_head_, keys, types,
            offsets, t, s, out, absorbed, into, self._work_for(biggest),
        )
        self._room = 0
        if n_abs:
            # a later group can absorb the row an earlier one returned: follow the absorptions
            # (absorbed rows are not reused within a batch) to every group's final row
            fwd = np.arange(self.n_rows, dtype=np.int32)
            fwd[absorbed[:n_abs]] = out[into[:n_abs]]
            while True:
                nxt = fwd[fwd]
                if np.array_equal(nxt, fwd):
                    break
                fwd = nxt
            valid = out >= 0
            out[valid] = fwd[out[valid]]
            if self._listeners:
                survivors = out[into[:n_abs]]
                for k in range(n_abs):
                    for fn in self._listeners:
                        fn(int(survivors[k]), absorbed[k : k + 1].copy())
        scratch = int(self.meta_[K.C_SCRATCH])
        if scratch >= 0:
            out[out == scratch] = -1  # a group with no usable identifier has no profile
        return out

    # ------------------------------------------------------------------ resolving
    def resolve_keys(self, keys: np.ndarray) -> np.ndarray:
        """Profile row of each pre-hashed key (uint64[m] or uint64[2, m]; int32 rows, -1 when
        unknown, blocked or erased). Changes nothing (safe under a shared read lock)."""
        k = keys if (keys.ndim == 2 and keys.dtype == np.uint64 and keys.flags.c_contiguous) else self._as_keys(keys)
        out = np.empty(k.shape[1], dtype=np.int32)
        K.graph_lookup_many(self.tab_, self.nodes_, k, out)
        return out

    def resolve_key(self, key: int, tag: int = 0) -> int:
        """Profile row of one pre-hashed key (and check tag, 0 = unchecked); -1 when unknown.
        The fastest lookup from Python: scalars in, one kernel call."""
        # as int64 (the kernel reads the bits as uint64): one signature, and Python ints are
        # the cheapest scalars for the dispatcher to type
        row: int = K.graph_lookup_one(self.tab_, self.nodes_, key - _TWO64 if key >= _TWO63 else key, tag)
        return row

    def resolve_one(self, ids: Mapping[str, str]) -> int:
        """Profile row of the first known identifier in ``ids``, or -1. Changes nothing."""
        keys, _ = self.keys_of(ids)
        rows = self.resolve_keys(keys)
        hit = rows[rows >= 0]
        return int(hit[0]) if hit.shape[0] else -1

    # ------------------------------------------------------------------ profiles
    def identifiers_of(self, row: int) -> list[dict[str, Any]]:
        """What the graph holds for profile ``row``: per identifier its type, key (hex: the raw
        value is never stored), check tag and last-seen time (epoch ms, minute resolution)."""
        out = []
        for n in self.members(row).tolist():
            rec = self.nodes_[n]
            out.append({
                "type": self.types[int(rec["type"])], "key": f"{int(rec['key']):016x}",
                "tag": f"{int(rec['tag']):08x}",
                "last_seen": K.EPOCH_MS + int(rec["seen"]) * K.MINUTE_MS if int(rec["seen"]) else None,
            })
        return out

    def evidence_of(self, row: int) -> list[dict[str, Any]]:
        """Every evidence edge touching profile ``row``'s identifiers: both keys and types, first
        event time, source, and whether the link is inside the profile (else it was refused)."""
        mem = self.members(row)
        if mem.shape[0] == 0:
            return []
        inside = set(mem.tolist())
        out = []
        for e in self._edges_touching(mem).tolist():
            rec = self.edges_[e]
            a, b = int(rec["a"]), int(rec["b"])
            out.append({
                "a_type": self.types[int(self.nodes_["type"][a])], "a_key": f"{int(self.nodes_['key'][a]):016x}",
                "b_type": self.types[int(self.nodes_["type"][b])], "b_key": f"{int(self.nodes_['key'][b]):016x}",
                "time": int(rec["t"]),
                "source": self.sources[int(rec["src"])] if int(rec["src"]) < len(self.sources) else "",
                "linked": a in inside and b in inside,
            })
        return out
