"""IdentityGraph: the typed API over the identity kernels (``_kernels/graph.py``).

Every identifier is normalised, hashed with the deployment secret (``hashing.py``) and kept
only as a ``uint64`` key. An event carrying several identifiers links them into one component;
each component owns one profile row. When components merge, the survivor keeps its row (the
larger component, ties to the lower row) and the absorbed rows are reported so the profile
store can fold their state into the survivor and recycle them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import numpy as np

from .._kernels import graph as K
from ..errors import ConfigError, SchemaError
from ..hashing import hash_identifier
from .normalise import normalise

__all__ = ["IdentityGraph", "LinkResult"]

MergeListener = Callable[[int, np.ndarray], None]


class LinkResult(NamedTuple):
    """The profile row an event resolved to, and the rows merged into it (int32 array)."""

    row: int
    absorbed: np.ndarray
    new: bool


class IdentityGraph:
    """Union-find over keyed identifier hashes, with profile rows at component roots.

    Parameters
    ----------
    key
        The deployment secret (bytes, >= 16) used for keyed hashing.
    types
        Known identifier types; their index is the node's type code.
    capacity
        Initial node capacity (grown by doubling).
    default_region
        Country code added to national phone numbers.

    Examples
    --------
    >>> g = IdentityGraph(b"0" * 16)
    >>> a = g.link_one({"cookie": "c1"}).row
    >>> b = g.link_one({"cookie": "c1", "email": "ada@example.com"}).row
    >>> a == b == g.resolve_one({"email": " ADA@example.com"})
    True
    """

    def __init__(
        self,
        key: bytes,
        *,
        types: Iterable[str] = ("cookie", "device", "email", "user_id", "crm_id", "phone"),
        capacity: int = 1024,
        default_region: str = "1",
    ) -> None:
        if len(key) < 16:
            raise ConfigError(f"expected a hashing secret of at least 16 bytes, got {len(key)}")
        self.key = key
        self.types = tuple(types)
        self.capacity = capacity
        self.default_region = default_region
        self._type_code = {t: i for i, t in enumerate(self.types)}
        cap = 1 << max(4, (2 * capacity - 1).bit_length())
        self.tab_keys_ = np.zeros(cap, dtype=np.uint64)
        self.tab_nodes_ = np.full(cap, -1, dtype=np.int32)
        n0 = max(1, capacity)  # growth doubles: it must start above zero
        self.node_key_ = np.zeros(n0, dtype=np.uint64)
        self.node_type_ = np.zeros(n0, dtype=np.int8)
        self.parent_ = np.zeros(n0, dtype=np.int32)
        self.size_ = np.zeros(n0, dtype=np.int32)
        self.row_ = np.full(n0, -1, dtype=np.int32)
        self.counts_ = np.zeros(4, dtype=np.int64)
        self.free_rows_ = np.zeros(64, dtype=np.int32)
        self._absorbed = np.zeros(64, dtype=np.int32)
        self._listeners: list[MergeListener] = []

    # ------------------------------------------------------------------ keys
    def type_code(self, id_type: str) -> int:
        code = self._type_code.get(id_type)
        if code is None:
            if len(self.types) >= 127:
                raise SchemaError(f"Expected one of {len(self.types)} identifier types, got {id_type!r} - at `$.ids`")
            code = len(self.types)
            self.types = self.types + (id_type,)
            self._type_code[id_type] = code
        return code

    def keys_of(self, ids: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
        """Normalise and hash ``ids`` (type -> value): uint64 keys and int8 type codes."""
        n = len(ids)
        keys = np.empty(n, dtype=np.uint64)
        types = np.empty(n, dtype=np.int8)
        for j, (t, v) in enumerate(ids.items()):
            keys[j] = hash_identifier(self.key, t, normalise(t, v, default_region=self.default_region))
        # register new identifier types only once every value is valid: a rejected event
        # must change nothing
        for j, t in enumerate(ids):
            types[j] = self.type_code(t)
        return keys, types

    # ------------------------------------------------------------------ growth
    @property
    def n_nodes(self) -> int:
        return int(self.counts_[K.C_NODES])

    @property
    def n_rows(self) -> int:
        """Profile rows handed out so far (live rows plus recycled ones)."""
        return int(self.counts_[K.C_ROWS])

    def _reserve(self, extra: int) -> None:
        need = self.n_nodes + extra
        if need > self.node_key_.shape[0]:
            cap = self.node_key_.shape[0]
            while cap < need:
                cap *= 2
            for name, fill in (("node_key_", 0), ("node_type_", 0), ("parent_", 0), ("size_", 0), ("row_", -1)):
                old = getattr(self, name)
                new = np.full(cap, fill, dtype=old.dtype)
                new[: old.shape[0]] = old
                setattr(self, name, new)
        if 2 * need > self.tab_keys_.shape[0]:  # keep the table at most half full
            cap = self.tab_keys_.shape[0]
            while 2 * need > cap:
                cap *= 2
            keys = np.zeros(cap, dtype=np.uint64)
            nodes = np.full(cap, -1, dtype=np.int32)
            K.graph_rehash(self.tab_keys_, self.tab_nodes_, keys, nodes)
            self.tab_keys_, self.tab_nodes_ = keys, nodes
        if self._absorbed.shape[0] < extra:
            self._absorbed = np.zeros(2 * extra, dtype=np.int32)

    # ------------------------------------------------------------------ operations
    def add_listener(self, fn: MergeListener) -> None:
        """Call ``fn(survivor_row, absorbed_rows)`` after every merge."""
        self._listeners.append(fn)

    def link_keys(self, keys: np.ndarray, types: np.ndarray) -> LinkResult:
        """Link pre-hashed keys (uint64) of one event; see :meth:`link_one`."""
        m = keys.shape[0]
        if m == 0:
            raise SchemaError("Expected at least one identifier, got none - at `$.ids`")
        self._reserve(m)
        rows_before = self.n_rows
        free_before = int(self.counts_[K.C_FREE])
        row, n_abs = K.graph_link(
            self.tab_keys_, self.tab_nodes_, self.node_key_, self.node_type_, self.parent_,
            self.size_, self.row_, self.counts_, self.free_rows_, keys, types, self._absorbed,
        )
        absorbed = self._absorbed[:n_abs].copy()
        new = self.n_rows > rows_before or int(self.counts_[K.C_FREE]) < free_before
        if n_abs:
            for fn in self._listeners:
                fn(int(row), absorbed)
        return LinkResult(int(row), absorbed, new)

    def link_one(self, ids: Mapping[str, str]) -> LinkResult:
        """Resolve an event's identifiers (type -> value) to one profile row, merging the
        components they touch.

        Raises
        ------
        SchemaError
            If there is no identifier or one is malformed (nothing is changed then).
        """
        keys, types = self.keys_of(ids)
        return self.link_keys(keys, types)

    def link_many(self, keys: np.ndarray, types: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Bulk link: group ``g`` is ``keys[offsets[g]:offsets[g+1]]``. Returns the final profile
        row of every group (after all merges of the batch). Listeners are called per merge."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        types = np.ascontiguousarray(types, dtype=np.int8)
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        n = keys.shape[0]
        groups = offsets.shape[0] - 1
        if groups > 0:  # validated first: the kernel assumes non-empty groups in bounds
            if offsets[0] != 0 or offsets[-1] != n:
                raise SchemaError(
                    f"Expected `offsets` from 0 to {n}, got {int(offsets[0])} to {int(offsets[-1])} - at `offsets`"
                )
            empty = np.flatnonzero(np.diff(offsets) <= 0)
            if empty.shape[0]:
                raise SchemaError(
                    f"Expected at least one identifier per group, got none in group {int(empty[0])} - at `offsets`"
                )
        self._reserve(n)
        out = np.empty(groups, dtype=np.int32)
        absorbed = np.empty(max(n, 1), dtype=np.int32)
        into = np.empty(max(n, 1), dtype=np.int32)
        n_abs = K.graph_link_many(
            self.tab_keys_, self.tab_nodes_, self.node_key_, self.node_type_, self.parent_,
            self.size_, self.row_, self.counts_, self.free_rows_, keys, types, offsets, out,
            absorbed, into,
        )
        if n_abs and self._listeners:
            for k in range(n_abs):
                survivor = self.resolve_keys(keys[offsets[into[k]] : offsets[into[k]] + 1])[0]
                for fn in self._listeners:
                    fn(int(survivor), absorbed[k : k + 1].copy())
        return self.resolve_keys(keys[offsets[:-1]]) if groups else out

    def resolve_keys(self, keys: np.ndarray) -> np.ndarray:
        """Profile row of each pre-hashed key (int32; -1 when unknown). Changes nothing."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        out = np.empty(keys.shape[0], dtype=np.int32)
        K.graph_lookup_many(self.tab_keys_, self.tab_nodes_, self.parent_, self.row_, keys, out)
        return out

    def resolve_one(self, ids: Mapping[str, str]) -> int:
        """Profile row of the first known identifier in ``ids``, or -1. Changes nothing."""
        keys, _ = self.keys_of(ids)
        rows = self.resolve_keys(keys)
        hit = rows[rows >= 0]
        return int(hit[0]) if hit.shape[0] else -1

    def release_rows(self, rows: np.ndarray) -> None:
        """Return rows (absorbed by merges, already cleared by their owner) for reuse."""
        n = int(self.counts_[K.C_FREE])
        need = n + rows.shape[0]
        if need > self.free_rows_.shape[0]:
            new = np.zeros(max(2 * self.free_rows_.shape[0], need), dtype=np.int32)
            new[:n] = self.free_rows_[:n]
            self.free_rows_ = new
        self.free_rows_[n:need] = rows
        self.counts_[K.C_FREE] = need

    def component_rows(self) -> np.ndarray:
        """Profile row of every node (int32[n_nodes])."""
        out = np.empty(self.n_nodes, dtype=np.int32)
        K.graph_component_rows(self.parent_, self.row_, self.n_nodes, out)
        return out

    def nbytes(self) -> int:
        """Bytes held by the graph's arrays."""
        return int(sum(a.nbytes for a in (
            self.tab_keys_, self.tab_nodes_, self.node_key_, self.node_type_, self.parent_,
            self.size_, self.row_, self.counts_, self.free_rows_)))
