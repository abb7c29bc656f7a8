"""The ranking features of one person against ``m`` candidate items, in one pass.

Layout of the output row of a candidate (the column indices below; names and meaning in
:mod:`decisioner.ranking.features`, which owns the schema and its version). Missing values are
NaN (LightGBM routes them by each split's learned default direction).

Bundles (canonical dtypes; ``P`` profile rows, ``K`` affinity slots, ``R`` recent-item slots,
``Q`` purchase slots, ``N`` items, ``V`` facet values):

* ``prof``: ``fid`` int32[P, K], ``score`` float32[P, K], ``t`` int64[P], ``recent_item``
  int32[P, R], ``recent_t`` int64[P, R], ``purchased`` int32[P, Q], ``last_seen`` int64[P],
  ``events`` int64[P] (:class:`decisioner.profiles.ProfileStore`'s arrays);
* ``cat``: ``indptr`` int64[N + 1], ``indices`` int32[nnz], ``data`` float32[nnz] (the item x
  facet-value CSR), ``fv_facet`` int32[V], ``fv_band`` int32[V] (price band index of a
  ``price_band`` value, else -1), ``price`` float64[N] (NaN: none);
* ``stats``: ``pop`` float64[N] (popularity accumulator), ``counts`` float64[N, 2] (decayed
  interactions, engagements), ``hl`` float64[V] (facet-value half-lives);
* ``work``: ``fv_aff`` float64[V] and ``fv_last`` int64[V], all zero between calls (restored
  before returning).

``params`` float64[N_PARAMS]: see the ``P_*`` indices.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import kernel

MIN_SCORE = 1e-6  # as affinity.py: a slot at or below it is empty
DAY = 86_400_000.0
MAX_FACETS = 6

# params
P_AFFINITY_W, P_PRIOR_W, P_POP_INV_MAX, P_COUNT_SCALE, P_RATE_PRIOR, P_RATE_STRENGTH, P_N_FACETS = range(7)
N_PARAMS = 7

# output columns
C_SCORE = 0
C_AFFINITY = 1
C_AFF0 = 2  # MAX_FACETS columns
C_POP = C_AFF0 + MAX_FACETS
C_LOG_INTERACTIONS = C_POP + 1
C_RATE = C_LOG_INTERACTIONS + 1
C_ITEM_RECENCY = C_RATE + 1
C_PURCHASED = C_ITEM_RECENCY + 1
C_FREC0 = C_PURCHASED + 1  # MAX_FACETS columns
C_PRICE = C_FREC0 + MAX_FACETS
C_BAND = C_PRICE + 1
C_BAND_DELTA = C_BAND + 1
C_EVENTS = C_BAND_DELTA + 1
C_IDLE = C_EVENTS + 1
C_MASS = C_IDLE + 1
C_CONTEXT = C_MASS + 1  # N_CONTEXT columns
N_CONTEXT = 4  # channel, device, hour of day, day of week
N_FEATURES = C_CONTEXT + N_CONTEXT


@kernel(nrt=False)
def featurize(
    prof: tuple[np.ndarray, ...], row: int, now: int, cat: tuple[np.ndarray, ...], stats: tuple[np.ndarray, ...],
    items: np.ndarray, m: int, context: np.ndarray, params: np.ndarray, work: tuple[np.ndarray, ...],
    out: np.ndarray,
) -> None:
    """Fill ``out[:m]`` (float64[>= m, N_FEATURES]) with the features of person ``row`` at
    event time ``now`` against ``items[:m]`` (int64) in ``context`` (float64[N_CONTEXT]).

    A ``row`` outside the profile arrays (unknown, or loaded in bulk past the store) gets the
    features of nobody: no interest (affinities 0), person features NaN. An item index outside
    the catalog gets a row of NaN.

    Assumes: the bundles as in the module docstring, ``work`` all zero, 0 <= m <= items.shape[0],
    m <= out.shape[0]. O(K + R * f + m * (f + R + Q)) with f facet values per item.
    """
    fid, score, t, recent_item, recent_t, purchased, last_seen, events = prof
    indptr, indices, data, fv_facet, fv_band, price = cat
    pop, counts, hl = stats
    fv_aff, fv_last = work
    n_items = indptr.shape[0] - 1
    n_fv = fv_facet.shape[0]
    n_facets = int(params[P_N_FACETS])
    known = 0 <= row < t.shape[0] and row < recent_item.shape[0] and row < purchased.shape[0]
    known = known and row < last_seen.shape[0] and row < events.shape[0] and row < fid.shape[0]
    nan = math.nan
    # the person's interests decayed to now, normalised to sum 1 as the scorer does
    total = 0.0
    band_w = 0.0
    band_sum = 0.0
    if known:
        dt = now - t[row]
        if dt < 0:
            dt = 0
        for k in range(fid.shape[1]):
            f = fid[row, k]
            if 0 <= f < n_fv:
                s = float(score[row, k]) * math.pow(2.0, -dt / hl[f])
                if s > MIN_SCORE:
                    fv_aff[f] += s
                    total += s
                    b = fv_band[f]
                    if b >= 0:
                        band_w += s
                        band_sum += s * b
        if total > 0.0:
            for k in range(fid.shape[1]):
                f = fid[row, k]
                if 0 <= f < n_fv and fv_aff[f] != 0.0:
                    fv_aff[f] = fv_aff[f] / total
        # latest interaction time per facet value of the recently touched items
        for r in range(recent_item.shape[1]):
            it = recent_item[row, r]
            if 0 <= it < n_items:
                tr = recent_t[row, r]
                for p in range(indptr[it], indptr[it + 1]):
                    v = indices[p]
                    if tr > fv_last[v]:
                        fv_last[v] = tr
    usual_band = band_sum / band_w if band_w > 0.0 else nan
    scale = params[P_COUNT_SCALE]
    a = params[P_RATE_STRENGTH]
    for j in range(m):
        i = items[j]
        if i < 0 or i >= n_items:
            for c in range(N_FEATURES):
                out[j, c] = nan
            continue
        for f in range(MAX_FACETS):
            out[j, C_AFF0 + f] = 0.0 if f < n_facets and known else nan
            out[j, C_FREC0 + f] = nan
        band = -1
        for p in range(indptr[i], indptr[i + 1]):
            v = indices[p]
            f = fv_facet[v]
            if fv_band[v] >= 0:
                band = fv_band[v]
            if f >= MAX_FACETS or not known:
                continue
            out[j, C_AFF0 + f] += fv_aff[v] * float(data[p])
            lt = fv_last[v]
            if lt != 0:
                d = max(now - lt, 0) / DAY
                cur = out[j, C_FREC0 + f]
                if math.isnan(cur) or d < cur:
                    out[j, C_FREC0 + f] = d
        aff = 0.0
        for f in range(min(n_facets, MAX_FACETS)):
            if known:
                aff += out[j, C_AFF0 + f]
        prior = pop[i] * params[P_POP_INV_MAX]
        out[j, C_AFFINITY] = aff if known else nan
        out[j, C_SCORE] = params[P_AFFINITY_W] * aff + params[P_PRIOR_W] * prior
        out[j, C_POP] = prior
        seen = counts[i, 0] * scale
        engaged = counts[i, 1] * scale
        out[j, C_LOG_INTERACTIONS] = math.log1p(seen)
        out[j, C_RATE] = (engaged + a * params[P_RATE_PRIOR]) / (seen + a) if seen + a > 0.0 else nan
        rec = nan
        bought = nan
        if known:
            for r in range(recent_item.shape[1]):
                if recent_item[row, r] == i:
                    rec = max(now - recent_t[row, r], 0) / DAY
            bought = 0.0
            for q in range(purchased.shape[1]):
                if purchased[row, q] == i:
                    bought = 1.0
        out[j, C_ITEM_RECENCY] = rec
        out[j, C_PURCHASED] = bought
        pr = price[i]
        out[j, C_PRICE] = math.log1p(pr) if pr >= 0.0 else nan
        out[j, C_BAND] = float(band) if band >= 0 else nan
        out[j, C_BAND_DELTA] = band - usual_band if band >= 0 and known else nan
        if known:
            out[j, C_EVENTS] = math.log1p(float(events[row]))
            out[j, C_IDLE] = max(now - last_seen[row], 0) / DAY if last_seen[row] > 0 else nan
            out[j, C_MASS] = total
        else:
            out[j, C_EVENTS] = nan
            out[j, C_IDLE] = nan
            out[j, C_MASS] = nan
        for c in range(N_CONTEXT):
            out[j, C_CONTEXT + c] = context[c]
    # leave the scratch as found: all zero
    if known:
        for k in range(fid.shape[1]):
            f = fid[row, k]
            if 0 <= f < n_fv:
                fv_aff[f] = 0.0
        for r in range(recent_item.shape[1]):
            it = recent_item[row, r]
            if 0 <= it < n_items:
                for p in range(indptr[it], indptr[it + 1]):
                    fv_last[indices[p]] = 0
