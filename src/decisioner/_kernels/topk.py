"""Top-k selection over a score vector."""

from __future__ import annotations

import numpy as np

from ._jit import inline, kernel


@inline
def _worse(scores: np.ndarray, a: int, b: int) -> bool:
    """True when item ``a`` ranks below item ``b`` (lower score, ties: higher index)."""
    sa = scores[a]
    sb = scores[b]
    return sa < sb or (sa == sb and a > b)


@inline
def _sift_down(heap: np.ndarray, n: int, scores: np.ndarray, i: int) -> None:
    # min-heap on rank: heap[0] is the worst of the kept items
    while True:
        l = 2 * i + 1
        if l >= n:
            return
        m = l
        r = l + 1
        if r < n and _worse(scores, heap[r], heap[l]):
            m = r
        if _worse(scores, heap[m], heap[i]):
            heap[i], heap[m] = heap[m], heap[i]
            i = m
        else:
            return


@kernel
def top_k(scores: np.ndarray, k: int, out: np.ndarray) -> int:
    """Indices of the ``k`` highest scores (float64[n]) into ``out`` (int64[>= k]), best first;
    ties go to the lower index; ``-inf`` and NaN are never selected. Returns how many were
    written (< k when fewer items qualify).

    Assumes: k >= 0. O(n log k).
    """
    n = scores.shape[0]
    if k <= 0:
        return 0
    size = 0
    neg_inf = -np.inf
    for i in range(n):
        s = scores[i]
        if s != s or s == neg_inf:
            continue
        if size < k:
            out[size] = i
            size += 1
            # sift up
            c = size - 1
            while c > 0:
                p = (c - 1) // 2
                if _worse(scores, out[c], out[p]):
                    out[c], out[p] = out[p], out[c]
                    c = p
                else:
                    break
        elif s > scores[out[0]]:  # strictly better than the worst kept (ties keep the lower index)
            out[0] = i
            _sift_down(out, size, scores, 0)
    # heap sort in place: repeatedly move the worst to the end
    m = size
    while m > 1:
        out[0], out[m - 1] = out[m - 1], out[0]
        m -= 1
        _sift_down(out, m, scores, 0)
    return size
