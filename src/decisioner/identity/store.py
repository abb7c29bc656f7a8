"""The identity graph's storage: struct-of-arrays state, its growth, read-outs of the
components, metrics, and the state as plain arrays.

The arrays (record layouts in ``_kernels/graph.py``): ``tab_`` the open-addressing key table
(at most 3/4 full), ``nodes_`` one record per identifier, ``rows_`` and ``cnt_`` one per profile
row (the per-type counts the merge rules check), ``edges_`` and ``ev_head_`` the evidence and its
adjacency, ``dnl_`` the do-not-link pairs, ``free_rows_`` and ``free_nodes_`` the recycling
stacks, ``meta_`` the kernel's counters and rule parameters, ``trules_`` the per-type rules.
Capacity is reserved up front; record arrays grow by half and the key table by doubling, only
when a call needs the room.

:meth:`IdentityStore.to_arrays` and :meth:`IdentityStore.from_arrays` are the persisted form:
record arrays trimmed to their used length, plus the type and source names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Self

import numpy as np

from .._kernels import graph as K
from ..config import IdentitySpec
from ..errors import ConfigError, SchemaError
from .keys import IdentityKeys
from .rules import identifier_key

__all__ = ["IdentityStore", "TOMBSTONE_BYTES"]

_MAX_LOAD_NUM, _MAX_LOAD_DEN = 3, 4  # key table at most 3/4 full
_GROWTH = 1.5  # record arrays grow by half (memory per identifier stays close to the minimum)
_REFUSALS = (
    ("blocked", K.R_BLOCKED), ("tombstoned", K.R_TOMBSTONED), ("collision", K.R_COLLISION),
    ("unique", K.R_UNIQUE), ("limit", K.R_LIMIT), ("size_cap", K.R_SIZE), ("do_not_link", K.R_DNL),
)
#: bytes one tombstone (or any identifier's core) needs: its node record (26), its evidence head
#: (4) and its key-table slot (8) with the table at most 3/4 full (8 * 4/3); about 40.7, and up
#: to 51.3 with the table just doubled (3/8 full). See :mod:`decisioner.identity.unmerge`.
TOMBSTONE_BYTES: Final = K.NODE_DTYPE.itemsize + np.dtype(np.int32).itemsize + 8 * _MAX_LOAD_DEN / _MAX_LOAD_NUM
#: every array of the state, by attribute name (persisted without the trailing ``_``)
STATE_ARRAYS = ("tab_", "nodes_", "rows_", "cnt_", "free_rows_", "free_nodes_", "meta_", "trules_", "dnl_",
                "edges_", "ev_head_")


def _alloc(shape: int | tuple[int, ...], dtype: Any, fill: int = 0) -> np.ndarray:
    """An array filled now: its pages are touched at allocation (capacity is reserved up front,
    so linking never stalls on first-touch page faults)."""
    a = np.empty(shape, dtype=dtype)
    if fill == 0:
        a.view(np.uint8)[...] = 0
    else:
        a.fill(fill)
    return a


def grow(arr: np.ndarray, need: int, fill: int = 0) -> np.ndarray:
    """A copy of ``arr`` with room for at least ``need`` records along axis 0 (grown by half
    until it fits), the new tail filled with ``fill``."""
    cap = max(arr.shape[0], 1)
    while cap < need:
        cap = max(cap + 1, int(cap * _GROWTH))
    new = np.empty((cap, *arr.shape[1:]), dtype=arr.dtype)
    new[: arr.shape[0]] = arr
    tail = new[arr.shape[0] :]
    if fill == 0:
        tail.view(np.uint8)[...] = 0
    else:
        tail.fill(fill)
    return new


def _pow2_at_least(n: int) -> int:
    return 1 << max(4, (max(n, 1) - 1).bit_length())


class IdentityStore(IdentityKeys):
    """The storage layer of :class:`~decisioner.identity.IdentityGraph` (see the module
    docstring): the arrays and their growth, read-outs of the components, metrics and
    persistence."""

    def __init__(
        self,
        key: bytes,
        *,
        types: Iterable[str] | None = None,
        capacity: int = 1024,
        default_region: str | None = None,
        spec: IdentitySpec | None = None,
    ) -> None:
        super().__init__(key, types=types, default_region=default_region, spec=spec)
        self.capacity = capacity
        # `capacity` identifiers plus the blocked values and spare rows, so a load of that size
        # never grows (and copies) the arrays
        n0 = max(1, capacity) + 256
        self.tab_ = _alloc(_pow2_at_least((n0 * _MAX_LOAD_DEN) // _MAX_LOAD_NUM + 1), np.uint64)
        self.nodes_ = _alloc(n0, K.NODE_DTYPE)
        self.ev_head_ = _alloc(n0, np.int32, -1)
        # profiles and links number at most the identifiers (in practice about half): reserved
        # but not touched, so only the pages used are ever mapped
        self.rows_ = np.zeros(n0, dtype=K.ROW_DTYPE)
        self.cnt_ = np.zeros((n0, max(1, len(self.rules.slot_of))), dtype=np.uint16)
        self.free_rows_ = np.zeros(64, dtype=np.int32)
        self.free_nodes_ = np.zeros(64, dtype=np.int32)
        self.meta_ = np.zeros(K.META_SIZE, dtype=np.int64)
        self.meta_[K.C_SCRATCH] = -1
        self.rules.fill_meta(self.meta_, p_rules=K.P_RULES, p_cap=K.P_CAP, p_slots=K.P_SLOTS, p_limit=K.P_SLOT_LIMIT)
        self.trules_ = self.rules.trules()
        self.dnl_ = np.zeros((16, 2), dtype=np.int32)
        self.edges_ = np.zeros(n0, dtype=K.EDGE_DTYPE)
        self._absorbed = np.zeros(64, dtype=np.int32)
        self._work = np.zeros(8 * 64 + 16, dtype=np.int64)
        self._room = 0  # keys the next links may add before the arrays must be checked
        for code in range(len(self.rules.types)):
            self._block_values(code)

    def _type_registered(self, code: int) -> None:
        self.trules_ = self.rules.trules()
        self._block_values(code)

    def _block_values(self, code: int) -> None:
        """Store the type's exact blocked values as blocked keys (pre-hashed loads hit them)."""
        values = self.rules.blocked_values(code)
        if not values:
            return
        t = self.rules.types[code]
        keys = np.empty((2, len(values)), dtype=np.uint64)
        for j, v in enumerate(values):
            keys[0, j], keys[1, j] = identifier_key(self.key, t, v)
        self._reserve(len(values))
        out = np.empty(len(values), dtype=np.int32)
        K.graph_block(self.tab_, self.nodes_, self.free_nodes_, self.meta_, keys,
                      np.full(len(values), code, dtype=np.int8), out)
        self._room = 0

    # ------------------------------------------------------------------ sizes and growth
    @property
    def n_nodes(self) -> int:
        """Live identifiers."""
        return int(self.meta_[K.C_LIVE])

    @property
    def n_profiles(self) -> int:
        """Live profiles (rows holding at least one identifier)."""
        meta = self.meta_
        return int(meta[K.C_ROWS] - meta[K.C_FREE]) - (1 if meta[K.C_SCRATCH] >= 0 else 0)

    @property
    def n_rows(self) -> int:
        """Profile rows handed out so far (live rows plus recycled ones)."""
        return int(self.meta_[K.C_ROWS])

    @property
    def counts_(self) -> np.ndarray:
        """The kernel counters (``meta_``): [0] node records, [1] rows handed out, [2] free rows,
        [3] merges, ... (indices ``_kernels.graph.C_*``)."""
        return self.meta_

    def reserve(self, extra: int, rows: int | None = None, edges: int | None = None) -> None:
        """Reserve room for ``extra`` more identifiers now (bulk loads, warm-up), so linking them
        does not grow the arrays one doubling at a time."""
        self._reserve(extra, rows, edges)

    def _reserve(self, extra: int, rows: int | None = None, edges: int | None = None) -> None:
        """Room for ``extra`` more keys (nodes, table entries), ``rows`` more rows and ``edges``
        more evidence edges (both default to ``extra``)."""
        meta = self.meta_
        need_n = int(meta[K.C_NODES]) + extra
        if need_n > self.nodes_.shape[0]:
            self.nodes_ = grow(self.nodes_, need_n)
            self.ev_head_ = grow(self.ev_head_, self.nodes_.shape[0], -1)[: self.nodes_.shape[0]]
        if self.ev_head_.shape[0] < self.nodes_.shape[0]:
            self.ev_head_ = grow(self.ev_head_, self.nodes_.shape[0], -1)[: self.nodes_.shape[0]]
        need_t = int(meta[K.C_TAB]) + extra
        if need_t * _MAX_LOAD_DEN > self.tab_.shape[0] * _MAX_LOAD_NUM:
            cap = self.tab_.shape[0]
            while need_t * _MAX_LOAD_DEN > cap * _MAX_LOAD_NUM:
                cap *= 2
            tab = _alloc(cap, np.uint64)
            K.graph_rehash(self.tab_, tab, self.nodes_)
            self.tab_ = tab
        need_r = int(meta[K.C_ROWS]) + (extra if rows is None else rows) + 2
        if need_r > self.rows_.shape[0]:
            self.rows_ = grow(self.rows_, need_r)
            self.cnt_ = grow(self.cnt_, self.rows_.shape[0], 0)[: self.rows_.shape[0]]
        need_e = int(meta[K.C_EDGES]) + (extra if edges is None else edges)
        if need_e > self.edges_.shape[0]:
            self.edges_ = grow(self.edges_, need_e)
        if self._absorbed.shape[0] < extra:
            self._absorbed = np.zeros(2 * extra, dtype=np.int32)
        self._room = min(
            self.nodes_.shape[0] - int(meta[K.C_NODES]),
            (self.tab_.shape[0] * _MAX_LOAD_NUM) // _MAX_LOAD_DEN - int(meta[K.C_TAB]),
            self.rows_.shape[0] - int(meta[K.C_ROWS]) - 2,
            self.edges_.shape[0] - int(meta[K.C_EDGES]),
            self._absorbed.shape[0],
        )

    def _work_for(self, m: int) -> np.ndarray:
        if self._work.shape[0] < 8 * m + 16:
            self._work = np.zeros(8 * m + 16, dtype=np.int64)
        return self._work

    def release_rows(self, rows: np.ndarray) -> None:
        """Return rows (absorbed by merges or erased, already cleared by their owner) for reuse."""
        rows = np.asarray(rows, dtype=np.int32)
        n = int(self.meta_[K.C_FREE])
        need = n + rows.shape[0]
        if need > self.free_rows_.shape[0]:
            new = np.zeros(max(2 * self.free_rows_.shape[0], need), dtype=np.int32)
            new[:n] = self.free_rows_[:n]
            self.free_rows_ = new
        self.free_rows_[n:need] = rows
        self.meta_[K.C_FREE] = need

    # ------------------------------------------------------------------ components
    def component_rows(self) -> np.ndarray:
        """Profile row of every live identifier, in node order (see :meth:`live_keys`)."""
        n = int(self.meta_[K.C_NODES])
        out = np.empty(n, dtype=np.int32)
        K.graph_component_rows(self.nodes_, n, out)
        live: np.ndarray = out[self.live_mask()]
        return live

    def live_keys(self) -> np.ndarray:
        """Keys (uint64[2, n]) of every live identifier, in node order."""
        live = self.nodes_[: int(self.meta_[K.C_NODES])][self.live_mask()]
        return np.stack([live["key"], live["tag"].astype(np.uint64)])

    @property
    def node_key_(self) -> np.ndarray:
        """Keys (uint64) of the live identifiers in node order (``live_keys()[0]``)."""
        keys: np.ndarray = self.live_keys()[0]
        return keys

    def live_mask(self) -> np.ndarray:
        """bool per node (in node order): the identifier is live (not erased or removed)."""
        st = self.nodes_["state"][: int(self.meta_[K.C_NODES])]
        mask: np.ndarray = (st & K.STATE_MASK) == K.LIVE
        return mask

    def tombstoned(self, keys: np.ndarray) -> np.ndarray:
        """bool per identifier of ``keys`` (uint64[2, m]): erased and held as a tombstone."""
        k = np.array(keys, dtype=np.uint64).reshape(2, -1)
        k[1] &= np.uint64(0xFFFFFFFF)
        nodes = self._node_of(k)
        state = self.nodes_["state"][np.maximum(nodes, 0)].astype(np.int64) & K.STATE_MASK
        out: np.ndarray = (nodes >= 0) & (state == K.TOMB)
        return out

    def _node_of(self, keys: np.ndarray) -> np.ndarray:
        k = self._as_keys(keys)
        out = np.empty(k.shape[1], dtype=np.int64)
        K.graph_find_nodes(self.tab_, self.nodes_, k, out)
        return out

    def _live_node(self, ids: Mapping[str, str] | np.ndarray) -> int:
        keys = self.keys_of(ids)[0] if isinstance(ids, Mapping) else self._as_keys(ids)
        nodes = self._node_of(keys)
        for n in nodes.tolist():
            if n >= 0 and (int(self.nodes_["state"][n]) & K.STATE_MASK) == K.LIVE:
                return int(n)
        raise SchemaError("Expected a known identifier, got none that is linked - at `ids`")

    def row_of_node(self, node: int) -> int:
        root = int(K.graph_find_root(self.nodes_, node))
        return -2 - int(self.nodes_["parent"][root])

    def members(self, row: int) -> np.ndarray:
        """Node indices (int64) of the identifiers of profile ``row`` (empty if it has none)."""
        if not 0 <= row < self.n_rows:
            return np.zeros(0, dtype=np.int64)
        root = int(self.rows_["root"][row])
        if root < 0:
            return np.zeros(0, dtype=np.int64)
        out = np.empty(int(self.rows_["size"][row]), dtype=np.int64)
        n = K.graph_members(self.nodes_, root, out)
        return out[:n]

    def _edges_touching(self, members: np.ndarray) -> np.ndarray:
        out = np.empty(int(self.meta_[K.C_LIVE_EDGES]) * 2 + 1, dtype=np.int64)
        n = K.graph_edges_of(self.nodes_, self.edges_, self.ev_head_, np.ascontiguousarray(members, np.int64), out)
        return np.unique(out[:n])

    def partition(self) -> set[frozenset[int]]:
        """The current components as sets of keys (for checks and tests)."""
        keys = self.live_keys()[0].tolist()
        rows = self.component_rows().tolist()
        comps: dict[int, set[int]] = {}
        for k, r in zip(keys, rows):
            comps.setdefault(r, set()).add(int(k))
        return {frozenset(c) for c in comps.values()}

    # ------------------------------------------------------------------ reporting
    def metrics(self) -> dict[str, Any]:
        """Counters: identifiers, profiles, tombstones, blocked values, evidence edges,
        do-not-link pairs, merges, events and refused identifiers/links by reason."""
        meta = self.meta_
        st = self.nodes_["state"][: int(meta[K.C_NODES])] & K.STATE_MASK
        return {
            "identifiers": int(meta[K.C_LIVE]),
            "profiles": self.n_profiles,
            "tombstones": int((st == K.TOMB).sum()),
            "blocked_values": int((st == K.BLOCKED).sum()),
            "evidence_edges": int(meta[K.C_LIVE_EDGES]),
            "do_not_link_pairs": int(meta[K.C_DNL]),
            "merges": int(meta[K.C_MERGES]),
            "events": int(meta[K.C_EVENTS]),
            "suppressed_events": int(meta[K.C_SUPPRESSED]),
            "anonymous_events": int(meta[K.C_ANONYMOUS]),
            "readmitted": int(meta[K.C_READMITTED]),
            "refused": {name: int(meta[i]) for name, i in _REFUSALS},
        }

    def tombstone_bytes(self) -> tuple[int, float]:
        """Tombstones held and the bytes they need: :data:`TOMBSTONE_BYTES` each (the spare
        capacity of the arrays is counted in :meth:`nbytes`, not here)."""
        meta = self.meta_
        n = int(((self.nodes_["state"][: int(meta[K.C_NODES])] & K.STATE_MASK) == K.TOMB).sum())
        return n, n * TOMBSTONE_BYTES

    def memory(self) -> dict[str, float]:
        """Bytes held, by part: the core (key table + node records: what resolving needs), per
        identifier; the per-profile rule counters; the evidence (edges, edge set, adjacency,
        do-not-link pairs), per edge; the tombstones (count and bytes, part of the core)."""
        core = self.tab_.nbytes + self.nodes_.nbytes
        rows = self.rows_.nbytes + self.cnt_.nbytes + self.free_rows_.nbytes
        ev = self.edges_.nbytes + self.ev_head_.nbytes + self.dnl_.nbytes + self.free_nodes_.nbytes
        n = max(self.n_nodes, 1)
        tombs, tomb_bytes = self.tombstone_bytes()
        return {
            "identifiers": self.n_nodes,
            "core_bytes": core,
            "core_bytes_per_identifier": round(core / n, 1),
            "core_bytes_per_identifier_min": round(
                K.NODE_DTYPE.itemsize + 8 * _MAX_LOAD_DEN / _MAX_LOAD_NUM, 1),
            "row_bytes": rows,
            "evidence_bytes": ev,
            "evidence_bytes_per_edge": round(ev / max(int(self.meta_[K.C_LIVE_EDGES]), 1), 1),
            "total_bytes": self.nbytes(),
            "total_bytes_per_identifier": round(self.nbytes() / n, 1),
            "tombstones": tombs,
            "tombstone_bytes": round(tomb_bytes),
        }

    def nbytes(self) -> int:
        """Bytes held by the graph's arrays."""
        return int(sum(getattr(self, name).nbytes for name in STATE_ARRAYS))

    # ------------------------------------------------------------------ persistence
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The whole state as plain arrays (record arrays trimmed to their used length), plus
        ``types`` and ``sources`` (str arrays). Rebuild with :meth:`from_arrays`."""
        meta = self.meta_
        out = {name.rstrip("_"): getattr(self, name) for name in STATE_ARRAYS}
        out["nodes"] = self.nodes_[: int(meta[K.C_NODES])]
        out["ev_head"] = self.ev_head_[: int(meta[K.C_NODES])]
        out["rows"] = self.rows_[: int(meta[K.C_ROWS])]
        out["cnt"] = self.cnt_[: int(meta[K.C_ROWS])]
        out["edges"] = self.edges_[: int(meta[K.C_EDGES])]
        out["free_rows"] = self.free_rows_[: int(meta[K.C_FREE])]
        out["free_nodes"] = self.free_nodes_[: int(meta[K.C_FREE_NODES])]
        out["dnl"] = self.dnl_[: int(meta[K.C_DNL])]
        out["types"] = np.array(self.types, dtype=str)
        out["sources"] = np.array(self.sources, dtype=str)
        return out

    @classmethod
    def from_arrays(
        cls, key: bytes, arrays: Mapping[str, np.ndarray], *, spec: IdentitySpec | None = None,
    ) -> Self:
        """Rebuild a graph saved with :meth:`to_arrays` (the same secret and, normally, the same
        identity configuration; the rules of ``spec`` apply from now on).

        Raises
        ------
        ConfigError
            If an array is missing or has the wrong dtype.
        """
        need = [n.rstrip("_") for n in STATE_ARRAYS] + ["types", "sources"]
        missing = [n for n in need if n not in arrays]
        if missing:
            raise ConfigError(f"expected identity arrays {need}, missing {missing}")
        g = cls(key, types=[str(t) for t in arrays["types"].tolist()], capacity=1, spec=spec)
        for name in STATE_ARRAYS:
            a = np.asarray(arrays[name.rstrip("_")])
            if a.dtype != getattr(g, name).dtype:
                raise ConfigError(f"expected `{name.rstrip('_')}` of dtype {getattr(g, name).dtype}, got {a.dtype}")
        g.tab_ = np.array(arrays["tab"], dtype=np.uint64)
        g.meta_ = np.array(arrays["meta"], dtype=np.int64)
        g.rules.fill_meta(g.meta_, p_rules=K.P_RULES, p_cap=K.P_CAP, p_slots=K.P_SLOTS, p_limit=K.P_SLOT_LIMIT)
        g.trules_ = g.rules.trules()
        for name in ("nodes_", "ev_head_", "rows_", "cnt_", "edges_", "free_rows_", "free_nodes_", "dnl_"):
            setattr(g, name, np.array(arrays[name.rstrip("_")], dtype=getattr(g, name).dtype))
        for name, fill in (("nodes_", 0), ("ev_head_", -1), ("rows_", 0), ("cnt_", 0), ("edges_", 0),
                           ("free_rows_", 0), ("free_nodes_", 0), ("dnl_", 0)):
            a = getattr(g, name)
            setattr(g, name, grow(a, a.shape[0] + 16, fill))
        g.load_sources(str(s) for s in arrays["sources"].tolist())
        g._room = 0
        return g

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_arrays` to an ``.npz`` file (no pickle)."""
        np.savez(path, **self.to_arrays())  # type: ignore[arg-type]

    @classmethod
    def load(cls, key: bytes, path: str | Path, *, spec: IdentitySpec | None = None) -> Self:
        """Read a graph written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays(key, {k: data[k] for k in data.files}, spec=spec)
