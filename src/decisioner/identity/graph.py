"""IdentityGraph: the typed API over the identity kernels (``_kernels/graph.py``).

Every identifier is normalised, checked against the blocked values and hashed with the
deployment secret into a 64-bit key plus a 32-bit check tag (:mod:`.rules`); raw values are
never stored. An event links its identifiers into one component; each component owns one
profile row.

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

**Unmerge** (:meth:`IdentityGraph.unlink`, :meth:`IdentityGraph.split`) recomputes only the
affected component from its own evidence. Profile state rule: the profile's state stays with
the largest remaining piece (ties: the piece holding the oldest identifier); every other piece,
and an unlinked identifier, gets a fresh empty profile that inherits the original's consent
(split listeners are told ``(row, new_rows)``). Links to identifiers outside the component
that were refused stay refused until an event brings them again.

**Erasure** (:meth:`IdentityGraph.forget`) removes identifiers and their evidence and keeps a
keyed tombstone: an event carrying an erased identifier links nothing and creates nothing
(it resolves to the profile of another, live identifier it carries, else to the scratch row)
unless it carries explicit consent (``consent={"personalization": True}``), which lifts the
tombstone and starts a new, empty profile.

**Scratch row**: events with no usable identifier (all blocked, or erased) resolve to one
shared scratch row that holds nothing between events (anonymous listeners reset it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._kernels import graph as K
from ..config import IdentitySpec
from ..errors import ConfigError, SchemaError
from .rules import BLOCKED_FLAG, IdentifierRules, identifier_key

__all__ = ["IdentityGraph", "LinkResult", "UnmergeResult", "KEY_ROWS"]

MergeListener = Callable[[int, np.ndarray], None]
SplitListener = Callable[[int, np.ndarray], None]
RowsListener = Callable[[np.ndarray], None]
RowListener = Callable[[int], None]

#: rows of a key array: ``keys[0]`` 64-bit keys, ``keys[1]`` check tags (+ blocked flag)
KEY_ROWS = 2
_MAX_LOAD_NUM, _MAX_LOAD_DEN = 3, 4  # key table at most 3/4 full
_TWO63, _TWO64 = 1 << 63, 1 << 64
_NO_ROWS = np.zeros(0, dtype=np.int32)
_NO_ROWS.flags.writeable = False
_GROWTH = 1.5  # record arrays grow by half (memory per identifier stays close to the minimum)
_REFUSALS = (
    ("blocked", K.R_BLOCKED), ("tombstoned", K.R_TOMBSTONED), ("collision", K.R_COLLISION),
    ("unique", K.R_UNIQUE), ("limit", K.R_LIMIT), ("size_cap", K.R_SIZE), ("do_not_link", K.R_DNL),
)
_ARRAYS = ("tab_", "nodes_", "rows_", "cnt_", "free_rows_", "free_nodes_", "meta_", "trules_", "dnl_",
           "edges_", "ev_head_")


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


class UnmergeResult(NamedTuple):
    """Outcome of an unlink, split, forget, block or expiry: the row that kept the profile
    state (-1 if none), the fresh rows of the other pieces, and rows erased entirely."""

    row: int
    new_rows: np.ndarray
    erased: np.ndarray


def _alloc(shape: int | tuple[int, ...], dtype: Any, fill: int = 0) -> np.ndarray:
    """An array filled now: its pages are touched at allocation (capacity is reserved up front,
    so linking never stalls on first-touch page faults)."""
    a = np.empty(shape, dtype=dtype)
    if fill == 0:
        a.view(np.uint8)[...] = 0
    else:
        a.fill(fill)
    return a


def _grow(arr: np.ndarray, need: int, fill: int = 0) -> np.ndarray:
    cap = max(arr.shape[0], 1)
    while cap < need:
        cap = max(cap + 1, int(cap * _GROWTH))
    new = np.empty((cap,) + arr.shape[1:], dtype=arr.dtype)
    new[: arr.shape[0]] = arr
    tail = new[arr.shape[0] :]
    if fill == 0:
        tail.view(np.uint8)[...] = 0
    else:
        tail.fill(fill)
    return new


def _pow2_at_least(n: int) -> int:
    return 1 << max(4, (max(n, 1) - 1).bit_length())


class IdentityGraph:
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
        if len(key) < 16:
            raise ConfigError(f"expected a hashing secret of at least 16 bytes, got {len(key)}")
        self.key = key
        self.spec = spec if spec is not None else IdentitySpec()
        self.capacity = capacity
        self.rules = IdentifierRules(self.spec, types=types, default_region=default_region)
        self.default_region = self.rules.default_region
        self.sources: tuple[str, ...] = ("",)
        self._source_code: dict[str, int] = {"": 0}
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
        self._listeners: list[MergeListener] = []
        self._split_listeners: list[SplitListener] = []
        self._erase_listeners: list[RowsListener] = []
        self._anonymous_listeners: list[RowListener] = []
        for code in range(len(self.rules.types)):
            self._block_values(code)

    # ------------------------------------------------------------------ types and keys
    @property
    def types(self) -> tuple[str, ...]:
        """Identifier type names in code order."""
        return self.rules.types

    def type_code(self, id_type: str) -> int:
        """Code of ``id_type``, registering a new type (its rule by name, or a plain id)."""
        code = self.rules.code_of(id_type)
        if code is None:
            if len(self.rules.types) >= 127:
                raise SchemaError(f"Expected one of {len(self.rules.types)} identifier types, got {id_type!r} - at `$.ids`")
            code = self.rules.register(id_type)
            self.trules_ = self.rules.trules()
            self._block_values(code)
        return code

    def source_code(self, source: str | None) -> int:
        """Code of an evidence source name (channel, system), registering it when new."""
        if source is None:
            return 0
        code = self._source_code.get(source)
        if code is None:
            if len(self.sources) >= 32_767:
                return 0
            code = len(self.sources)
            self.sources = self.sources + (source,)
            self._source_code[source] = code
        return code

    def keys_of(self, ids: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
        """Normalise, check and hash ``ids`` (type -> value).

        Returns
        -------
        keys
            uint64[2, m]: keys, and check tags (low 32 bits) with :data:`~.rules.BLOCKED_FLAG`
            set for values the rules block.
        types
            int8[m] type codes.

        Raises
        ------
        SchemaError
            If a value is malformed (nothing is changed then, not even the type registry).
        """
        n = len(ids)
        keys = np.empty((2, n), dtype=np.uint64)
        rules = self.rules
        secret = self.key
        for j, (t, v) in enumerate(ids.items()):
            code = rules.code_of(t)
            value, blocked = rules.canonical(t, v, rules.rule(code) if code is not None else None)
            k, tag = identifier_key(secret, t, value)
            keys[0, j] = k
            keys[1, j] = tag | BLOCKED_FLAG if blocked else tag
        types = np.empty(n, dtype=np.int8)
        # new identifier types are registered only once every value is valid: a rejected event
        # must change nothing
        for j, t in enumerate(ids):
            types[j] = self.type_code(t)
        return keys, types

    @staticmethod
    def hashed_ids(ids: Mapping[str, str], keys: np.ndarray) -> dict[str, str]:
        """``ids`` with each value replaced by its key and tag word from :meth:`keys_of` (32 hex
        digits): what the event log stores instead of the raw values. :meth:`keys_of_hashed`
        reads it back.

        >>> IdentityGraph.hashed_ids({"email": "ada@example.com"}, np.array([[1], [2]], np.uint64))
        {'email': '00000000000000010000000000000002'}
        """
        k, w = keys[0].tolist(), keys[1].tolist()
        return {t: f"{k[j]:016x}{w[j]:016x}" for j, t in enumerate(ids)}

    def keys_of_hashed(self, ids: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
        """Keys and type codes of ``ids`` written by :meth:`hashed_ids` (type -> 32 hex digits),
        as :meth:`keys_of` returns them for the raw values. Nothing is hashed again.

        Raises
        ------
        SchemaError
            If a value is not 32 hex digits.
        """
        n = len(ids)
        keys = np.empty((2, n), dtype=np.uint64)
        for j, (t, v) in enumerate(ids.items()):
            try:
                if len(v) != 32:
                    raise ValueError
                keys[0, j] = int(v[:16], 16)
                keys[1, j] = int(v[16:], 16)
            except ValueError:
                raise SchemaError(f"Expected a hashed identifier (32 hex digits), got {v[:40]!r} - at `$.ids.{t}`") from None
        types = np.empty(n, dtype=np.int8)
        for j, t in enumerate(ids):
            types[j] = self.type_code(t)
        return keys, types

    def keys_many(self, id_type: str, values: Sequence[str]) -> np.ndarray:
        """Keys (uint64[2, n]) of many values of one type, for bulk (CRM) loads.

        Raises
        ------
        SchemaError
            If a value is malformed (the message names its index).
        """
        code = self.type_code(id_type)
        rule = self.rules.rule(code)
        out = np.empty((2, len(values)), dtype=np.uint64)
        for j, v in enumerate(values):
            try:
                value, blocked = self.rules.canonical(id_type, v, rule)
            except SchemaError as exc:
                raise SchemaError(f"{exc} (value {j})") from None
            k, tag = identifier_key(self.key, id_type, value)
            out[0, j] = k
            out[1, j] = tag | BLOCKED_FLAG if blocked else tag
        return out

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

    @staticmethod
    def _as_keys(keys: np.ndarray) -> np.ndarray:
        """uint64[2, m] (keys, tag words) or uint64[1, m] (pre-hashed keys without tags: tag 0,
        unchecked; a view of a uint64[m] input, not a copy)."""
        k = np.asarray(keys)
        if k.ndim == 1:
            k = k.reshape(1, -1)
        if k.ndim == 2 and k.shape[0] in (1, KEY_ROWS):
            if k.dtype == np.uint64 and k.flags.c_contiguous:
                return k
            return np.ascontiguousarray(k, dtype=np.uint64)
        raise SchemaError(f"Expected keys as uint64[m] or uint64[2, m], got shape {k.shape} - at `keys`")

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

    def _reserve(self, extra: int, rows: int | None = None, edges: int | None = None) -> None:
        """Room for ``extra`` more keys (nodes, table entries), ``rows`` more rows and ``edges``
        more evidence edges (both default to ``extra``)."""
        meta = self.meta_
        need_n = int(meta[K.C_NODES]) + extra
        if need_n > self.nodes_.shape[0]:
            self.nodes_ = _grow(self.nodes_, need_n)
            self.ev_head_ = _grow(self.ev_head_, self.nodes_.shape[0], -1)[: self.nodes_.shape[0]]
        if self.ev_head_.shape[0] < self.nodes_.shape[0]:
            self.ev_head_ = _grow(self.ev_head_, self.nodes_.shape[0], -1)[: self.nodes_.shape[0]]
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
            self.rows_ = _grow(self.rows_, need_r)
            self.cnt_ = _grow(self.cnt_, self.rows_.shape[0], 0)[: self.rows_.shape[0]]
        need_e = int(meta[K.C_EDGES]) + (extra if edges is None else edges)
        if need_e > self.edges_.shape[0]:
            self.edges_ = _grow(self.edges_, need_e)
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

    # ------------------------------------------------------------------ linking
    def link_keys(
        self, keys: np.ndarray, types: np.ndarray, *, time: int | None = None, source: str | None = None,
        consent: Mapping[str, bool] | None = None,
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
        consent: Mapping[str, bool] | None = None,
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
        return self.link_keys(keys, types, time=time, source=source, consent=consent)

    def link_many(
        self, keys: np.ndarray, types: np.ndarray, offsets: np.ndarray, *,
        times: np.ndarray | int | None = None, sources: np.ndarray | str | None = None,
    ) -> np.ndarray:
        """Bulk link: group ``g`` is ``keys[:, offsets[g]:offsets[g+1]]`` (an event). Returns the
        final profile row of every group (after all merges of the batch; -1 for a group with no
        usable identifier: all blocked or erased). Listeners are called per merge. ``times`` (epoch ms, per group or one) and ``sources`` (source codes per group
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

    def component_rows(self) -> np.ndarray:
        """Profile row of every live identifier, in node order (see :meth:`live_keys`)."""
        n = int(self.meta_[K.C_NODES])
        out = np.empty(n, dtype=np.int32)
        K.graph_component_rows(self.nodes_, n, out)
        live: np.ndarray = out[self._live_mask()]
        return live

    def live_keys(self) -> np.ndarray:
        """Keys (uint64[2, n]) of every live identifier, in node order."""
        live = self.nodes_[: int(self.meta_[K.C_NODES])][self._live_mask()]
        return np.stack([live["key"], live["tag"].astype(np.uint64)])

    @property
    def node_key_(self) -> np.ndarray:
        """Keys (uint64) of the live identifiers in node order (``live_keys()[0]``)."""
        keys: np.ndarray = self.live_keys()[0]
        return keys

    def _live_mask(self) -> np.ndarray:
        st = self.nodes_["state"][: int(self.meta_[K.C_NODES])]
        mask: np.ndarray = (st & K.STATE_MASK) == K.LIVE
        return mask

    # ------------------------------------------------------------------ components
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
                "time": int(rec["t"]), "source": self.sources[int(rec["src"])] if int(rec["src"]) < len(self.sources) else "",
                "linked": a in inside and b in inside,
            })
        return out

    # ------------------------------------------------------------------ unmerge
    def _recompute(self, members: np.ndarray, keep_row: int) -> np.ndarray:
        """Recompute the components of ``members`` (live nodes); returns the piece rows, the
        first being ``keep_row`` when it is >= 0."""
        members = np.ascontiguousarray(members, dtype=np.int64)
        self._reserve(0, rows=members.shape[0])
        out = np.empty(max(members.shape[0], 1), dtype=np.int32)
        n = K.graph_recompute(
            self.nodes_, self.rows_, self.cnt_, self.free_rows_, self.meta_, self.trules_, self.dnl_,
            self.edges_, self.ev_head_, members, keep_row, out,
        )
        self._room = 0
        return out[:n]

    def _add_dnl(self, pairs: list[tuple[int, int]]) -> None:
        if not pairs:
            return
        n = int(self.meta_[K.C_DNL])
        need = n + len(pairs)
        if need > self.dnl_.shape[0]:
            self.dnl_ = _grow(self.dnl_, need, 0)
        self.dnl_[n:need] = np.array(pairs, dtype=np.int32)
        self.meta_[K.C_DNL] = need
        nodes = np.unique(np.array(pairs, dtype=np.int64).ravel())
        self.nodes_["state"][nodes] |= K.DNL_BIT

    def _erase_rows(self, rows: list[int]) -> np.ndarray:
        arr = np.array(sorted(set(rows)), dtype=np.int32)
        if arr.shape[0] == 0:
            return arr
        self.rows_["root"][arr] = -1
        self.rows_["size"][arr] = 0
        self.rows_["flags"][arr] = 0
        self.cnt_[arr] = 0
        if self._erase_listeners:
            for fn in self._erase_listeners:
                fn(arr)
        else:
            self.release_rows(arr)
        return arr

    def _notify_split(self, row: int, new_rows: np.ndarray) -> None:
        if new_rows.shape[0]:
            for fn in self._split_listeners:
                fn(row, new_rows)

    def unlink(self, ids: Mapping[str, str] | np.ndarray) -> UnmergeResult:
        """Detach one identifier from its profile and keep it apart.

        The identifier gets a fresh profile of its own; do-not-link pairs with every identifier
        it was linked to in the profile stop it from re-merging; the rest of the profile is
        recomputed from its evidence (it may fall apart when the identifier was the only bridge)
        and keeps the profile state (largest piece; see the module docstring).

        Parameters
        ----------
        ids
            The identifier (type -> value, the first known one is used) or its key array.

        Raises
        ------
        SchemaError
            If no identifier given is linked.
        """
        x = self._live_node(ids)
        row = self.row_of_node(x)
        members = self.members(row)
        if members.shape[0] <= 1:
            return UnmergeResult(row, np.zeros(0, np.int32), np.zeros(0, np.int32))
        inside = set(members.tolist())
        pairs = []
        for e in self._edges_touching(np.array([x])).tolist():
            a, b = int(self.edges_["a"][e]), int(self.edges_["b"][e])
            other = b if a == x else a
            if other in inside:
                pairs.append((x, other))
        self._add_dnl(pairs)
        rest = members[members != x]
        # the identifier first (its parent pointer must not lead into the rest while the rest
        # is recomputed), then the rest, which keeps the row
        alone = self._recompute(np.array([x], dtype=np.int64), -1)
        kept = self._recompute(rest, row)
        new_rows = np.concatenate([alone, kept[1:]]).astype(np.int32)
        self._notify_split(row, new_rows)
        return UnmergeResult(row, new_rows, np.zeros(0, np.int32))

    def split(self, row: int, *, apart: Sequence[Mapping[str, str] | np.ndarray] = ()) -> UnmergeResult:
        """Recompute profile ``row`` from its evidence under the current rules.

        With ``apart`` (two or more identifiers, type -> value or key arrays), every pair of
        them is first marked do-not-link, so they end in different profiles; the other
        identifiers follow the evidence. Without it, the current rules (limits, blocked values,
        size cap, do-not-link pairs) are re-applied, e.g. after a configuration change.

        Raises
        ------
        SchemaError
            If ``row`` holds no identifier, or an identifier in ``apart`` is not in it.
        """
        members = self.members(row)
        if members.shape[0] == 0:
            raise SchemaError(f"Expected a profile row with identifiers, got {row!r} - at `row`")
        seeds = [self._live_node(ids) for ids in apart]
        inside = set(members.tolist())
        for k, s in enumerate(seeds):
            if s not in inside:
                raise SchemaError(f"Expected identifiers of profile {row}, got one of another profile - at `apart[{k}]`")
        self._add_dnl([(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1 :] if a != b])
        pieces = self._recompute(members, row)
        self._notify_split(row, pieces[1:])
        return UnmergeResult(row, pieces[1:].astype(np.int32), np.zeros(0, np.int32))

    def _delete_nodes(self, rm: np.ndarray, mode: int) -> None:
        """:func:`~._kernels.graph.graph_remove` of live nodes ``rm`` (int64), with room on the
        free-node stack for those it recycles (mode 0)."""
        need = int(self.meta_[K.C_FREE_NODES]) + rm.shape[0]
        if self.free_nodes_.shape[0] < need:
            self.free_nodes_ = _grow(self.free_nodes_, need, 0)
        K.graph_remove(self.tab_, self.nodes_, self.free_nodes_, self.meta_, self.dnl_, self.edges_,
                       self.ev_head_, rm, mode)
        self._room = 0

    def _remove(self, nodes: list[int], mode: int) -> UnmergeResult:
        """Remove live ``nodes`` (mode 0 delete, TOMB, BLOCKED) and recompute what they leave."""
        by_row: dict[int, list[int]] = {}
        for x in sorted(set(nodes)):
            by_row.setdefault(self.row_of_node(x), []).append(x)
        groups = [(row, self.members(row)) for row in by_row]
        rm = np.array(sorted(set(nodes)), dtype=np.int64)
        self._delete_nodes(rm, mode)
        erased: list[int] = []
        new_rows: list[np.ndarray] = []
        kept_row = -1
        gone = set(rm.tolist())
        for row, members in groups:
            rest = np.array([m for m in members.tolist() if m not in gone], dtype=np.int64)
            if rest.shape[0] == 0:
                erased.append(row)
                continue
            pieces = self._recompute(rest, row)
            kept_row = row
            new_rows.append(pieces[1:])
            self._notify_split(row, pieces[1:])
        er = self._erase_rows(erased)
        nr = np.concatenate(new_rows).astype(np.int32) if new_rows else np.zeros(0, np.int32)
        return UnmergeResult(kept_row, nr, er)

    def forget(
        self, ids: Mapping[str, str] | np.ndarray | None = None, *, row: int | None = None,
    ) -> UnmergeResult:
        """Erase identifiers (``ids``: type -> value or a key array) or a whole person (``row``,
        every identifier of the profile) and keep keyed tombstones.

        Their evidence and do-not-link pairs are deleted; what remains of each profile is
        recomputed (and keeps the profile state); a profile left with no identifier is erased
        (erase listeners clear it). Later events carrying a tombstoned identifier link nothing
        unless they carry explicit consent (:meth:`link_one`). Unknown identifiers get a
        tombstone too, so a later batch load cannot introduce them.

        Raises
        ------
        SchemaError
            If neither or both of ``ids`` and ``row`` are given, or a value is malformed.
        """
        if (ids is None) == (row is None):
            raise SchemaError("Expected either `ids` or `row`, got " + ("both" if ids is not None else "neither") + " - at `forget`")
        if row is not None:
            nodes = self.members(row).tolist()
            if not nodes:
                return UnmergeResult(-1, np.zeros(0, np.int32), np.zeros(0, np.int32))
            return self._remove(nodes, K.TOMB)
        assert ids is not None
        if isinstance(ids, Mapping):
            keys, types = self.keys_of(ids)
        else:
            keys = self._as_keys(ids)
            types = np.zeros(keys.shape[1], dtype=np.int8)
        keys = keys.copy()
        if keys.shape[0] > 1:
            keys[1] &= np.uint64(0xFFFFFFFF)
        found = self._node_of(keys)
        live = [int(n) for n in found.tolist() if n >= 0 and (int(self.nodes_["state"][n]) & K.STATE_MASK) == K.LIVE]
        res = self._remove(live, K.TOMB) if live else UnmergeResult(-1, np.zeros(0, np.int32), np.zeros(0, np.int32))
        absent = found < 0
        if absent.any():  # tombstones for identifiers never seen
            self._reserve(int(absent.sum()))
            out = np.empty(int(absent.sum()), dtype=np.int32)
            K.graph_block(self.tab_, self.nodes_, self.free_nodes_, self.meta_,
                          np.ascontiguousarray(keys[:, absent]), np.ascontiguousarray(types[absent]), out)
            self.nodes_["state"][out[out >= 0]] = K.TOMB
            self._room = 0
        return res

    def readmit(self, keys: np.ndarray) -> int:
        """Lift the tombstones of ``keys`` (uint64[2, m]) without linking anything; returns how
        many were lifted. (Events with explicit consent do this as they link.)"""
        found = self._node_of(keys)
        tomb = [int(n) for n in found.tolist() if n >= 0 and int(self.nodes_["state"][n]) & K.STATE_MASK == K.TOMB]
        if tomb:
            # a tombstone holds nothing: deleting it leaves the identifier simply unknown
            self.nodes_["state"][tomb] = K.LIVE
            self.meta_[K.C_LIVE] += len(tomb)
            self._delete_nodes(np.array(tomb, dtype=np.int64), 0)
        return len(tomb)

    def block(self, id_type: str, value: str) -> UnmergeResult:
        """Block a value at run time (a placeholder discovered in the data): it never links
        again, and if it is linked now it is removed from its profile, which is recomputed.

        Raises
        ------
        SchemaError
            If the value is malformed for its type.
        """
        code = self.type_code(id_type)
        canonical, _ = self.rules.canonical(id_type, value, self.rules.rule(code))
        k, tag = identifier_key(self.key, id_type, canonical)
        keys = np.array([[k], [tag]], dtype=np.uint64)
        node = int(self._node_of(keys)[0])
        if node >= 0 and (int(self.nodes_["state"][node]) & K.STATE_MASK) == K.LIVE:
            return self._remove([node], K.BLOCKED)
        if node >= 0:
            self.nodes_["state"][node] = K.BLOCKED
        else:
            self._reserve(1)
            K.graph_block(self.tab_, self.nodes_, self.free_nodes_, self.meta_, keys,
                          np.array([code], dtype=np.int8), np.empty(1, dtype=np.int32))
            self._room = 0
        return UnmergeResult(-1, np.zeros(0, np.int32), np.zeros(0, np.int32))

    def evict(self, rows: np.ndarray) -> int:
        """Drop whole profiles ``rows`` to bound memory: their identifiers (no tombstone: they
        come back as new), evidence and do-not-link pairs; erase listeners clear the rows,
        which are then reused. Tombstones and blocked values hold no row and are kept, so an
        erased identifier stays erased. Returns the identifiers dropped. O(identifiers) for the
        scan plus O(degree) per dropped identifier.

        Raises
        ------
        SchemaError
            If a row is not a live profile.
        """
        rows = np.unique(np.asarray(rows, dtype=np.int32))
        if rows.shape[0] == 0:
            return 0
        n_rows = int(self.meta_[K.C_ROWS])
        if rows[0] < 0 or rows[-1] >= n_rows or (self.rows_["root"][rows] < 0).any():
            raise SchemaError(f"Expected live profile rows, got {rows[:8].tolist()!r}... - at `rows`")
        sizes = self.rows_["size"][rows].astype(np.int64)
        total = int(sizes.sum())
        n = int(self.meta_[K.C_NODES])
        if 16 * rows.shape[0] < n:  # a few rows: walk their member lists
            rm = np.empty(total, dtype=np.int64)
            roots = self.rows_["root"][rows].tolist()
            pos = 0
            for r, size in zip(roots, sizes.tolist()):
                pos += K.graph_members(self.nodes_, r, rm[pos : pos + size])
            rm = rm[:pos]
        else:  # many: one scan of every node's row
            node_rows = np.empty(n, dtype=np.int32)
            K.graph_component_rows(self.nodes_, n, node_rows)
            sel = np.zeros(n_rows + 1, dtype=bool)  # -1 (not live) lands on the spare last cell
            sel[rows] = True
            rm = np.flatnonzero(sel[node_rows]).astype(np.int64)
        self._delete_nodes(rm, 0)
        self._erase_rows(rows.tolist())
        self.compact_evidence()
        return int(rm.shape[0])

    def compact_evidence(self, *, force: bool = False) -> int:
        """Reclaim the records of deleted evidence edges once they outnumber the live ones (or
        always with ``force``), keeping evidence order; returns the records freed."""
        meta = self.meta_
        dead = int(meta[K.C_EDGES]) - int(meta[K.C_LIVE_EDGES])
        if dead == 0 or (not force and dead < max(1024, int(meta[K.C_LIVE_EDGES]))):
            return 0
        freed: int = K.graph_compact_edges(self.edges_, self.ev_head_, meta, int(meta[K.C_NODES]))
        self._room = 0
        return freed

    def expire(self, now: int) -> UnmergeResult:
        """Drop volatile identifiers (types with ``ttl_days``) not seen for longer than their
        time-to-live before ``now`` (epoch ms), with their evidence; recompute what they leave.
        No tombstone: the identifier may come back as new."""
        n = int(self.meta_[K.C_NODES])
        out = np.empty(n, dtype=np.int64)
        k = K.graph_expired(self.nodes_, n, self.trules_, now, out)
        if k == 0:
            return UnmergeResult(-1, np.zeros(0, np.int32), np.zeros(0, np.int32))
        return self._remove(out[:k].tolist(), 0)

    # ------------------------------------------------------------------ verification
    def partition(self) -> set[frozenset[int]]:
        """The current components as sets of keys (for checks and tests)."""
        keys = self.live_keys()[0].tolist()
        rows = self.component_rows().tolist()
        comps: dict[int, set[int]] = {}
        for k, r in zip(keys, rows):
            comps.setdefault(r, set()).add(int(k))
        return {frozenset(c) for c in comps.values()}

    def partition_from_evidence(self) -> set[frozenset[int]]:
        """The components recomputed from scratch from the evidence, the rules and the
        do-not-link pairs (on copies: nothing changes). Equal to :meth:`partition` when no
        identifier was removed since the links were made (removals recompute locally)."""
        clone = IdentityGraph.__new__(IdentityGraph)
        clone.__dict__.update(self.__dict__)
        for name in _ARRAYS:
            setattr(clone, name, getattr(self, name).copy())
        clone._listeners, clone._split_listeners, clone._erase_listeners = [], [], []
        live = np.flatnonzero(clone._live_mask()).astype(np.int64)
        clone.meta_[K.C_FREE] = 0
        clone.meta_[K.C_ROWS] = 0
        clone._recompute(live, -1)
        return clone.partition()

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

    def memory(self) -> dict[str, float]:
        """Bytes held, by part: the core (key table + node records: what resolving needs), per
        identifier; the per-profile rule counters; the evidence (edges, edge set, adjacency,
        do-not-link pairs), per edge."""
        core = self.tab_.nbytes + self.nodes_.nbytes
        rows = self.rows_.nbytes + self.cnt_.nbytes + self.free_rows_.nbytes
        ev = self.edges_.nbytes + self.ev_head_.nbytes + self.dnl_.nbytes + self.free_nodes_.nbytes
        n = max(self.n_nodes, 1)
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
        }

    def nbytes(self) -> int:
        """Bytes held by the graph's arrays."""
        return int(sum(getattr(self, name).nbytes for name in _ARRAYS))

    # ------------------------------------------------------------------ persistence
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The whole state as plain arrays (record arrays trimmed to their used length), plus
        ``types`` and ``sources`` (str arrays). Rebuild with :meth:`from_arrays`."""
        meta = self.meta_
        out = {name.rstrip("_"): getattr(self, name) for name in _ARRAYS}
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
    ) -> IdentityGraph:
        """Rebuild a graph saved with :meth:`to_arrays` (the same secret and, normally, the same
        identity configuration; the rules of ``spec`` apply from now on).

        Raises
        ------
        ConfigError
            If an array is missing or has the wrong dtype.
        """
        need = [n.rstrip("_") for n in _ARRAYS] + ["types", "sources"]
        missing = [n for n in need if n not in arrays]
        if missing:
            raise ConfigError(f"expected identity arrays {need}, missing {missing}")
        g = cls(key, types=[str(t) for t in arrays["types"].tolist()], capacity=1, spec=spec)
        for name in _ARRAYS:
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
            setattr(g, name, _grow(a, a.shape[0] + 16, fill))
        g.sources = tuple(str(s) for s in arrays["sources"].tolist())
        g._source_code = {s: i for i, s in enumerate(g.sources)}
        g._room = 0
        return g

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_arrays` to an ``.npz`` file (no pickle)."""
        np.savez(path, **self.to_arrays())  # type: ignore[arg-type]

    @classmethod
    def load(cls, key: bytes, path: str | Path, *, spec: IdentitySpec | None = None) -> IdentityGraph:
        """Read a graph written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays(key, {k: data[k] for k in data.files}, spec=spec)
