"""Clustering of scored pairs into people, without chaining strangers through one weak link.

Pairs at or above ``auto_link`` are taken strongest first (union-find over records); a pair
joins its two clusters only when

1. no pair across them is a do-not-link pair (a rejected suggestion),
2. they hold no two different values of a ``unique`` field (a CRM or user id: the identity
   merge rule, so auto-link never merges two values of a unique identifier type),
3. with ``one_per_source``, they hold no two records of one source, and
4. the strong pairs across them are a strict majority of the compared pairs across them: a
   record that matches one member of a cluster strongly but the others weakly (a shared zip
   code and street, a namesake) stays out.

The rules run in the kernel :func:`decisioner._kernels.matching.cluster_pairs`.
"""

from __future__ import annotations

import numpy as np

from .._kernels import matching as K

__all__ = ["cluster", "csr", "pair_metrics"]


def csr(n: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR of undirected pairs: (int64[n + 1] offsets, int64[2E] pair ids) per record."""
    e = a.shape[0]
    ends = np.concatenate([a, b]).astype(np.int64)
    ids = np.concatenate([np.arange(e, dtype=np.int64), np.arange(e, dtype=np.int64)])
    order = np.argsort(ends, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=n), out=ptr[1:])
    return ptr, np.ascontiguousarray(ids[order])


def cluster(
    n: int, a: np.ndarray, b: np.ndarray, prob: np.ndarray, *, auto_link: float, unique: np.ndarray,
    sources: np.ndarray, one_per_source: bool, do_not_link: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, int]:
    """Cluster label (int64[n], a cluster's lowest record) of every record, and the merges made.

    ``unique``: int64[n, U] codes of the unique fields (-1 missing); ``do_not_link``: pairs of
    records never to be joined.

    >>> a, b = np.array([0, 1, 0]), np.array([1, 2, 2])
    >>> cluster(3, a, b, np.array([0.99, 0.99, 0.01]), auto_link=0.9, unique=np.full((3, 0), -1),
    ...         sources=np.zeros(3, np.int64), one_per_source=False)[0].tolist()  # 2 is weak with 0
    [0, 0, 2]
    """
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    prob = np.ascontiguousarray(prob, dtype=np.float64)
    order = np.argsort(-prob, kind="stable").astype(np.int64)
    adj = csr(n, a, b)
    if do_not_link is None:
        da = db = np.empty(0, np.int64)
    else:
        da, db = (np.ascontiguousarray(x, dtype=np.int64) for x in do_not_link)
    dptr, _ = csr(n, da, db)
    # the partner of each end, in the CSR's order (ends sorted stably, as csr sorts them)
    ends = np.concatenate([da, db])
    partner = np.concatenate([db, da])
    order_d = np.argsort(ends, kind="stable")
    other = np.ascontiguousarray(partner[order_d], dtype=np.int64)
    label = np.empty(n, dtype=np.int64)
    merges = K.cluster_pairs(
        n, (a, b, prob), order, adj, (dptr, other), np.ascontiguousarray(unique, dtype=np.int64),
        np.ascontiguousarray(sources, dtype=np.int64), bool(one_per_source), float(auto_link), label,
    )
    return label, int(merges)


def _group_ids(keys: list[np.ndarray]) -> np.ndarray:
    """Dense int64 id of each row's tuple of keys (non-negative int64 arrays of one length)."""
    comb = np.zeros(keys[0].shape[0], dtype=np.int64)
    for k in keys:
        comb = comb * (int(k.max(initial=0)) + 1) + k.astype(np.int64)
        comb = np.unique(comb, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return comb


def _pairs_in_groups(keys: list[np.ndarray], sources: np.ndarray | None) -> int:
    """Pairs of records equal on every key array (across sources only when ``sources`` given)."""
    if keys[0].shape[0] == 0:
        return 0
    group = _group_ids(keys)
    counts = np.bincount(group)
    total = int((counts * (counts - 1) // 2).sum())
    if sources is None:
        return total
    same = np.bincount(_group_ids([group, sources]))
    return total - int((same * (same - 1) // 2).sum())


def pair_metrics(label: np.ndarray, truth: np.ndarray, sources: np.ndarray | None) -> dict[str, float | int]:
    """Pairwise precision, recall and F1 of clusters ``label`` against true entities ``truth``
    (-1: unknown, such records count only as their own entity); ``sources``: count only pairs
    across sources (a link-only task).

    >>> pair_metrics(np.array([0, 0, 2, 2]), np.array([0, 0, 1, 2]), None)
    {'true_pairs': 1, 'predicted_pairs': 2, 'true_positives': 1, 'precision': 0.5, 'recall': 1.0, 'f1': 0.666667}
    """
    t = truth.copy()
    unknown = t < 0
    t[unknown] = t.max(initial=0) + 1 + np.flatnonzero(unknown)
    pred = _pairs_in_groups([label], sources)
    true = _pairs_in_groups([t], sources)
    tp = _pairs_in_groups([label, t], sources)
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"true_pairs": true, "predicted_pairs": pred, "true_positives": tp, "precision": round(precision, 6),
            "recall": round(recall, 6), "f1": round(f1, 6)}
