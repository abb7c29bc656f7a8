"""Random draws that several parts of a world share: Dirichlet rows and weighted top-k masks."""

from __future__ import annotations

import numpy as np

from .spec import F64, I64, Bool

__all__ = ["dirichlet", "topk_mask"]


def dirichlet(rng: np.random.Generator, alpha: float, shape: tuple[int, int]) -> F64:
    """Rows of Dirichlet(alpha) draws via gamma variates (a row of all-zero draws -> uniform)."""
    g = rng.standard_gamma(alpha, size=shape)
    s = g.sum(axis=1, keepdims=True)
    out: F64 = np.where(s > 0.0, g / np.where(s > 0.0, s, 1.0), 1.0 / shape[1])
    return out


def topk_mask(rng: np.random.Generator, logw: F64, k: I64) -> Bool:
    """Per row, ``k[row]`` columns drawn without replacement with probability ~ exp(logw)."""
    keys = logw + rng.gumbel(size=logw.shape)
    srt = -np.sort(-keys, axis=1)
    kth = srt[np.arange(keys.shape[0]), np.minimum(k, keys.shape[1]) - 1]
    out: Bool = keys >= kth[:, None]
    return out
