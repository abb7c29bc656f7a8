"""Record matching kernels: candidate pairs from blocking keys, and clustering of scored pairs
that never chains strangers through one weak link.

Records are rows ``0..n-1``. A blocking rule gives every record an int64 code (-1: the record
has no key under the rule, it blocks with nobody). Pairs are ``(a, b)`` with ``a < b``.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel


@kernel
def block_pairs(
    codes: np.ndarray, order: np.ndarray, rule: int, source: np.ndarray, mode: int, max_block: int,
    out_a: np.ndarray, out_b: np.ndarray, counts: np.ndarray,
) -> int:
    """Candidate pairs of blocking rule ``rule``: records with equal codes under it, and under
    no earlier rule (those pairs came from the earlier rule already).

    ``codes``: int64[R, n], -1 for no key; ``order``: int64[n], the records sorted by
    ``codes[rule]`` (-1 first); ``source``: int64[n] source codes; ``mode``: 0 every pair, 1 only
    pairs from different sources (link only); blocks larger than ``max_block`` are skipped
    (counted in ``counts[1]``). With ``out_a`` shorter than the pair count nothing is written and
    the count is returned (call once to size, once to fill).
    ``counts``: int64[2], ``counts[0]`` pairs before de-duplication across rules, ``counts[1]``
    records in skipped blocks.

    Assumes: ``order`` sorts ``codes[rule]``; 0 <= rule < R. O(sum of block sizes squared).
    """
    n = order.shape[0]
    fill = out_a.shape[0] > 0
    k = 0
    i = 0
    while i < n:
        c = codes[rule, order[i]]
        j = i + 1
        while j < n and codes[rule, order[j]] == c:
            j += 1
        size = j - i
        if c >= 0 and size > 1:
            if size > max_block:
                counts[1] += size
            else:
                for x in range(i, j):
                    ra = order[x]
                    for y in range(x + 1, j):
                        rb = order[y]
                        if mode == 1 and source[ra] == source[rb]:
                            continue
                        counts[0] += 1
                        dup = False
                        for r in range(rule):
                            ca = codes[r, ra]
                            if ca >= 0 and ca == codes[r, rb]:
                                dup = True
                                break
                        if dup:
                            continue
                        if fill:
                            if ra < rb:
                                out_a[k] = ra
                                out_b[k] = rb
                            else:
                                out_a[k] = rb
                                out_b[k] = ra
                        k += 1
        i = j
    return k


@kernel
def cluster_pairs(
    n: int, edges: tuple[np.ndarray, np.ndarray, np.ndarray], order: np.ndarray,
    adj: tuple[np.ndarray, np.ndarray], dnl: tuple[np.ndarray, np.ndarray], unique: np.ndarray,
    sources: np.ndarray, one_per_source: bool, auto_link: float, label: np.ndarray,
) -> int:
    """Cluster records from scored pairs, strongest first, with rules that keep strangers apart.

    ``edges``: (int64[E] a, int64[E] b, float64[E] probability) of every compared pair;
    ``order``: int64[E] edge indices by probability, highest first; ``adj``: the compared pairs
    per record as CSR (int64[n + 1] offsets, int64[2E] edge ids); ``dnl``: do-not-link pairs per
    record as CSR (int64[n + 1] offsets, int64[D] other records); ``unique``: int64[n, U] codes of
    fields that identify a person (-1 none); ``sources``: int64[n] source codes (< 64).

    An edge at or above ``auto_link`` merges the clusters of its records unless (1) some pair
    across them is a do-not-link pair, (2) they hold different values of a unique field, (3)
    ``one_per_source`` and both hold a record of one source, or (4) the strong pairs (at or above
    ``auto_link``) are not a strict majority of the compared pairs across them: one strong link
    beside weak ones never chains two people together. ``label``: int64[n] out, the cluster of
    each record (its lowest record index). Returns the number of merges.

    Assumes: records in [0, n); ``unique`` C-contiguous. O(E log E + merges * (cluster size *
    degree)).
    """
    pa, pb, prob = edges
    aptr, aeid = adj
    dptr, dnbr = dnl
    n_unique = unique.shape[1]
    parent = np.arange(n)
    nxt = np.full(n, -1, np.int64)  # members as circular lists: nxt of the last is the head
    size = np.ones(n, np.int64)
    vals = unique.copy()
    mask = np.zeros(n, np.uint64)
    for r in range(n):
        nxt[r] = r
        mask[r] = np.uint64(1) << np.uint64(sources[r] & 63)
    merges = 0
    for t in range(order.shape[0]):
        e = order[t]
        if prob[e] < auto_link:
            break
        ra = pa[e]
        while parent[ra] != ra:
            ra = parent[ra]
        rb = pb[e]
        while parent[rb] != rb:
            rb = parent[rb]
        if ra == rb:
            continue
        if one_per_source and (mask[ra] & mask[rb]) != np.uint64(0):
            continue
        ok = True
        for u in range(n_unique):
            if vals[ra, u] >= 0 and vals[rb, u] >= 0 and vals[ra, u] != vals[rb, u]:
                ok = False
                break
        if not ok:
            continue
        small, big = (ra, rb) if size[ra] <= size[rb] else (rb, ra)
        compared = 0
        strong = 0
        m = small
        while True:
            for q in range(dptr[m], dptr[m + 1]):
                o = dnbr[q]
                while parent[o] != o:
                    o = parent[o]
                if o == big:
                    ok = False
            for q in range(aptr[m], aptr[m + 1]):
                f = aeid[q]
                o = pb[f] if pa[f] == m else pa[f]
                while parent[o] != o:
                    o = parent[o]
                if o == big:
                    compared += 1
                    if prob[f] >= auto_link:
                        strong += 1
            m = nxt[m]
            if m == small:
                break
        if not ok or 2 * strong <= compared:
            continue
        parent[small] = big
        size[big] += size[small]
        mask[big] |= mask[small]
        for u in range(n_unique):
            if vals[big, u] < 0:
                vals[big, u] = vals[small, u]
        tmp = nxt[big]
        nxt[big] = nxt[small]
        nxt[small] = tmp
        merges += 1
    low = np.full(n, -1, np.int64)
    for r in range(n):
        root = r
        while parent[root] != root:
            root = parent[root]
        if low[root] < 0:
            low[root] = r
        label[r] = low[root]
    return merges
