"""Row-keyed stores (profiles, consent, attributes, engagement, activity, people, sends) grow by
doubling: :func:`doubled` is the capacity that holds ``n`` rows, :func:`grown` an array grown
to it with its new rows filled as for a new profile.

>>> import numpy as np
>>> doubled(4, 9)
16
>>> grown(np.array([[1, 2]]), 3, -1).tolist()
[[1, 2], [-1, -1], [-1, -1]]
"""

from __future__ import annotations

import numpy as np

__all__ = ["doubled", "grown"]


def doubled(cap: int, n_rows: int) -> int:
    """``cap`` (at least 1) doubled until it holds ``n_rows`` rows."""
    cap = max(cap, 1)
    while cap < n_rows:
        cap *= 2
    return cap


def grown(old: np.ndarray, cap: int, fill: int | float | np.ndarray) -> np.ndarray:
    """``old`` with ``cap`` rows (``cap`` >= its rows): its rows kept, the new ones ``fill`` (a
    scalar, or one row's values broadcast to each)."""
    new = np.empty((cap, *old.shape[1:]), dtype=old.dtype)
    new[: old.shape[0]] = old
    new[old.shape[0]:] = fill
    return new
