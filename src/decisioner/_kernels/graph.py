"""Identity graph kernels: an open-addressing key table, a union-find with merge rules, and the
evidence (every link as an edge) that makes the graph recomputable.

State (owned and grown by :class:`decisioner.identity.IdentityGraph`):

* ``tab`` uint64[cap] (a power of two): 0 = empty slot, else ``(key >> 32) << 32 | (node + 1)``
  (the key's high half as a fingerprint, the node index plus one). Linear probing from
  ``key & (cap - 1)``; keys are keyed xxh3 hashes, so uniform. Deletion shifts back (no
  deletion markers).
* ``nodes`` :data:`NODE_DTYPE` [n]: one record per identifier ever stored (26 bytes):
  ``key`` uint64, ``tag`` uint32 (independent 32-bit check hash; 0 = not known),
  ``parent`` int32 (>= 0: parent node; < 0: a root, whose profile row is ``-2 - parent``,
  so -1 = root without a row), ``next`` int32 (circular list of the component's members),
  ``seen`` int32 (last event time, minutes since 2000-01-01 UTC), ``type`` int8,
  ``state`` uint8 (:data:`LIVE`, :data:`BLOCKED`, :data:`TOMB`, :data:`FREE`, plus the
  :data:`DNL_BIT` of a node in a do-not-link pair).
* ``rows`` :data:`ROW_DTYPE` [r]: per profile row ``root`` (node, -1 unused, -2 the scratch
  row), ``size`` (identifiers), ``flags`` (:data:`ROW_DNL`); ``cnt`` uint16[r, slots]: how many
  identifiers of each limited type the component holds.
* ``free_rows`` / ``free_nodes`` int32 stacks; ``meta`` int64[:data:`META_SIZE`]: counters,
  refusals by reason and rule parameters (indices below); ``trules`` int64[128, 4]: per type
  code its priority, limit slot (-1 = none) and time-to-live in minutes (0 = none).
* ``dnl`` int32[k, 2]: do-not-link node pairs; two components holding the two ends of a pair
  never merge.
* Evidence: ``edges`` :data:`EDGE_DTYPE` [e] (``a``, ``b`` nodes, ``t`` event time ms, ``src``
  source code, -1 = deleted; ``next_a``/``next_b`` adjacency lists) and ``ev_head`` int32[n]
  (latest edge of each node). A pair is recorded once: a link with an identifier created by the
  same event is new by construction; otherwise both adjacency lists are walked in step, which
  costs O(smaller degree) and usually stops at the head (a repeated link is the latest one).

Merge rules (checked on every link, see :func:`graph_link`): blocked keys and keys of erased
identifiers (tombstones) never link; a merge that would give a component more identifiers of
a limited type than its limit (1 for unique types), or more identifiers than the size cap, is
refused; do-not-link pairs are refused always. An event resolves to its *anchor*: the
identifier with the highest type priority (ties: the first listed); the others join the
anchor's component in priority order when the rules allow and otherwise stay where they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import helper, kernel, prefetch
from .topk import sort_by

NODE_DTYPE = np.dtype(
    [("key", "<u8"), ("tag", "<u4"), ("parent", "<i4"), ("next", "<i4"), ("seen", "<i4"),
     ("type", "i1"), ("state", "u1")],
    align=False,
)
ROW_DTYPE = np.dtype([("root", "<i4"), ("size", "<i4"), ("flags", "<i4")], align=False)
EDGE_DTYPE = np.dtype(
    [("a", "<i4"), ("b", "<i4"), ("t", "<i8"), ("src", "<i2"), ("next_a", "<i4"), ("next_b", "<i4")],
    align=False,
)

# node states (low bits) and flags (high bits)
LIVE = 0
BLOCKED = 1
TOMB = 2
FREE = 3
STATE_MASK = 0x0F
MARK_BIT = 0x40  # transient: member of the component being recomputed
DNL_BIT = 0x80
ROW_DNL = 1
SCRATCH_ROOT = -2

# meta: counters
C_NODES = 0  # node records handed out (live, blocked, tombstones, free)
C_ROWS = 1  # profile rows handed out
C_FREE = 2  # free rows on the stack
C_MERGES = 3  # unions performed by links
C_LIVE = 4  # live identifiers
C_FREE_NODES = 5
C_EDGES = 6  # edge records used (live and deleted)
C_LIVE_EDGES = 7
# 8: unused
C_DNL = 9  # do-not-link pairs
C_SCRATCH = 10  # the scratch row (-1: none yet)
C_TAB = 11  # entries in the key table
# meta: refused identifiers / links by reason
R_BLOCKED = 12
R_TOMBSTONED = 13
R_COLLISION = 14
R_UNIQUE = 15
R_LIMIT = 16
R_SIZE = 17
R_DNL = 18
# meta: events
C_EVENTS = 19  # events linked
C_SUPPRESSED = 20  # events that carried an erased identifier (nothing linked)
C_READMITTED = 21  # tombstones lifted by an explicit consent event
C_ANONYMOUS = 22  # events with no usable identifier (resolved to the scratch row)
# meta: rule parameters
P_RULES = 32  # 1: merge rules on
P_CAP = 33  # component size cap (0: none)
P_SLOTS = 34  # number of limited types
P_SLOT_LIMIT = 40  # 16 limits
MAX_SLOTS = 16
META_SIZE = 64

# trules columns
T_PRIO = 0
T_SLOT = 1
T_TTL = 2  # minutes, 0 = none
N_TYPES = 128

# link status bits
S_NEW = 1  # the event's component got a fresh row
S_REFUSED = 2  # some identifier or link was refused by a rule
S_SUPPRESSED = 4  # the event carried an erased identifier: nothing was linked
S_ANONYMOUS = 8  # no usable identifier: the scratch row
S_COLLISION = 16  # a key matched a stored key with another check tag

#: groups (keys) :func:`graph_link_many` (:func:`graph_lookup_many`) prefetch ahead
PREFETCH = 16
#: largest event the all-new fast path takes
MAX_FAST = 64

#: event time origin of ``seen`` (2000-01-01T00:00:00Z) and its unit
EPOCH_MS = 946_684_800_000
MINUTE_MS = 60_000

#: an integer scalar inside kernels (a Python int or a NumPy integer: numba types both alike)
Int = Any

_U32 = np.uint64(0xFFFFFFFF)
_HIGH = np.uint64(1 << 63)
_S32 = np.uint64(32)


# ----------------------------------------------------------------------------- table


@helper(hot=True)
def _probe(tab: np.ndarray, nodes: np.ndarray, key: np.uint64) -> tuple[Int, Int]:
    """(slot, node) of ``key``, or (empty slot where it would go, -1). Assumes load < 1."""
    mask = np.uint64(tab.shape[0] - 1)
    fp = key >> _S32
    i = key & mask
    while True:
        e = tab[i]
        if e == 0:
            return np.int64(i), np.int64(-1)
        if (e >> _S32) == fp:
            n = np.int64(e & _U32) - 1
            if nodes[n]["key"] == key:
                return np.int64(i), n
        i = (i + np.uint64(1)) & mask


@helper(hot=True)
def _tab_put(tab: np.ndarray, slot: int, key: np.uint64, n: int) -> None:
    tab[slot] = ((key >> _S32) << _S32) | np.uint64(n + 1)


@helper
def _tab_delete(tab: np.ndarray, nodes: np.ndarray, slot: Int) -> None:
    """Empty ``slot`` and shift later entries of its probe run back (no deletion markers)."""
    mask = np.int64(tab.shape[0] - 1)
    i = slot
    j = slot
    while True:
        j = (j + 1) & mask
        e = tab[j]
        if e == 0:
            break
        n = np.int64(e & _U32) - 1
        home = np.int64(nodes[n]["key"] & np.uint64(mask))
        if i <= j:
            movable = home <= i or home > j
        else:
            movable = home <= i and home > j
        if movable:
            tab[i] = e
            i = j
    tab[i] = 0


@helper(hot=True)
def _has_edge(edges: np.ndarray, ev_head: np.ndarray, a: int, b: int) -> bool:
    """Whether a live edge joins ``a`` and ``b``: both adjacency lists walked in step, so the
    cost is O(smaller degree)."""
    ea = ev_head[a]
    eb = ev_head[b]
    while ea >= 0 and eb >= 0:
        if edges[ea]["src"] >= 0 and (edges[ea]["a"] == b or edges[ea]["b"] == b):
            return True
        if edges[eb]["src"] >= 0 and (edges[eb]["a"] == a or edges[eb]["b"] == a):
            return True
        ea = edges[ea]["next_a"] if edges[ea]["a"] == a else edges[ea]["next_b"]
        eb = edges[eb]["next_a"] if edges[eb]["a"] == b else edges[eb]["next_b"]
    return False


@helper(hot=True)
def _word(keys: np.ndarray, j: Int) -> Int:
    """The check-tag word of key ``j``: ``keys[1, j]``, or 0 when ``keys`` has one row (keys
    without tags, e.g. a pre-hashed bulk load passed as a reshaped view: no copy)."""
    if keys.shape[0] > 1:
        return keys[1, j]
    return np.uint64(0)


# ----------------------------------------------------------------------------- union-find


@helper(hot=True)
def _find(nodes: np.ndarray, x: Int) -> Int:
    """Root of ``x`` with path halving (iterative; writes parent pointers)."""
    while True:
        p = np.int64(nodes[x]["parent"])
        if p < 0:
            return x
        gp = np.int64(nodes[p]["parent"])
        if gp < 0:
            return p
        nodes[x]["parent"] = gp
        x = gp


@helper(hot=True)
def _root_ro(nodes: np.ndarray, x: Int) -> Int:
    """Root of ``x`` without writing (safe for concurrent readers)."""
    while True:
        p = np.int64(nodes[x]["parent"])
        if p < 0:
            return x
        x = p


@helper(hot=True)
def _row_of(nodes: np.ndarray, r: Int) -> Int:
    return -2 - np.int64(nodes[r]["parent"])


@helper(hot=True)
def _new_row(rows: np.ndarray, cnt: np.ndarray, free_rows: np.ndarray, meta: np.ndarray) -> Int:
    nf = meta[C_FREE]
    if nf > 0:
        row = np.int64(free_rows[nf - 1])
        meta[C_FREE] = nf - 1
    else:
        row = meta[C_ROWS]
        meta[C_ROWS] = row + 1
    rows[row]["root"] = -1
    rows[row]["size"] = 0
    rows[row]["flags"] = 0
    for s in range(cnt.shape[1]):
        cnt[row, s] = 0
    return row


@helper
def _scratch(rows: np.ndarray, cnt: np.ndarray, free_rows: np.ndarray, meta: np.ndarray) -> Int:
    row = meta[C_SCRATCH]
    if row < 0:
        row = _new_row(rows, cnt, free_rows, meta)
        rows[row]["root"] = SCRATCH_ROOT
        meta[C_SCRATCH] = row
    return row


@helper(hot=True)
def _alloc_node(nodes: np.ndarray, free_nodes: np.ndarray, meta: np.ndarray) -> Int:
    nf = meta[C_FREE_NODES]
    if nf > 0:
        meta[C_FREE_NODES] = nf - 1
        return np.int64(free_nodes[nf - 1])
    n = meta[C_NODES]
    meta[C_NODES] = n + 1
    return n


@helper(hot=True)
def _minutes(t_ms: int) -> int:
    m = (t_ms - EPOCH_MS) // MINUTE_MS
    if m < 0:
        return 0
    if m > 2_147_483_647:
        return 2_147_483_647
    return m


@helper
def _dnl_between(
    nodes: np.ndarray, dnl: np.ndarray, n_dnl: int, side: np.ndarray, off: int, n_side: int, r: int,
) -> bool:
    """True when a do-not-link pair has one end in a component rooted in
    ``side[off:off + n_side]`` and the other in the component rooted at ``r``."""
    for k in range(n_dnl):
        ra = _find(nodes, np.int64(dnl[k, 0]))
        rb = _find(nodes, np.int64(dnl[k, 1]))
        if ra == r:
            for z in range(n_side):
                if side[off + z] == rb:
                    return True
        elif rb == r:
            for z in range(n_side):
                if side[off + z] == ra:
                    return True
    return False


@helper(hot=True)
def _add_edge(
    edges: np.ndarray, ev_head: np.ndarray, meta: np.ndarray, a: int, b: int, t_ms: int, src: int,
) -> None:
    e = meta[C_EDGES]
    meta[C_EDGES] = e + 1
    meta[C_LIVE_EDGES] += 1
    edges[e]["a"] = a
    edges[e]["b"] = b
    edges[e]["t"] = t_ms
    edges[e]["src"] = src
    edges[e]["next_a"] = ev_head[a]
    edges[e]["next_b"] = ev_head[b]
    ev_head[a] = e
    ev_head[b] = e


# ----------------------------------------------------------------------------- linking


@helper(hot=True)
def _all_new(work: np.ndarray, m: int) -> bool:
    """Whether :func:`_link_start` found every key of the event new (``work[:m]`` all -1)."""
    for j in range(m):
        if work[j] != -1:
            return False
    return True


@helper(hot=True)
def _link_fresh(
    tab: np.ndarray, nodes: np.ndarray, rows: np.ndarray, cnt: np.ndarray, free_rows: np.ndarray,
    free_nodes: np.ndarray, meta: np.ndarray, trules: np.ndarray, edges: np.ndarray,
    ev_head: np.ndarray, keys: np.ndarray, types: np.ndarray, lo: int, m: int, t_ms: int,
    t_min: int, src: int, work: np.ndarray,
) -> Int:
    """An event whose identifiers are all new and distinct (the bulk-load common case): one new
    component, the same result as the general path with less work. Returns -1 (and changes
    nothing) when a rule could refuse part of it, so the general path decides."""
    rules = meta[P_RULES] != 0
    nslots = meta[P_SLOTS]
    if rules:
        cap = meta[P_CAP]
        if cap > 0 and m > cap:
            return -1
        for s in range(nslots):
            work[8 * m + s] = 0
        for j in range(m):
            ts = trules[types[lo + j], T_SLOT]
            if ts >= 0:
                work[8 * m + ts] += 1
                if work[8 * m + ts] > meta[P_SLOT_LIMIT + ts]:
                    return -1
    # anchor: the highest priority, first on ties
    ja = 0
    if rules:
        best = trules[types[lo], T_PRIO]
        for j in range(1, m):
            pj = trules[types[lo + j], T_PRIO]
            if pj > best:
                best = pj
                ja = j
    row = _new_row(rows, cnt, free_rows, meta)
    root = -1
    for j in range(m):
        key = keys[0, lo + j]
        slot = work[7 * m + j]
        if tab[slot] != 0:  # taken by a key of this event inserted first
            slot, _ = _probe(tab, nodes, key)
        n = _alloc_node(nodes, free_nodes, meta)
        nodes[n]["key"] = key
        nodes[n]["tag"] = np.uint32(_word(keys, lo + j) & _U32)
        nodes[n]["type"] = types[lo + j]
        nodes[n]["state"] = LIVE
        nodes[n]["seen"] = t_min
        _tab_put(tab, slot, key, n)
        ev_head[n] = -1
        work[j] = n
        if root < 0:
            root = n
            nodes[n]["next"] = n
        else:
            nodes[n]["parent"] = root
            nodes[n]["next"] = nodes[root]["next"]
            nodes[root]["next"] = n
    nodes[root]["parent"] = -2 - row
    meta[C_TAB] += m
    meta[C_LIVE] += m
    meta[C_MERGES] += m - 1
    meta[C_EVENTS] += 1
    rows[row]["root"] = root
    rows[row]["size"] = m
    if rules:
        for s in range(nslots):
            cnt[row, s] = work[8 * m + s]
    an = work[ja]
    # evidence in priority order (stable), as the general path records it
    for j in range(m):
        work[2 * m + j] = j
    if rules:
        for j in range(1, m):
            z = j
            pj = trules[types[lo + j], T_PRIO]
            while z > 0 and trules[types[lo + work[2 * m + z - 1]], T_PRIO] < pj:
                work[2 * m + z] = work[2 * m + z - 1]
                z -= 1
            work[2 * m + z] = j
    for z in range(m):
        j = work[2 * m + z]
        if j != ja:
            _add_edge(edges, ev_head, meta, an, work[j], t_ms, src)
    return row


@helper(hot=True)
def _link_start(
    tab: np.ndarray, nodes: np.ndarray, rows: np.ndarray, cnt: np.ndarray, free_rows: np.ndarray,
    free_nodes: np.ndarray, meta: np.ndarray, trules: np.ndarray, keys: np.ndarray, types: np.ndarray,
    lo: int, hi: int, t_min: int, readmit: bool, ev_head: np.ndarray, work: np.ndarray,
) -> tuple[int, int, int, bool]:
    """First phase of linking one event (``keys[:, lo:hi]``): the one-identifier fast path, else
    every key looked up into ``work``. Returns ``(row, status, kept, poisoned)``: ``kept`` < 0
    when the fast path resolved the event to ``row``; otherwise how many keys are usable and
    whether one is erased, for :func:`_link_fresh` or :func:`_link_merge`."""
    m = hi - lo
    if m == 1 and (_word(keys, lo) >> _S32) == 0:
        # fast path of the most common event (one identifier, e.g. a view by cookie): nothing to
        # merge, no rule to check, no evidence to record
        key = keys[0, lo]
        tag = np.uint32(_word(keys, lo) & _U32)
        slot, n = _probe(tab, nodes, key)
        if n >= 0 and (nodes[n]["state"] & STATE_MASK) == LIVE and (
            tag == 0 or nodes[n]["tag"] == 0 or nodes[n]["tag"] == tag
        ):
            if tag != 0 and nodes[n]["tag"] == 0:
                nodes[n]["tag"] = tag
            if t_min > nodes[n]["seen"]:
                nodes[n]["seen"] = t_min
            meta[C_EVENTS] += 1
            return _row_of(nodes, _find(nodes, n)), 0, -1, False
        if n < 0:
            n = _alloc_node(nodes, free_nodes, meta)
            nodes[n]["key"] = key
            nodes[n]["tag"] = tag
            nodes[n]["type"] = types[lo]
            nodes[n]["state"] = LIVE
            nodes[n]["next"] = n
            nodes[n]["seen"] = t_min
            _tab_put(tab, slot, key, n)
            ev_head[n] = -1
            meta[C_TAB] += 1
            meta[C_LIVE] += 1
            meta[C_EVENTS] += 1
            row = _new_row(rows, cnt, free_rows, meta)
            nodes[n]["parent"] = -2 - row
            rows[row]["root"] = n
            rows[row]["size"] = 1
            s1 = trules[types[lo], T_SLOT] if meta[P_RULES] != 0 else -1
            if s1 >= 0 and s1 < meta[P_SLOTS]:
                cnt[row, s1] = 1
            return row, S_NEW, -1, False
        # blocked, erased or colliding: the general path counts and resolves it
    # work (indexed, not sliced: views would cost reference counting per event), m each:
    # node | root | order | accepted | first of its component | accepted roots | fresh | slot | counts
    status = 0
    poisoned = False
    kept = 0
    # 1. look every key up; drop duplicates, blocked keys, collisions and tombstones
    for j in range(m):
        work[j] = -2
        work[3 * m + j] = 0
        work[6 * m + j] = 0
        key = keys[0, lo + j]
        dup = False
        for jj in range(j):
            if keys[0, lo + jj] == key:
                dup = True
                break
        if dup:
            continue
        word = _word(keys, lo + j)
        tag = np.uint32(word & _U32)
        slot, n = _probe(tab, nodes, key)
        if (word >> _S32) & np.uint64(1) != 0:
            # blocked by the rules: never linked; remembered as a blocked key when new
            meta[R_BLOCKED] += 1
            status |= S_REFUSED
            if n < 0:
                n = _alloc_node(nodes, free_nodes, meta)
                nodes[n]["key"] = key
                nodes[n]["tag"] = tag
                nodes[n]["parent"] = -1
                nodes[n]["next"] = n
                nodes[n]["seen"] = 0
                nodes[n]["type"] = types[lo + j]
                nodes[n]["state"] = BLOCKED
                _tab_put(tab, slot, key, n)
                meta[C_TAB] += 1
            continue
        if n >= 0:
            ntag = nodes[n]["tag"]
            if tag != 0 and ntag != 0 and ntag != tag:
                meta[R_COLLISION] += 1
                status |= S_COLLISION | S_REFUSED
                continue
            st = nodes[n]["state"] & STATE_MASK
            if st == BLOCKED:
                meta[R_BLOCKED] += 1
                status |= S_REFUSED
                continue
            if st == TOMB:
                if not readmit:
                    meta[R_TOMBSTONED] += 1
                    poisoned = True
                    continue
                work[j] = n
                work[m + j] = -3  # revive as a new identifier
            else:
                if tag != 0 and ntag == 0:
                    nodes[n]["tag"] = tag
                work[j] = n
                work[m + j] = _find(nodes, n)
        else:
            work[j] = -1
            work[m + j] = -1
            work[7 * m + j] = slot
        kept += 1
    return -1, status, kept, poisoned


@helper(hot=True)
def _link_merge(
    tab: np.ndarray, nodes: np.ndarray, rows: np.ndarray, cnt: np.ndarray, free_rows: np.ndarray,
    free_nodes: np.ndarray, meta: np.ndarray, trules: np.ndarray, dnl: np.ndarray, edges: np.ndarray,
    ev_head: np.ndarray, keys: np.ndarray, types: np.ndarray, lo: int, hi: int, t_ms: int, t_min: int,
    src: int, absorbed: np.ndarray, n_abs: int, work: np.ndarray, status: int, kept: int, poisoned: bool,
) -> tuple[int, int, int]:
    """The general path of linking one event after :func:`_link_start`: merges under the
    rules, the survivor row, evidence. Returns ``(row, n_abs, status)``."""
    m = hi - lo
    rules = meta[P_RULES] != 0
    cap = meta[P_CAP]
    nslots = meta[P_SLOTS]
    # 2. order the usable keys by type priority (stable): the first is the anchor
    q = 0
    for j in range(m):
        if work[j] == -2:
            continue
        pj = trules[types[lo + j], T_PRIO] if rules else 0
        z = q
        while z > 0 and (trules[types[lo + work[2 * m + z - 1]], T_PRIO] if rules else 0) < pj:
            work[2 * m + z] = work[2 * m + z - 1]
            z -= 1
        work[2 * m + z] = j
        q += 1
    if poisoned:
        # an event carrying an erased identifier links nothing and creates nothing
        meta[C_SUPPRESSED] += 1
        status |= S_SUPPRESSED
        for z in range(kept):
            j = work[2 * m + z]
            if work[m + j] >= 0:
                return _row_of(nodes, work[m + j]), n_abs, status
        meta[C_ANONYMOUS] += 1
        return _scratch(rows, cnt, free_rows, meta), n_abs, status | S_ANONYMOUS
    if kept == 0:
        meta[C_ANONYMOUS] += 1
        return _scratch(rows, cnt, free_rows, meta), n_abs, status | S_ANONYMOUS
    meta[C_EVENTS] += 1
    # 3. accept components in priority order while the rules allow
    for s in range(nslots):
        work[8 * m + s] = 0
    acc_size = 0
    acc_flags = 0
    n_roots = 0
    for z in range(kept):
        j = work[2 * m + z]
        r = work[m + j]
        c_size: Int = 1
        c_flags: Int = 0
        row_r = -1
        if r >= 0:
            already = False
            for y in range(n_roots):
                if work[5 * m + y] == r:
                    already = True
                    break
            if already:
                work[3 * m + j] = 1
                continue
            row_r = _row_of(nodes, r)
            c_size = np.int64(rows[row_r]["size"])
            c_flags = np.int64(rows[row_r]["flags"])
        if z > 0:
            reason = 0
            if rules:
                if cap > 0 and acc_size + c_size > cap:
                    reason = R_SIZE
                else:
                    if r >= 0:
                        for s in range(nslots):
                            lim = meta[P_SLOT_LIMIT + s]
                            if work[8 * m + s] + np.int64(cnt[row_r, s]) > lim:
                                reason = R_UNIQUE if lim == 1 else R_LIMIT
                                break
                    else:
                        ts = trules[types[lo + j], T_SLOT]
                        if ts >= 0:
                            lim = meta[P_SLOT_LIMIT + ts]
                            if work[8 * m + ts] + 1 > lim:
                                reason = R_UNIQUE if lim == 1 else R_LIMIT
            if reason == 0 and (acc_flags & ROW_DNL) != 0 and (c_flags & ROW_DNL) != 0:
                if _dnl_between(nodes, dnl, meta[C_DNL], work, 5 * m, n_roots, r):
                    reason = R_DNL
            if reason != 0:
                meta[reason] += 1
                status |= S_REFUSED
                continue
        work[3 * m + j] = 1
        acc_size += c_size
        acc_flags |= c_flags
        if r >= 0:
            for s in range(nslots):
                work[8 * m + s] += np.int64(cnt[row_r, s])
            work[5 * m + n_roots] = r
            n_roots += 1
        else:
            ts = trules[types[lo + j], T_SLOT]
            if ts >= 0:
                work[8 * m + ts] += 1
    # 4. insert accepted new identifiers (and revive readmitted tombstones)
    for j in range(m):
        if work[3 * m + j] == 0 or work[m + j] >= 0:
            continue
        if work[m + j] == -3:
            n = work[j]
            meta[C_READMITTED] += 1
        else:
            key = keys[0, lo + j]
            slot = work[7 * m + j]
            if tab[slot] != 0:  # taken by a key this event inserted first
                slot, _ = _probe(tab, nodes, key)
            n = _alloc_node(nodes, free_nodes, meta)
            nodes[n]["key"] = key
            nodes[n]["tag"] = np.uint32(_word(keys, lo + j) & _U32)
            _tab_put(tab, slot, key, n)
            meta[C_TAB] += 1
            ev_head[n] = -1
        nodes[n]["type"] = types[lo + j]
        nodes[n]["state"] = LIVE
        nodes[n]["parent"] = -1
        nodes[n]["next"] = n
        nodes[n]["seen"] = 0
        meta[C_LIVE] += 1
        work[j] = n
        work[m + j] = n
        work[6 * m + j] = 1
    # 5. survivor row: the largest accepted component with a row (ties: the lowest row);
    # each component is represented by its first identifier in event order
    survivor = -1
    for j in range(m):
        work[4 * m + j] = 0
        if work[3 * m + j] == 0:
            continue
        r = work[m + j]
        first = True
        for jj in range(j):
            if work[3 * m + jj] != 0 and work[m + jj] == r:
                first = False
                break
        if not first:
            continue
        work[4 * m + j] = 1
        row_r = _row_of(nodes, r)
        if row_r >= 0:
            if survivor < 0:
                survivor = row_r
            else:
                sr = rows[row_r]["size"]
                sb = rows[survivor]["size"]
                if sr > sb or (sr == sb and row_r < survivor):
                    survivor = row_r
    # 6. union the accepted components (event order, union by size); report absorbed rows
    root: Int = -1
    root_size: Int = 0
    for j in range(m):
        if work[4 * m + j] == 0:
            continue
        r = work[m + j]
        row_r = _row_of(nodes, r)
        sz = np.int64(rows[row_r]["size"]) if row_r >= 0 else 1
        if row_r >= 0 and row_r != survivor:
            absorbed[n_abs] = row_r
            n_abs += 1
            rows[row_r]["root"] = -1
            rows[row_r]["size"] = 0
            rows[row_r]["flags"] = 0
            for s in range(cnt.shape[1]):
                cnt[row_r, s] = 0
        if root < 0:
            root = r
            root_size = sz
            continue
        if sz > root_size:
            r, root = root, r
        nodes[r]["parent"] = root
        tmp = nodes[root]["next"]
        nodes[root]["next"] = nodes[r]["next"]
        nodes[r]["next"] = tmp
        root_size += sz
        meta[C_MERGES] += 1
    if survivor < 0:
        survivor = _new_row(rows, cnt, free_rows, meta)
        status |= S_NEW
    nodes[root]["parent"] = -2 - survivor
    rows[survivor]["root"] = root
    rows[survivor]["size"] = acc_size
    rows[survivor]["flags"] = acc_flags
    for s in range(nslots):
        cnt[survivor, s] = work[8 * m + s]
    # 7. evidence: the anchor linked to every other stored identifier of the event (once), in
    # the order the links were decided, so replaying the evidence decides them the same way
    ja = work[2 * m]
    an = work[ja]
    for z in range(kept):
        j = work[2 * m + z]
        n = work[j]
        if n < 0 or (nodes[n]["state"] & STATE_MASK) != LIVE:
            continue
        if t_min > nodes[n]["seen"]:
            nodes[n]["seen"] = t_min
        if n != an:
            # a node created by this event has no edge yet: no need to look
            if work[6 * m + j] != 0 or work[6 * m + ja] != 0 or not _has_edge(edges, ev_head, an, n):
                _add_edge(edges, ev_head, meta, an, n, t_ms, src)
    return survivor, n_abs, status


@kernel(nrt=False)
def graph_link(
    tab: np.ndarray, nodes: np.ndarray, rows: np.ndarray, cnt: np.ndarray, free_rows: np.ndarray,
    free_nodes: np.ndarray, meta: np.ndarray, trules: np.ndarray, dnl: np.ndarray, edges: np.ndarray,
    ev_head: np.ndarray, keys: np.ndarray, types: np.ndarray, t_ms: int, src: int,
    readmit: bool, absorbed: np.ndarray, work: np.ndarray,
) -> tuple[int, int, int]:
    """Link the identifiers of one event (``keys`` uint64[2, m]: keys, and check tags in the low
    32 bits of the second row with bit 32 set for values the rules block, or uint64[1, m]: keys
    without tags; ``types`` int8[m])
    under the merge rules and record the links as evidence.

    Returns ``(row, n_absorbed, status)``: the profile row the event resolves to, how many other
    rows its merges absorbed (written to ``absorbed`` int32[>= m]) and :data:`S_NEW` ... status
    bits. ``readmit`` lifts the tombstones of the event's identifiers (explicit consent).

    Assumes: m >= 1; room for m more nodes, edges and table entries and 2 more rows (the caller
    grows the arrays); table load < 1, edge set load < 1; ``work`` int64[>= 8 m + 16].
    O(m^2) for the event's own keys, O(m) amortised table and union-find work.

    Cold compile: about 3 s of CPU (:func:`_link_start` and :func:`_link_merge`; the all-new
    fast path of bulk loading, :func:`_link_fresh`, compiles only with :func:`graph_link_many`).
    """
    m = keys.shape[1]
    t_min = _minutes(t_ms)
    row, status, kept, poisoned = _link_start(
        tab, nodes, rows, cnt, free_rows, free_nodes, meta, trules, keys, types, 0, m, t_min, readmit, ev_head, work
    )
    if kept < 0:
        return row, 0, status
    # one event at a time skips the all-new fast path of bulk loading (same result): one
    # phase less to compile on the request path
    return _link_merge(
        tab, nodes, rows, cnt, free_rows, free_nodes, meta, trules, dnl, edges, ev_head, keys, types,
        0, m, t_ms, t_min, src, absorbed, 0, work, status, kept, poisoned,
    )


@kernel(nrt=False)
def graph_link_many(
    tab: np.ndarray, nodes: np.ndarray, rows: np.ndarray, cnt: np.ndarray, free_rows: np.ndarray,
    free_nodes: np.ndarray, meta: np.ndarray, trules: np.ndarray, dnl: np.ndarray, edges: np.ndarray,
    ev_head: np.ndarray, keys: np.ndarray, types: np.ndarray, offsets: np.ndarray,
    times: np.ndarray, srcs: np.ndarray, out_rows: np.ndarray, absorbed: np.ndarray,
    absorbed_into: np.ndarray, work: np.ndarray,
) -> int:
    """Bulk :func:`graph_link`: group g is ``keys[:, offsets[g]:offsets[g+1]]`` with event time
    ``times[g]`` and source ``srcs[g]`` (int64; a length-1 array applies to every group).

    Writes each group's row to ``out_rows`` (int32[g]; -1 for an empty group, which changes
    nothing), every absorbed row to ``absorbed`` and the index of the group that absorbed it to
    ``absorbed_into`` (int32[>= n keys]). Returns the number of absorbed rows. A later group can
    absorb a row an earlier group returned: callers resolve rows after the batch.

    Assumes: as :func:`graph_link` for n keys; ``work`` int64[>= 8 * largest group + 16].
    """
    n_abs = 0
    n_groups = offsets.shape[0] - 1
    mask = np.uint64(tab.shape[0] - 1)
    per_group_t = times.shape[0] == n_groups and n_groups != 1
    per_group_s = srcs.shape[0] == n_groups and n_groups != 1
    for g in range(n_groups):
        # two-stage prefetch: the table slots of the group 2 * PREFETCH ahead, then the nodes
        # those slots hold PREFETCH ahead, so the random misses overlap with the linking (at 10M
        # links this halves the time; results are unaffected)
        ga = g + 2 * PREFETCH
        if ga < n_groups:
            for j in range(offsets[ga], offsets[ga + 1]):
                prefetch(tab, np.int64(keys[0, j] & mask))
        gb = g + PREFETCH
        if gb < n_groups:
            for j in range(offsets[gb], offsets[gb + 1]):
                e = tab[keys[0, j] & mask]
                if e != 0 and (e >> _S32) == (keys[0, j] >> _S32):
                    prefetch(nodes, np.int64(e & _U32) - 1)
        lo = offsets[g]
        hi = offsets[g + 1]
        if hi <= lo:
            out_rows[g] = -1
            continue
        before = n_abs
        t_ms = times[g] if per_group_t else times[0]
        src = srcs[g] if per_group_s else srcs[0]
        t_min = _minutes(t_ms)
        r, status, kept, poisoned = _link_start(
            tab, nodes, rows, cnt, free_rows, free_nodes, meta, trules, keys, types, lo, hi, t_min, False, ev_head,
            work,
        )
        if kept >= 0:
            m = hi - lo
            r = -1
            if kept == m and not poisoned and m <= MAX_FAST and _all_new(work, m):
                r = _link_fresh(tab, nodes, rows, cnt, free_rows, free_nodes, meta, trules, edges, ev_head,
                                keys, types, lo, m, t_ms, t_min, src, work)
            if r < 0:
                r, n_abs, _ = _link_merge(
                    tab, nodes, rows, cnt, free_rows, free_nodes, meta, trules, dnl, edges, ev_head, keys, types,
                    lo, hi, t_ms, t_min, src, absorbed, n_abs, work, status, kept, poisoned,
                )
        out_rows[g] = r
        for k in range(before, n_abs):
            absorbed_into[k] = g
    return n_abs


# ----------------------------------------------------------------------------- lookups


@kernel(nrt=False)
def graph_lookup_many(tab: np.ndarray, nodes: np.ndarray, keys: np.ndarray, out: np.ndarray) -> int:
    """Profile row of each key (``keys`` uint64[2, m]: keys and tags, tag 0 = unchecked) into
    ``out`` int32[m]; -1 for unknown, blocked, erased or colliding keys. Writes nothing else
    (safe under a shared read lock). Returns how many were found. O(m) expected."""
    found = 0
    m = keys.shape[1]
    mask = np.uint64(tab.shape[0] - 1)
    for j in range(m):
        if j + 2 * PREFETCH < m:  # prefetch as in graph_link_many
            prefetch(tab, np.int64(keys[0, j + 2 * PREFETCH] & mask))
        if j + PREFETCH < m:
            e = tab[keys[0, j + PREFETCH] & mask]
            if e != 0:
                prefetch(nodes, np.int64(e & _U32) - 1)
        _, n = _probe(tab, nodes, keys[0, j])
        word = _word(keys, j)
        tag = np.uint32(word & _U32)
        if n < 0 or (word >> _S32) != 0 or (nodes[n]["state"] & STATE_MASK) != LIVE or (
            tag != 0 and nodes[n]["tag"] != 0 and nodes[n]["tag"] != tag
        ):
            out[j] = -1
        else:
            out[j] = _row_of(nodes, _root_ro(nodes, n))
            found += 1
    return found


@kernel(nrt=False)
def graph_lookup_one(tab: np.ndarray, nodes: np.ndarray, key_bits: Int, tag: Int) -> Int:
    """:func:`graph_lookup_many` for one pre-hashed key passed as int64 (its bits are the uint64
    key) and its tag word. O(1) expected."""
    if key_bits < 0:  # written without wrap-around casts, so it also runs as plain Python
        key = np.uint64(key_bits + 9_223_372_036_854_775_807 + 1) + _HIGH
    else:
        key = np.uint64(key_bits)
    _, n = _probe(tab, nodes, key)
    t = np.uint32(tag & 0xFFFFFFFF)
    if n < 0 or (tag >> 32) != 0 or (nodes[n]["state"] & STATE_MASK) != LIVE or (
        t != 0 and nodes[n]["tag"] != 0 and nodes[n]["tag"] != t
    ):
        return -1
    return _row_of(nodes, _root_ro(nodes, n))


@kernel(nrt=False)
def graph_find_nodes(tab: np.ndarray, nodes: np.ndarray, keys: np.ndarray, out: np.ndarray) -> None:
    """Node index of each key (uint64[2, m]) in any state, -1 when absent or colliding."""
    for j in range(keys.shape[1]):
        _, n = _probe(tab, nodes, keys[0, j])
        tag = np.uint32(_word(keys, j) & _U32)
        if n >= 0 and tag != 0 and nodes[n]["tag"] != 0 and nodes[n]["tag"] != tag:
            n = -1
        out[j] = n


@kernel(nrt=False)
def graph_find_root(nodes: np.ndarray, x: Int) -> Int:
    """Root of node ``x``, compressing the path. Assumes: ``x`` is a live node. Amortised ~O(1)."""
    return _find(nodes, x)


@kernel(nrt=False)
def graph_component_rows(nodes: np.ndarray, n_nodes: int, out: np.ndarray) -> None:
    """Profile row of every node record (int32[n_nodes]; -1 for records that are not live).
    Read-only. O(n) times the tree depth."""
    for n in range(n_nodes):
        if (nodes[n]["state"] & STATE_MASK) != LIVE:
            out[n] = -1
        else:
            out[n] = _row_of(nodes, _root_ro(nodes, n))


@kernel(nrt=False)
def graph_members(nodes: np.ndarray, x: int, out: np.ndarray) -> int:
    """Every node of ``x``'s component (its circular member list) into ``out``; returns the
    count. Assumes: ``x`` live, ``out`` at least the component size. O(size)."""
    k = 0
    y = x
    while True:
        out[k] = y
        k += 1
        y = nodes[y]["next"]
        if y == x:
            return k


@kernel(nrt=False)
def graph_edges_of(
    nodes: np.ndarray, edges: np.ndarray, ev_head: np.ndarray, members: np.ndarray, out: np.ndarray
) -> int:
    """Indices of the live edges touching ``members`` into ``out`` (an edge between two members
    appears twice). Returns the count. Assumes ``out`` holds every such edge (the caller sizes it
    from the live edge count). O(sum of degrees)."""
    k = 0
    for p in range(members.shape[0]):
        x = members[p]
        e = ev_head[x]
        while e >= 0:
            if edges[e]["src"] >= 0:
                out[k] = e
                k += 1
            e = edges[e]["next_a"] if edges[e]["a"] == x else edges[e]["next_b"]
    return k


# ----------------------------------------------------------------------------- growth


@kernel(nrt=False)
def graph_rehash(old_tab: np.ndarray, new_tab: np.ndarray, nodes: np.ndarray) -> None:
    """Move every entry of the old table into an empty larger one (power of two). O(old cap)."""
    for i in range(old_tab.shape[0]):
        e = old_tab[i]
        if e != 0:
            n = np.int64(e & _U32) - 1
            slot, _ = _probe(new_tab, nodes, nodes[n]["key"])
            new_tab[slot] = e


# ----------------------------------------------------------------------------- rule changes


@kernel(nrt=False)
def graph_block(
    tab: np.ndarray, nodes: np.ndarray, free_nodes: np.ndarray, meta: np.ndarray,
    keys: np.ndarray, types: np.ndarray, out: np.ndarray,
) -> int:
    """Store ``keys`` (uint64[2, m]) as blocked values. ``out`` int32[m] gets the node of each
    key: a fresh blocked node, the existing blocked or erased one, or -2 - node for a live
    identifier (the caller removes it first). Returns how many were added.
    Assumes: room for m more nodes and table entries."""
    added = 0
    for j in range(keys.shape[1]):
        key = keys[0, j]
        slot, n = _probe(tab, nodes, key)
        if n >= 0:
            out[j] = -2 - n if (nodes[n]["state"] & STATE_MASK) == LIVE else n
            continue
        n = _alloc_node(nodes, free_nodes, meta)
        nodes[n]["key"] = key
        nodes[n]["tag"] = np.uint32(_word(keys, j) & _U32)
        nodes[n]["parent"] = -1
        nodes[n]["next"] = n
        nodes[n]["seen"] = 0
        nodes[n]["type"] = types[j]
        nodes[n]["state"] = BLOCKED
        _tab_put(tab, slot, key, n)
        meta[C_TAB] += 1
        out[j] = n
        added += 1
    return added


@kernel(nrt=False)
def graph_remove(
    tab: np.ndarray, nodes: np.ndarray, free_nodes: np.ndarray, meta: np.ndarray, dnl: np.ndarray,
    edges: np.ndarray, ev_head: np.ndarray, rm: np.ndarray, mode: int,
) -> None:
    """Remove live nodes ``rm`` (int64) with their evidence and do-not-link pairs.

    ``mode`` 0: forget the identifier completely (table entry deleted, record recycled);
    :data:`TOMB`: keep a tombstone (the key stays in the table and never links again);
    :data:`BLOCKED`: keep it as a blocked value. The components they leave must be recomputed
    by the caller (:func:`graph_recompute`). Assumes: each node live and listed once;
    ``free_nodes`` has room. O(degree) per node plus O(pairs) for do-not-link pairs.
    """
    for p in range(rm.shape[0]):
        x = rm[p]
        e = ev_head[x]
        while e >= 0:
            nxt = edges[e]["next_a"] if edges[e]["a"] == x else edges[e]["next_b"]
            if edges[e]["src"] >= 0:
                edges[e]["src"] = -1
                meta[C_LIVE_EDGES] -= 1
            e = nxt
        ev_head[x] = -1
        k = 0
        while k < meta[C_DNL]:
            if dnl[k, 0] == x or dnl[k, 1] == x:
                last = meta[C_DNL] - 1
                dnl[k, 0] = dnl[last, 0]
                dnl[k, 1] = dnl[last, 1]
                meta[C_DNL] = last
            else:
                k += 1
        nodes[x]["parent"] = -1
        nodes[x]["next"] = x
        meta[C_LIVE] -= 1
        if mode == 0:
            slot, n = _probe(tab, nodes, nodes[x]["key"])
            if n == x:
                _tab_delete(tab, nodes, slot)
                meta[C_TAB] -= 1
            nodes[x]["state"] = FREE
            nodes[x]["key"] = 0
            nodes[x]["tag"] = 0
            free_nodes[meta[C_FREE_NODES]] = x
            meta[C_FREE_NODES] += 1
        else:
            nodes[x]["state"] = mode


@kernel
def graph_recompute(
    nodes: np.ndarray, rows: np.ndarray, cnt: np.ndarray, free_rows: np.ndarray, meta: np.ndarray,
    trules: np.ndarray, dnl: np.ndarray, edges: np.ndarray, ev_head: np.ndarray,
    members: np.ndarray, keep_row: int, out_rows: np.ndarray,
) -> int:
    """Recompute the components of the live nodes ``members`` (int64) from their evidence.

    The members are reset to single nodes, then their live edges with both ends among them are
    replayed in evidence order through the merge rules (limits, size cap, do-not-link; refusals
    are not counted again). Pieces are ordered by size (largest first, ties: the piece holding
    the lowest node index); the first keeps ``keep_row`` (when >= 0), the others get fresh rows
    (free stack first), written to ``out_rows`` in that order. Returns the number of pieces.

    Assumes: ``members`` are all the live nodes of the components being recomputed (their old
    rows are the caller's to release, except ``keep_row``); room for ``len(members)`` more rows.
    O((members + edges) log) plus O(pairs) per do-not-link check.
    """
    n_mem = members.shape[0]
    if n_mem == 0:
        return 0
    rules = meta[P_RULES] != 0
    cap = meta[P_CAP]
    nslots = meta[P_SLOTS]
    width = max(nslots, 1)
    # positions ride in `next` while the members are single nodes
    for p in range(n_mem):
        x = members[p]
        nodes[x]["state"] = nodes[x]["state"] | MARK_BIT
        nodes[x]["parent"] = -1
        nodes[x]["next"] = p
    n_e = 0
    for p in range(n_mem):
        x = members[p]
        e = ev_head[x]
        while e >= 0:
            if edges[e]["a"] == x:
                if edges[e]["src"] >= 0 and (nodes[edges[e]["b"]]["state"] & MARK_BIT) != 0:
                    n_e += 1
                e = edges[e]["next_a"]
            else:
                e = edges[e]["next_b"]
    elist = np.empty(n_e, np.int64)
    k = 0
    for p in range(n_mem):
        x = members[p]
        e = ev_head[x]
        while e >= 0:
            if edges[e]["a"] == x:
                if edges[e]["src"] >= 0 and (nodes[edges[e]["b"]]["state"] & MARK_BIT) != 0:
                    elist[k] = e
                    k += 1
                e = edges[e]["next_a"]
            else:
                e = edges[e]["next_b"]
    sort_by(elist, elist[:0])
    psize = np.ones(n_mem, np.int64)
    pflags = np.zeros(n_mem, np.int64)
    pcnt = np.zeros((n_mem, width), np.int64)
    side = np.empty(1, np.int64)
    for p in range(n_mem):
        x = members[p]
        s = trules[nodes[x]["type"], T_SLOT]
        if s >= 0:
            pcnt[p, s] = 1
        if (nodes[x]["state"] & DNL_BIT) != 0:
            pflags[p] = ROW_DNL
    for k in range(n_e):
        e = elist[k]
        ra = _find(nodes, np.int64(edges[e]["a"]))
        rb = _find(nodes, np.int64(edges[e]["b"]))
        if ra == rb:
            continue
        pa = np.int64(nodes[ra]["next"])
        pb = np.int64(nodes[rb]["next"])
        ok = True
        if rules:
            if cap > 0 and psize[pa] + psize[pb] > cap:
                ok = False
            else:
                for s in range(nslots):
                    if pcnt[pa, s] + pcnt[pb, s] > meta[P_SLOT_LIMIT + s]:
                        ok = False
                        break
        if ok and (pflags[pa] & ROW_DNL) != 0 and (pflags[pb] & ROW_DNL) != 0:
            side[0] = ra
            if _dnl_between(nodes, dnl, meta[C_DNL], side, 0, 1, rb):
                ok = False
        if not ok:
            continue
        if psize[pa] < psize[pb]:
            ra, rb = rb, ra
            pa, pb = pb, pa
        nodes[rb]["parent"] = ra
        psize[pa] += psize[pb]
        pflags[pa] |= pflags[pb]
        for s in range(width):
            pcnt[pa, s] += pcnt[pb, s]
    # pieces: roots among the members, with their size and lowest node
    rt = np.empty(n_mem, np.int64)
    minnode = np.full(n_mem, np.iinfo(np.int64).max, np.int64)
    for p in range(n_mem):
        x = members[p]
        r = _find(nodes, x)
        rt[p] = r
        rp = np.int64(nodes[r]["next"])
        if x < minnode[rp]:
            minnode[rp] = x
    n_pieces = 0
    for p in range(n_mem):
        if rt[p] == members[p]:
            n_pieces += 1
    order_key = np.empty(n_pieces, np.int64)
    piece_pos = np.empty(n_pieces, np.int64)
    k = 0
    for p in range(n_mem):
        if rt[p] == members[p]:
            # larger first, then lower node: (big - size) << 32 | node
            order_key[k] = ((np.int64(1) << 31) - psize[p]) * (np.int64(1) << 32) + minnode[p]
            piece_pos[k] = p
            k += 1
    sort_by(order_key, piece_pos)  # keys are distinct: np.argsort's order
    row_at = np.empty(n_mem, np.int64)
    for k in range(n_pieces):
        p = piece_pos[k]
        if k == 0 and keep_row >= 0:
            row = keep_row
        else:
            row = _new_row(rows, cnt, free_rows, meta)
        out_rows[k] = row
        row_at[p] = row
        r = members[p]
        rows[row]["root"] = r
        rows[row]["size"] = psize[p]
        rows[row]["flags"] = pflags[p]
        for s in range(cnt.shape[1]):
            cnt[row, s] = pcnt[p, s] if s < nslots else 0
    # rebuild the circular member lists and put the rows at the roots
    for p in range(n_mem):
        x = members[p]
        if rt[p] == x:
            nodes[x]["next"] = x
    for p in range(n_mem):
        x = members[p]
        r = rt[p]
        if r != x:
            nodes[x]["next"] = nodes[r]["next"]
            nodes[r]["next"] = x
    for p in range(n_mem):
        x = members[p]
        if rt[p] == x:
            nodes[x]["parent"] = -2 - row_at[p]
        nodes[x]["state"] = nodes[x]["state"] & (0xFF ^ MARK_BIT)
    return n_pieces


@kernel(nrt=False)
def graph_expired(nodes: np.ndarray, n_nodes: int, trules: np.ndarray, t_ms: int, out: np.ndarray) -> int:
    """Live nodes whose type has a time-to-live and that were last seen more than that before
    ``t_ms`` (int64 ms) into ``out`` (int64[n_nodes]); returns the count. O(n)."""
    now = _minutes(t_ms)
    k = 0
    for n in range(n_nodes):
        if (nodes[n]["state"] & STATE_MASK) != LIVE:
            continue
        ttl = trules[nodes[n]["type"], T_TTL]
        if ttl > 0 and nodes[n]["seen"] < now - ttl:
            out[k] = n
            k += 1
    return k


# ----------------------------------------------------------------------------- compaction


@kernel(nrt=False)
def graph_compact_edges(edges: np.ndarray, ev_head: np.ndarray, meta: np.ndarray, n_nodes: int) -> int:
    """Free the deleted evidence records: move the live edges (``src`` >= 0) of
    ``edges[:meta[C_EDGES]]`` to the front, in their order, and rebuild ``ev_head[:n_nodes]`` and
    the live edges' ``next_a``/``next_b``. Returns the number of records freed.

    ``edges`` :data:`EDGE_DTYPE` [e], ``ev_head`` int32[>= n_nodes], ``meta`` int64; sets
    ``meta[C_EDGES]`` to the live count and clears the freed tail (zeros, as grown records are).

    Edge index order is evidence order (:func:`graph_recompute` replays in it) and is kept. Every
    node's adjacency list stays the same sequence of live edges, newest first: prepending the
    edges in increasing index order rebuilds what :func:`_add_edge` built. Nodes without a live
    edge get -1. Dead edges are only skipped: their endpoints may be recycled records and are not
    read. A self-loop (``a == b``; links never record one) is prepended once, with ``next_b`` a
    copy of ``next_a`` as :func:`_add_edge` leaves it, so no list loops.

    Assumes: every live edge's endpoints are < ``n_nodes`` (the node records handed out,
    ``meta[C_NODES]``); each node's list held all its live edges (as :func:`_add_edge` and
    :func:`graph_remove` keep it); ``meta[C_LIVE_EDGES]`` equals the live count (kept). Writes
    the edge arrays and every node's list head: callers hold the graph exclusively. In place,
    O(edges + n_nodes).
    """
    n_edges: int = meta[C_EDGES]
    for x in range(n_nodes):
        ev_head[x] = -1
    k = 0
    for e in range(n_edges):
        if edges[e]["src"] < 0:
            continue
        # k <= e: the record moves down over one already read or freed
        a = edges[e]["a"]
        b = edges[e]["b"]
        if k != e:
            edges[k]["a"] = a
            edges[k]["b"] = b
            edges[k]["t"] = edges[e]["t"]
            edges[k]["src"] = edges[e]["src"]
        edges[k]["next_a"] = ev_head[a]
        ev_head[a] = k
        if b != a:
            edges[k]["next_b"] = ev_head[b]
            ev_head[b] = k
        else:
            edges[k]["next_b"] = edges[k]["next_a"]
        k += 1
    for e in range(k, n_edges):
        edges[e]["a"] = 0
        edges[e]["b"] = 0
        edges[e]["t"] = 0
        edges[e]["src"] = 0
        edges[e]["next_a"] = 0
        edges[e]["next_b"] = 0
    meta[C_EDGES] = k
    return n_edges - k
