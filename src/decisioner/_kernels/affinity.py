"""Decayed sparse affinity per profile, and the affinity scorer over catalog items.

Profile state (owned by :class:`decisioner.profiles.ProfileStore`):

* ``fid`` int32[P, K]: facet-value id per slot (-1 = empty);
* ``score`` float32[P, K]: affinity as of ``t[row]``;
* ``t`` int64[P]: the event time every slot of the row was last decayed to (0 = never).

Decay is exponential with a half-life per facet value: ``s * 2**(-(t - t_last) / h)``. Because
all slots of a row share one ``t``, a row costs 8 bytes a slot. Out-of-order events (older than
``t[row]``) add their contribution decayed to ``t[row]``, so the result does not depend on
arrival order. A slot whose score drops to ``<= MIN_SCORE`` is freed: the model keeps positive
interest only (a return lowers an interest, never below nothing).
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import helper, kernel

MIN_SCORE = 1e-6


@helper(hot=True)
def _decay_row(fid: np.ndarray, score: np.ndarray, t: np.ndarray, r: int, now: int, hl: np.ndarray) -> None:
    dt = now - t[r]
    if dt <= 0:
        return
    for k in range(fid.shape[1]):
        f = fid[r, k]
        if f >= 0:
            # float(): a float64 product compiled and under NUMBA_DISABLE_JIT alike (NumPy 2
            # would otherwise compute float32 * Python float in float32)
            s = float(score[r, k]) * math.pow(2.0, -dt / hl[f])
            if s <= MIN_SCORE:
                fid[r, k] = -1
                score[r, k] = 0.0
            else:
                score[r, k] = s
    t[r] = now


@helper(hot=True)
def _add(fid: np.ndarray, score: np.ndarray, r: int, f: int, w: float) -> None:
    K = fid.shape[1]
    empty = -1
    low = -1
    for k in range(K):
        g = fid[r, k]
        if g == f:
            s = float(score[r, k]) + w
            if s <= MIN_SCORE:
                fid[r, k] = -1
                score[r, k] = 0.0
            else:
                score[r, k] = s
            return
        if g < 0:
            if empty < 0:
                empty = k
        elif low < 0 or score[r, k] < score[r, low]:
            low = k
    if w <= MIN_SCORE:
        return  # nothing to lower, and no new interest
    if empty >= 0:
        fid[r, empty] = f
        score[r, empty] = w
    elif low >= 0 and score[r, low] < w:  # evict the least valuable slot (K = 0: none)
        fid[r, low] = f
        score[r, low] = w


@kernel
def affinity_update(
    fid: np.ndarray, score: np.ndarray, t: np.ndarray, r: int,
    fvs: np.ndarray, weights: np.ndarray, now: int, hl: np.ndarray,
) -> None:
    """Add ``weights[j]`` (float64[m]) to facet values ``fvs[j]`` (int32[m]) of row ``r`` at event
    time ``now`` (ms). ``hl`` float64[n_fv] is each facet value's half-life in ms.

    Assumes: 0 <= r < P; 0 <= fvs < n_fv; hl > 0. O(m K).
    """
    if now >= t[r]:
        _decay_row(fid, score, t, r, now, hl)
        for j in range(fvs.shape[0]):
            _add(fid, score, r, fvs[j], weights[j])
    else:
        back = t[r] - now
        for j in range(fvs.shape[0]):
            f = fvs[j]
            _add(fid, score, r, f, weights[j] * math.pow(2.0, -back / hl[f]))


@kernel
def affinity_read(
    fid: np.ndarray, score: np.ndarray, t: np.ndarray, r: int, now: int, hl: np.ndarray,
    out_fid: np.ndarray, out_score: np.ndarray,
) -> int:
    """Row ``r`` decayed to ``now`` without writing it: fills ``out_fid`` (int32[K]) and
    ``out_score`` (float64[K]) with the live slots, highest score first. Returns their count.

    Assumes: 0 <= r < P. O(K^2) (K is small).
    """
    n = 0
    dt = now - t[r]
    if dt < 0:
        dt = 0
    for k in range(fid.shape[1]):
        f = fid[r, k]
        if f >= 0:
            s = float(score[r, k]) * math.pow(2.0, -dt / hl[f])
            if s > MIN_SCORE:
                # insertion sort, descending by score, ties by facet-value id
                j = n
                while j > 0 and (out_score[j - 1] < s or (out_score[j - 1] == s and out_fid[j - 1] > f)):
                    out_score[j] = out_score[j - 1]
                    out_fid[j] = out_fid[j - 1]
                    j -= 1
                out_score[j] = s
                out_fid[j] = f
                n += 1
    return n


@kernel
def affinity_merge(
    fid: np.ndarray, score: np.ndarray, t: np.ndarray, dst: int, src: int, hl: np.ndarray,
) -> None:
    """Fold row ``src`` into row ``dst`` (both decayed to the later of their times, scores
    added, the least valuable slots dropped if over K) and clear ``src``.

    Assumes: dst != src, both valid rows. O(K^2).
    """
    now = t[src] if t[src] > t[dst] else t[dst]
    _decay_row(fid, score, t, dst, now, hl)
    _decay_row(fid, score, t, src, now, hl)
    t[dst] = now
    K = fid.shape[1]
    # two passes so eviction sees summed scores: first add to the facet values both rows hold,
    # then offer the rest (each replaces dst's least valuable slot only if worth more). One pass
    # could evict a dst slot that a later src slot would have raised into the top K.
    for k in range(K):
        f = fid[src, k]
        if f >= 0:
            for k2 in range(K):
                if fid[dst, k2] == f:
                    _add(fid, score, dst, f, np.float64(score[src, k]))
                    fid[src, k] = -1
                    score[src, k] = 0.0
                    break
    for k in range(K):
        f = fid[src, k]
        if f >= 0:
            _add(fid, score, dst, f, np.float64(score[src, k]))
        fid[src, k] = -1
        score[src, k] = 0.0
    t[src] = 0


@helper(hot=True)
def _base_scores(
    out: np.ndarray, prior: np.ndarray, prior_weight: float, extra: np.ndarray, eligible: np.ndarray
) -> None:
    """Every item's prior term (``-inf`` where ineligible): the start of both scoring paths."""
    neg_inf = -np.inf
    for i in range(out.shape[0]):
        if eligible[i] == 0:
            out[i] = neg_inf
        else:
            out[i] = prior_weight * prior[i] + extra[i]


@helper(hot=True)
def _add_interest(
    out: np.ndarray, f: int, w: float, fv_indptr: np.ndarray, fv_items: np.ndarray, fv_data: np.ndarray,
) -> None:
    """Add ``w`` times facet value ``f``'s weight to every item on its posting list."""
    for p in range(fv_indptr[f], fv_indptr[f + 1]):
        out[fv_items[p]] += w * fv_data[p]


@helper(hot=True)
def _exclude_and_clean(out: np.ndarray, excluded: np.ndarray) -> int:
    """``-inf`` for excluded items (negative entries ignored) and NaN scores; returns how many
    scores are not ``-inf``."""
    neg_inf = -np.inf
    for j in range(excluded.shape[0]):
        e = excluded[j]
        if e >= 0:
            out[e] = neg_inf
    kept = 0
    for i in range(out.shape[0]):
        v = out[i]
        if v != v:
            out[i] = neg_inf
        elif v != neg_inf:
            kept += 1
    return kept


@kernel
def score_items(
    fv_indptr: np.ndarray, fv_items: np.ndarray, fv_data: np.ndarray,
    prof_fid: np.ndarray, prof_score: np.ndarray, n_prof: int,
    affinity_weight: float, prior: np.ndarray, prior_weight: float,
    extra: np.ndarray, eligible: np.ndarray, excluded: np.ndarray, out: np.ndarray,
) -> int:
    """Score every item: ``affinity_weight * sum_f a_f x_if + prior_weight * prior_i + extra_i``.

    The catalog is given column-wise (CSC: facet value -> items): ``fv_indptr`` int64[n_fv+1],
    ``fv_items`` int32[nnz], ``fv_data`` float32[nnz]; only the posting lists of the profile's
    live facet values ``prof_fid[:n_prof]`` (weights ``prof_score``, normalised by the caller)
    are touched, so the cost is O(n + sum of their list lengths), not O(nnz). ``prior`` and
    ``extra`` are float64[n]; ``eligible`` uint8[n] (0 = filtered out) and ``excluded`` int32[e]
    (item indices; negative entries ignored) give -inf, as do NaN scores. Returns the number of
    finite scores written to ``out`` float64[n].

    Assumes: prof_fid < n_fv; excluded < n. O(n + touched postings).
    """
    _base_scores(out, prior, prior_weight, extra, eligible)
    for k in range(n_prof):
        w = affinity_weight * prof_score[k]
        if w != 0.0:
            _add_interest(out, prof_fid[k], w, fv_indptr, fv_items, fv_data)
    kept: int = _exclude_and_clean(out, excluded)
    return kept
