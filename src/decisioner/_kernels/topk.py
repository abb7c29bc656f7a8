"""Top-k selection over a score vector, and a small in-place sort for other kernels."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import helper, kernel


@helper(hot=True)
def _worse(scores: np.ndarray, a: int, b: int) -> bool:
    """True when item ``a`` ranks below item ``b`` (lower score, ties: higher index)."""
    sa = scores[a]
    sb = scores[b]
    return sa < sb or (sa == sb and a > b)


@helper(hot=True)
def _sift_down(heap: np.ndarray, n: int, scores: np.ndarray, i: int) -> None:
    # min-heap on rank: heap[0] is the worst of the kept items
    while True:
        lc = 2 * i + 1
        if lc >= n:
            return
        m = lc
        r = lc + 1
        if r < n and _worse(scores, heap[r], heap[lc]):
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


@helper
def sort_by(keys: np.ndarray, vals: np.ndarray) -> None:
    """Sort ``keys`` (1-D) ascending in place, moving ``vals[i]`` along with ``keys[i]`` when
    ``vals`` has the same length (pass an empty array for none). NaN sorts last, as NumPy's.

    Heapsort: not stable, so equal keys may come out in any order; callers use it where keys
    are distinct or only the sorted keys matter, and then the result is exactly
    ``np.sort`` / ``np.argsort``'s. A few lines compiled once per key dtype instead of
    numba's quicksort (about 1.5 s of compile per use). O(n log n), in place.
    """
    n = keys.shape[0]
    move = vals.shape[0] == n
    for start in range(n // 2 - 1, -1, -1):
        _sift_max(keys, vals, move, start, n)
    for end in range(n - 1, 0, -1):
        keys[0], keys[end] = keys[end], keys[0]
        if move:
            vals[0], vals[end] = vals[end], vals[0]
        _sift_max(keys, vals, move, 0, end)


@helper(hot=True)
def _sift_max(keys: np.ndarray, vals: np.ndarray, move: bool, i: int, n: int) -> None:
    # max-heap on keys[:n]; a NaN is greater than any number (so it ends up last)
    while True:
        c = 2 * i + 1
        if c >= n:
            return
        if c + 1 < n and _less(keys[c], keys[c + 1]):
            c += 1
        if not _less(keys[i], keys[c]):
            return
        keys[i], keys[c] = keys[c], keys[i]
        if move:
            vals[i], vals[c] = vals[c], vals[i]
        i = c


@helper(hot=True)
def _less(a: Any, b: Any) -> bool:
    """``a < b`` with NaN greater than everything (NumPy's sort order)."""
    less: bool = a < b or (b != b and a == a)
    return less
