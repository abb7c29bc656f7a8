"""Identity graph kernels: an open-addressing ``uint64`` table plus a union-find over nodes.

State (all owned by :class:`decisioner.identity.IdentityGraph`, grown by doubling there):

* ``tab_keys`` uint64[cap], ``tab_nodes`` int32[cap] (-1 = empty slot); cap a power of two,
  linear probing from ``key & (cap - 1)`` (keys are already xxh3 hashes, so uniform).
* ``node_key`` uint64[n], ``node_type`` int8[n], ``parent`` int32[n] (union-find),
  ``size`` int32[n] (component size, valid at roots), ``row`` int32[n] (profile row, valid at
  roots; -1 = none).
* ``counts`` int64[4]: [0] nodes used, [1] profile rows handed out, [2] free rows on the stack,
  [3] merges performed. ``free_rows`` int32[m] is the stack of reusable rows.
"""

from __future__ import annotations

import numpy as np

from ._jit import inline, kernel

C_NODES = 0
C_ROWS = 1
C_FREE = 2
C_MERGES = 3


@inline
def _slot(tab_keys: np.ndarray, tab_nodes: np.ndarray, key: np.uint64) -> np.int64:
    """Slot holding ``key`` or the empty slot where it would go. Assumes load < 1."""
    mask = np.int64(tab_keys.shape[0] - 1)
    i = np.int64(key & np.uint64(mask))
    while tab_nodes[i] >= 0 and tab_keys[i] != key:
        i = (i + 1) & mask
    return i


@inline
def _find(parent: np.ndarray, x: int) -> int:
    """Root of ``x`` with path halving (iterative: no recursion, bounded stack)."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@kernel
def graph_find_root(parent: np.ndarray, x: int) -> int:
    """Root of node ``x``. Assumes: 0 <= x < nodes used. Amortised ~O(1)."""
    return _find(parent, x)


@kernel
def graph_lookup_many(
    tab_keys: np.ndarray, tab_nodes: np.ndarray, parent: np.ndarray, row: np.ndarray,
    keys: np.ndarray, out_rows: np.ndarray,
) -> int:
    """Profile row of each key in ``keys`` (uint64[m]) into ``out_rows`` (int32[m]); -1 for an
    unknown key. Returns how many were found. O(m) expected."""
    found = 0
    for j in range(keys.shape[0]):
        i = _slot(tab_keys, tab_nodes, keys[j])
        n = tab_nodes[i]
        if n < 0:
            out_rows[j] = -1
        else:
            out_rows[j] = row[_find(parent, n)]
            found += 1
    return found


@inline
def _link_one(
    tab_keys: np.ndarray, tab_nodes: np.ndarray, node_key: np.ndarray, node_type: np.ndarray,
    parent: np.ndarray, size: np.ndarray, row: np.ndarray, counts: np.ndarray,
    free_rows: np.ndarray, keys: np.ndarray, types: np.ndarray, start: int, stop: int,
    absorbed: np.ndarray, n_abs: int,
) -> tuple[int, int]:
    # 1. find or insert every node of this event
    best_root = -1
    for j in range(start, stop):
        key = keys[j]
        i = _slot(tab_keys, tab_nodes, key)
        n = tab_nodes[i]
        if n < 0:
            n = counts[C_NODES]
            counts[C_NODES] = n + 1
            tab_keys[i] = key
            tab_nodes[i] = n
            node_key[n] = key
            node_type[n] = types[j]
            parent[n] = n
            size[n] = 1
            row[n] = -1
        r = _find(parent, n)
        # 2. survivor: the root with a row and the largest component (ties: lowest row)
        if row[r] >= 0:
            if best_root < 0:
                best_root = r
            elif r != best_root:
                if size[r] > size[best_root] or (
                    size[r] == size[best_root] and row[r] < row[best_root]
                ):
                    best_root = r
    survivor_row = -1
    if best_root >= 0:
        survivor_row = row[best_root]
    # 3. union every root into one, union by size; collect the rows that are absorbed
    root = -1
    for j in range(start, stop):
        i = _slot(tab_keys, tab_nodes, keys[j])
        r = _find(parent, tab_nodes[i])
        if r == root:
            continue
        # a root seen for the first time gives up its row unless it is the survivor's
        if row[r] >= 0 and row[r] != survivor_row:
            absorbed[n_abs] = row[r]
            n_abs += 1
            row[r] = -1
        if root < 0:
            root = r
            continue
        if size[r] > size[root]:
            r, root = root, r
        parent[r] = root
        size[root] += size[r]
        row[r] = -1
        counts[C_MERGES] += 1
    # 4. the final root carries the survivor row, or a fresh one
    if root < 0:  # no keys (an empty group of graph_link_many): nothing to resolve
        return -1, n_abs
    if survivor_row < 0:
        nf = counts[C_FREE]
        if nf > 0:
            survivor_row = free_rows[nf - 1]
            counts[C_FREE] = nf - 1
        else:
            survivor_row = counts[C_ROWS]
            counts[C_ROWS] = survivor_row + 1
    row[root] = survivor_row
    return survivor_row, n_abs


@kernel
def graph_link(
    tab_keys: np.ndarray, tab_nodes: np.ndarray, node_key: np.ndarray, node_type: np.ndarray,
    parent: np.ndarray, size: np.ndarray, row: np.ndarray, counts: np.ndarray,
    free_rows: np.ndarray, keys: np.ndarray, types: np.ndarray, absorbed: np.ndarray,
) -> tuple[int, int]:
    """Insert the keys of one event (uint64[m], types int8[m]) and merge their components.

    Returns ``(row, n_absorbed)``: the profile row of the merged component and how many other
    rows it absorbed (written to ``absorbed`` int32[>= m]). A component that had no row gets a
    fresh one (from the free stack first).

    Assumes: m >= 1; node arrays have room for m more nodes; the table stays below full load;
    a row is available (``row`` capacity checked by the caller). O(m) amortised.
    """
    result: tuple[int, int] = _link_one(
        tab_keys, tab_nodes, node_key, node_type, parent, size, row, counts, free_rows,
        keys, types, 0, keys.shape[0], absorbed, 0,
    )
    return result


@kernel
def graph_link_many(
    tab_keys: np.ndarray, tab_nodes: np.ndarray, node_key: np.ndarray, node_type: np.ndarray,
    parent: np.ndarray, size: np.ndarray, row: np.ndarray, counts: np.ndarray,
    free_rows: np.ndarray, keys: np.ndarray, types: np.ndarray, offsets: np.ndarray,
    out_rows: np.ndarray, absorbed: np.ndarray, absorbed_into: np.ndarray,
) -> int:
    """Bulk :func:`graph_link`: group g holds ``keys[offsets[g]:offsets[g+1]]``.

    Writes each group's row to ``out_rows`` (int32[g]); every absorbed row to ``absorbed`` with
    the group index that absorbed it in ``absorbed_into`` (both int32[>= len(keys)]).
    Returns the number of absorbed rows. An empty group changes nothing and gets row -1. Note a
    later group can absorb the row an earlier group returned; callers resolve rows after the
    batch. O(len(keys)) amortised.
    """
    n_abs = 0
    for g in range(offsets.shape[0] - 1):
        before = n_abs
        r, n_abs = _link_one(
            tab_keys, tab_nodes, node_key, node_type, parent, size, row, counts, free_rows,
            keys, types, offsets[g], offsets[g + 1], absorbed, n_abs,
        )
        out_rows[g] = r
        for k in range(before, n_abs):
            absorbed_into[k] = g
    return n_abs


@kernel
def graph_rehash(
    old_keys: np.ndarray, old_nodes: np.ndarray, new_keys: np.ndarray, new_nodes: np.ndarray,
) -> None:
    """Move every entry of the old table into an empty larger one. Assumes: new_nodes all -1,
    new capacity a power of two above the entry count. O(old capacity)."""
    for i in range(old_keys.shape[0]):
        n = old_nodes[i]
        if n >= 0:
            j = _slot(new_keys, new_nodes, old_keys[i])
            new_keys[j] = old_keys[i]
            new_nodes[j] = n


@kernel
def graph_component_rows(parent: np.ndarray, row: np.ndarray, n_nodes: int, out: np.ndarray) -> None:
    """Profile row of every node (int32[n_nodes]); compresses paths as it goes. O(n)."""
    for n in range(n_nodes):
        out[n] = row[_find(parent, n)]
