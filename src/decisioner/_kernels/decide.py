"""The fused recommendation decision: one kernel call (one GIL release) per decision.

``decide_slate`` does what ``Engine._apply`` + ``_decide_recommendation`` do today with about
six kernel calls, ~28 arrays and two catalog-sized temporaries: the event's interest update,
the affinity read, scoring every item, the candidate pool, the slate (greedy / epsilon-greedy /
softmax / uniform, the same RNG draws) and the click-through update of the shown items. The
read path, the kernel ``recommend_rows`` (greedy top-k, no writes; ``recommend_one`` and
``recommend_batch`` call it from Python, the batch from several threads), runs the same
scoring code, so a preview and a greedy decision score items identically. The caller keeps the
popularity prior as raw counts ``acc`` and the scalar ``1 / max count``: nothing catalog-sized
is renormalised per event.

Bundles (tuples of arrays; numba types each as one argument)
------------------------------------------------------------
* ``prof = (fid int32[P, K], score float32[P, K], t int64[P], purchased int32[P, R])``: the
  profile store's arrays (``purchased``: ring of recent purchases, -1 = empty).
* ``cat = (fv_indptr int64[n_fv + 1], fv_items int32[nnz], fv_data float32[nnz])``: the
  catalog column-wise (facet value -> items).
* ``acc`` float64[n]: decayed popularity counts; the prior is ``acc[i] * params[P_INV_MAX]``.
* ``plc = (mask uint8[n], extra float64[n], boost float64[n], trials float64[n],
  clicks float64[n])``: the placement's eligibility and click-through state.
* ``params`` float64[N_PARAMS], indexed by the ``P_*`` constants below (integer entries are
  exact floats).
* ``work = (scores float64[n], pool int64[n], pool_scores float64[n], live_fid int32[K],
  live_score float64[K], weights float64[n], cand int64[n])``: scratch, allocated once per
  engine (:func:`new_work`); the read path uses only ``scores``, ``live_fid``, ``live_score``
  and ``cand``
  (:func:`new_read_work`). After a call ``work[3][:counts[C_LIVE]]`` / ``work[4]`` hold the
  live affinities best first (the engine's reasons take the top 3).
* ``out = (out_idx int64[>= slots], out_score float64[>= slots], out_prop float64[>= slots])``
  (:func:`new_out`).
* ``counts`` int64[N_COUNTS]: ``C_FILLED`` slots, ``C_CANDIDATES`` scores not ``-inf``,
  ``C_LIVE`` live affinities, ``C_POOL`` candidate pool size.

Scalars are ``int`` (``row``, ``now`` ms, ``personalized`` 0/1: pass ``int(flag)``, a ``bool``
would compile a second signature).

Exactness: each phase performs the operations of the code it replaces in the same order
(``affinity_update``, ``affinity_read``, ``AffinityScorer.score_one`` + ``score_items``,
``SlatePolicy.select`` + ``top_k`` + ``rank_slate``, ``Engine._refresh_extra``), so a decision
equals today's bit for bit when today's prior is formed as ``acc * (1 / max)`` (the tests
check this); ``Popularity.normalised()`` divides, ``acc / max``, which can differ in the last
bit. The affinity total is summed in NumPy's pairwise order (``_np_sum``) because
``score_one`` normalises by ``scores.sum()``. ``recommend_one`` therefore differs from
``recommend_items`` (slot-order sum and interest order) in the last bits of some scores.

Structure and compile time: two kernels, ``decide_slate`` and ``recommend_rows``. The phases
both share, ``score_row`` (read and score) and ``select_pool`` (top-k or the uniform pool), are
helpers: typed and lowered once, linked into both. The phase helpers under them are
``@helper(hot=True)``: typed and compiled once, then inlined by LLVM into their callers
(numba's own IR inlining deep-copies the callee at a cost that grows with the square of its
size, and nesting such helpers made the cold compile about 1.5 times longer). A batch of reads
runs ``recommend_rows`` over a slice of the batch in each of several Python threads (it
releases the GIL), not a ``prange`` kernel: numba builds a ``prange`` body as a gufunc and
compiles the linked read path once more, which made the parallel twin the costliest kernel of
a cold ``warm_up()`` (about 2.3 s of CPU); ``score_row`` and ``select_pool`` as kernels of
their own compiled to machine code once alone and again in each caller. Cold compile of the
decide and read path now: see ``warmup.py``.

Cache correctness: numba invalidates a cached kernel when its own file changes, not when a
callee in another file does. The helpers are therefore copies (from ``affinity.py``,
``topk.py``, ``bandit.py``), so edits there cannot leave a stale compiled decision; the tests
pin the copies to the originals (bit-equal decisions). The one import is ``rng_uniform`` from
``rng.py``, the designated shared helper module (``_jit.py``), kept single so the stream has
one definition: after changing ``rng.py``, clear ``NUMBA_CACHE_DIR`` (as for ``bandit.py``).
Mode codes are copied too (a test checks them against ``bandit.MODE_*``).
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ._jit import helper, kernel
from .rng import rng_uniform

MIN_SCORE = 1e-6

#: a bundle of arrays (numba types it as one tuple argument)
Arrays = tuple[np.ndarray, ...]

#: slate modes (equal to ``bandit.MODE_*``)
MODE_GREEDY = 0
MODE_EPSILON = 1
MODE_SOFTMAX = 2
MODE_UNIFORM = 3

#: ``params`` indices
P_AFFINITY_W = 0  # weight of the normalised affinity term
P_PRIOR_W = 1  # weight of the popularity prior
P_INV_MAX = 2  # 1 / largest popularity count (0 before any count)
P_FEEDBACK_W = 3  # weight of the click-through posterior in ``extra``
P_PRIOR_CLICKS = 4  # click-through prior: pseudo clicks ...
P_PRIOR_TRIALS = 5  # ... over pseudo trials
P_MODE = 6  # MODE_* code
P_PARAM = 7  # epsilon (epsilon-greedy) or temperature (softmax)
P_POOL = 8  # exploration pool (``SlatePolicy.pool``: 0 greedy, -1 uniform)
P_SLOTS = 9  # slots to fill
P_EXCLUDE_PURCHASED = 10  # 1: the row's recent purchases score -inf
P_RETRIEVE = 11  # > 0: a learned ranker re-ranks; decide_slate stops at the top P_RETRIEVE pool
N_PARAMS = 12

#: ``counts`` indices
C_FILLED = 0
C_CANDIDATES = 1
C_LIVE = 2
C_POOL = 3
N_COUNTS = 4


# --------------------------------------------------------------------------- 1: update (copies)


@helper(hot=True)
def _decay_row(fid: np.ndarray, score: np.ndarray, t: np.ndarray, r: int, now: int, hl: np.ndarray) -> None:
    """Copy of ``affinity._decay_row``: row ``r`` decayed to ``now``, dead slots freed."""
    dt = now - t[r]
    if dt <= 0:
        return
    for k in range(fid.shape[1]):
        f = fid[r, k]
        if f >= 0:
            # float(): float64 compiled and under NUMBA_DISABLE_JIT alike
            s = float(score[r, k]) * math.pow(2.0, -dt / hl[f])
            if s <= MIN_SCORE:
                fid[r, k] = -1
                score[r, k] = 0.0
            else:
                score[r, k] = s
    t[r] = now


@helper(hot=True)
def _add(fid: np.ndarray, score: np.ndarray, r: int, f: int, w: float) -> None:
    """Copy of ``affinity._add``: ``w`` added to facet value ``f`` of row ``r`` (a held slot, the
    first empty one, or the least valuable one if worth less than ``w``)."""
    empty = -1
    low = -1
    for k in range(fid.shape[1]):
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
        return
    if empty >= 0:
        fid[r, empty] = f
        score[r, empty] = w
    elif low >= 0 and score[r, low] < w:
        fid[r, low] = f
        score[r, low] = w


# --------------------------------------------------------------------------- 2-3: read, score, drop purchases


@helper(hot=True)
def _read(
    fid: np.ndarray, score: np.ndarray, t: np.ndarray, r: int, now: int, hl: np.ndarray,
    out_fid: np.ndarray, out_score: np.ndarray,
) -> int:
    """``affinity_read``'s body: row ``r``'s live slots decayed to ``now`` (not written back),
    best first, ties by facet value. Returns their count."""
    n = 0
    dt = now - t[r]
    if dt < 0:
        dt = 0
    for k in range(fid.shape[1]):
        f = fid[r, k]
        if f >= 0:
            s = float(score[r, k]) * math.pow(2.0, -dt / hl[f])
            if s > MIN_SCORE:
                j = n
                while j > 0 and (out_score[j - 1] < s or (out_score[j - 1] == s and out_fid[j - 1] > f)):
                    out_score[j] = out_score[j - 1]
                    out_fid[j] = out_fid[j - 1]
                    j -= 1
                out_score[j] = s
                out_fid[j] = f
                n += 1
    return n


@helper(hot=True)
def _np_sum(x: np.ndarray, n: int) -> float:
    """``np.sum(x[:n])`` bit for bit for n <= 256 (profile slots are capped at 256).

    NumPy sums a block of < 8 values sequentially; a block of 8..128 in eight lanes
    (``r_q = x[q] + x[q + 8] + ...``) combined as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) +
    (r6 + r7))``, the tail after; a longer block splits into ``n // 2`` rounded down to a
    multiple of 8 and the rest, recursively. For n <= 256 every left part is a leaf, so the sum
    is the chain ``L0 + (L1 + (... + R))``, evaluated here innermost first without recursion.
    (While loops: numba compiles them with less code than range iterators, a third less cold
    compile time for this helper.)
    """
    depth = 0
    m = n
    while m > 128:
        h = m // 2
        m -= h - h % 8
        depth += 1
    res = 0.0
    d = depth
    while d >= 0:
        lo = 0  # walk down to part d: the left part at that level, or the final rest
        m = n
        e = 0
        while e < d:
            h = m // 2
            h -= h % 8
            lo += h
            m -= h
            e += 1
        if d < depth:
            m = m // 2 - (m // 2) % 8
        end = lo + m - m % 8 if m >= 8 else lo
        part = 0.0  # sums start from 0.0 as NumPy's do (exact for the positive affinities)
        pend1 = pend2 = pend4 = 0.0  # partial pair, pair and quad of the lane combination
        if end > lo:
            q = 0
            while q < 8:
                lane = x[lo + q]
                i = lo + q + 8
                while i < end:
                    lane += x[i]
                    i += 8
                if q % 2 == 0:
                    pend1 = lane
                elif q % 4 == 1:
                    pend2 = pend1 + lane
                elif q == 3:
                    pend4 = pend2 + (pend1 + lane)
                else:
                    part = pend4 + (pend2 + (pend1 + lane))
                q += 1
        i = end
        while i < lo + m:
            part += x[i]
            i += 1
        res = part + res
        d -= 1
    return res


@helper(hot=True)
def _base(
    scores: np.ndarray, acc: np.ndarray, inv_max: float, prior_w: float, mask: np.ndarray, extra: np.ndarray,
) -> None:
    """Every item's prior term, ``-inf`` where masked out; the prior ``acc_i * inv_max`` is
    formed per item (no normalised array)."""
    neg_inf = -np.inf
    for i in range(scores.shape[0]):
        v = prior_w * (acc[i] * inv_max) + extra[i]  # unconditional loads: the loop vectorises
        scores[i] = v if mask[i] != 0 else neg_inf


@helper(hot=True)
def _interests(
    scores: np.ndarray, live_fid: np.ndarray, live_score: np.ndarray, n_live: int, total: float, aw: float,
    fv_indptr: np.ndarray, fv_items: np.ndarray, fv_data: np.ndarray,
) -> None:
    """``aw`` times each live affinity's share of ``total`` added along its posting list, best
    affinity first (``score_items`` over ``affinity_read``'s order)."""
    for k in range(n_live):
        w = aw * (live_score[k] / total)
        if w != 0.0:
            f = live_fid[k]
            for p in range(fv_indptr[f], fv_indptr[f + 1]):
                scores[fv_items[p]] += w * fv_data[p]


@helper(hot=True)
def _drop_purchased(scores: np.ndarray, purchased: np.ndarray, row: int, on: bool) -> None:
    """``-inf`` for the row's recent purchases (when ``on`` and ``row`` >= 0; -1 entries
    ignored). NaN scores stay: the pool phase never takes them and does not count them."""
    if on and row >= 0:
        neg_inf = -np.inf
        for j in range(purchased.shape[1]):
            e = purchased[row, j]
            if e >= 0:
                scores[e] = neg_inf


# --------------------------------------------------------------------------- 4: pool (top-k)

#: the threshold sample of :func:`_heap_select` takes about this many items per pool place
_SAMPLE_PER_K = 16

# Item a ranks below item b when (s_a, -a) < (s_b, -b): a strict total order on non-NaN scores,
# so the top k (best first) is unique and equals ``topk.top_k``'s whatever the algorithm. The
# heap below is ``topk.py``'s with the comparison written out and the sift-down written twice
# (so the helpers stay leaves), and the worst kept score cached once the heap is full (most
# items then cost one compare: 30% faster than ``top_k`` on 10,000 items, k = 50).


@helper(hot=True)
def _sift_down(heap: np.ndarray, size: int, scores: np.ndarray) -> None:
    """Restore the min-heap ``heap[:size]`` (worst kept on top; ties: the higher index is
    worse) after its top was replaced."""
    c = 0
    while True:
        m = 2 * c + 1
        if m >= size:
            return
        r = m + 1
        if r < size:  # the worse child (the worst kept stays on top)
            x = heap[r]
            y = heap[m]
            if scores[x] < scores[y] or (scores[x] == scores[y] and x > y):
                m = r
        a = heap[m]
        b = heap[c]
        if scores[a] < scores[b] or (scores[a] == scores[b] and a > b):
            heap[m] = b
            heap[c] = a
            c = m
        else:
            return


@helper(hot=True)
def _offer(heap: np.ndarray, size: int, k: int, scores: np.ndarray, i: int) -> int:
    """Item ``i`` into the min-heap ``heap[:size]`` of capacity ``k`` (when full, ``i`` must
    rank above the worst kept, ``heap[0]``, which it replaces); returns the new size."""
    if size == k:
        heap[0] = i
        _sift_down(heap, size, scores)
        return size
    heap[size] = i
    c = size
    while c > 0:  # sift up
        p = (c - 1) // 2
        a = heap[c]
        b = heap[p]
        if scores[a] < scores[b] or (scores[a] == scores[b] and a > b):
            heap[c] = b
            heap[p] = a
            c = p
        else:
            break
    return size + 1


@helper(hot=True)
def _heap_select(scores: np.ndarray, k: int, heap: np.ndarray, cand: np.ndarray, counts: np.ndarray) -> int:
    """The ``k`` best items (never -inf or NaN) as a min-heap on rank in ``heap[:size]``;
    returns ``size``, and counts the candidates (scores neither ``-inf`` nor NaN) into
    ``counts[C_CANDIDATES]``.

    One heap pass over every item costs a hard-to-predict branch per item, and it dominated
    the decision (about 60% of the kernel on 10,000 items). So on a large catalog a strided
    sample first gives a threshold ``tau`` that about ``3k`` items reach, one pass collects them
    into ``cand`` (int64[n], scratch) while counting, testing blocks of 64 items with vectorised
    code (a quarter of a per-item branch's time), and the heap runs over those alone. Exact:
    when at least ``k`` items reach ``tau``, the ``k`` best all do; otherwise (a sample that
    misled, ties, few candidates) the full heap pass runs."""
    n = scores.shape[0]
    neg_inf = -np.inf
    stride = n // (_SAMPLE_PER_K * k) if k > 0 else 0
    tau = neg_inf
    if stride >= 2:  # the sample's j-th best: about j * stride items reach it
        j = 3 * k // stride + 2
        size = 0
        for i in range(0, n, stride):
            s = scores[i]
            if s == s and s != neg_inf and (size < j or s > scores[cand[0]]):
                size = _offer(cand, size, j, scores, i)
        if size == j:
            tau = scores[cand[0]]
    kept = 0
    m = 0
    if tau != neg_inf:  # blocks of 64 tested with vectorised, branch-free code; few hold a survivor
        nb = n // 64
        for b in range(nb + 1):
            lo = b * 64
            hit = False
            if b < nb:
                for q in range(64):  # a constant trip count: LLVM vectorises it
                    s = scores[lo + q]
                    kept += (s == s) & (s != neg_inf)
                    hit |= s >= tau
            else:  # the tail
                for i in range(lo, n):
                    s = scores[i]
                    kept += (s == s) & (s != neg_inf)
                    hit |= s >= tau
            if hit:
                for i in range(lo, min(lo + 64, n)):
                    if scores[i] >= tau:
                        cand[m] = i
                        m += 1
    size = 0
    if tau != neg_inf and m >= k:
        for c in range(m):  # in index order, as the full pass
            i = cand[c]
            if size < k or scores[i] > scores[heap[0]]:  # ties keep the lower index
                size = _offer(heap, size, k, scores, i)
    else:
        kept = 0
        worst = neg_inf if k > 0 else np.inf  # scores[heap[0]] once the heap is full (k = 0: full at once)
        for i in range(n):
            s = scores[i]
            ok = s == s and s != neg_inf
            kept += 1 if ok else 0
            if size == k:
                if not s > worst:  # most items: one compare (NaN and -inf fail it too)
                    continue
            elif not ok:
                continue
            size = _offer(heap, size, k, scores, i)
            if size == k:
                worst = scores[heap[0]]
    counts[C_CANDIDATES] = kept
    return size


@helper(hot=True)
def _heap_sort(heap: np.ndarray, size: int, scores: np.ndarray) -> None:
    """Sort the min-heap ``heap[:size]`` best first (repeatedly move the worst to the end)."""
    n = size
    while n > 1:
        top = heap[0]
        heap[0] = heap[n - 1]
        heap[n - 1] = top
        n -= 1
        _sift_down(heap, n, scores)


@helper(hot=True)
def _finite_items(scores: np.ndarray, pool: np.ndarray, counts: np.ndarray) -> int:
    """The uniform policy's pool: every finite score's item, in index order; returns the count.
    Counts the candidates (scores neither ``-inf`` nor NaN) into ``counts[C_CANDIDATES]``."""
    inf = np.inf
    m = 0
    kept = 0
    for i in range(scores.shape[0]):
        v = scores[i]
        if v == v and v != -inf:
            kept += 1
            if v != inf:
                pool[m] = i
                m += 1
    counts[C_CANDIDATES] = kept
    return m


# --------------------------------------------------------------------------- 5-6: slate, feedback


@helper(hot=True)
def _slate(
    idx: np.ndarray, sc: np.ndarray, m: int, n_slots: int, mode: int, param: float, state: np.ndarray,
    weights: np.ndarray, out_idx: np.ndarray, out_score: np.ndarray, out_prop: np.ndarray,
) -> int:
    """``rank_slate``'s logic over the pool ``idx``/``sc`` (best first; consumed in place, it is
    scratch): per slot the best (greedy), the best or a uniform draw (epsilon), a Plackett-Luce
    draw (softmax, ``weights`` scratch) or a uniform draw, with the probability of the choice
    given the slots before. Returns the slots filled."""
    filled = min(n_slots, m)
    for s in range(filled):
        remaining = m - s
        pick = 0
        prop = 1.0
        u = 0.0
        if MODE_EPSILON <= mode <= MODE_UNIFORM:  # rank_slate's draws; rng_below(n) is int(uniform * n)
            u = rng_uniform(state)
            if mode == MODE_EPSILON:
                if u < param:
                    pick = int(rng_uniform(state) * remaining)
                prop = param / remaining
                if pick == 0:
                    prop += 1.0 - param
            elif mode == MODE_UNIFORM:
                pick = int(u * remaining)
                prop = 1.0 / remaining
        if mode == MODE_SOFTMAX:
            top = sc[0]
            total = 0.0
            for j in range(remaining):
                w = math.exp((sc[j] - top) / param)
                weights[j] = w
                total += w
            u *= total
            acc = 0.0
            pick = remaining - 1
            for j in range(remaining):
                acc += weights[j]
                if u < acc:
                    pick = j
                    break
            prop = weights[pick] / total
        out_idx[s] = idx[pick]
        out_score[s] = sc[pick]
        out_prop[s] = prop
        for j in range(pick, remaining - 1):
            idx[j] = idx[j + 1]
            sc[j] = sc[j + 1]
    return filled


@helper(hot=True)
def _feedback(
    out_idx: np.ndarray, filled: int, extra: np.ndarray, boost: np.ndarray, trials: np.ndarray,
    clicks: np.ndarray, fw: float, prior_clicks: float, prior_trials: float,
) -> None:
    """Each shown item's trial counted and its ``extra`` refreshed: boost plus ``fw`` times the
    click-through posterior mean (the engine's ``_refresh_extra``)."""
    for s in range(filled):
        i = out_idx[s]
        trials[i] += 1.0
        extra[i] = boost[i] + fw * ((clicks[i] + prior_clicks) / (trials[i] + prior_trials))


# --------------------------------------------------------------------------- shared phases
# ``score_row`` and ``select_pool`` are the phases both paths share: helpers, typed and lowered
# once and linked into ``decide_slate`` and ``recommend_rows`` (as kernels of their own they
# compiled to machine code three times more, once alone and once in each caller).


@helper
def score_row(
    prof: Arrays, row: int, now: int, personalized: int, hl: np.ndarray, cat: Arrays, acc: np.ndarray,
    plc: Arrays, params: np.ndarray, work: Arrays, counts: np.ndarray,
) -> int:
    """Phases 2-3 of both paths: row ``row``'s live affinities decayed to ``now`` into
    ``work[3:5]`` best first (none when ``personalized`` == 0 or ``row`` < 0; the row is not
    written), then every item's score into ``work[0]``: ``aw * sum_f a_f x_if +
    pw * acc_i * inv_max + extra_i`` with the affinities normalised to sum 1, ``-inf`` where
    masked or purchased (``P_EXCLUDE_PURCHASED`` and ``row`` >= 0). A NaN score stays NaN:
    :func:`select_pool` skips it (and counts the candidates in its own pass, so the catalog is
    read twice per decision, not three times). Sets ``counts[C_LIVE]`` and returns it.

    Assumes: row < P; K <= 256 (NumPy-equal sums). No allocation. O(K^2 + n + touched postings).
    """
    fid, score, t, purchased = prof
    fv_indptr, fv_items, fv_data = cat
    mask, extra = plc[0], plc[1]
    scores, live_fid, live_score = work[0], work[3], work[4]
    n_live = 0
    if personalized != 0 and row >= 0:
        n_live = _read(fid, score, t, row, now, hl, live_fid, live_score)
    _base(scores, acc, params[P_INV_MAX], params[P_PRIOR_W], mask, extra)
    if n_live > 0:
        total = _np_sum(live_score, n_live)
        _interests(scores, live_fid, live_score, n_live, total, params[P_AFFINITY_W], fv_indptr, fv_items, fv_data)
    _drop_purchased(scores, purchased, row, params[P_EXCLUDE_PURCHASED] != 0.0)
    counts[C_LIVE] = n_live
    return n_live


@helper
def select_pool(
    scores: np.ndarray, mode: int, k: int, pool: np.ndarray, pool_scores: np.ndarray, cand: np.ndarray,
    counts: np.ndarray,
) -> int:
    """Phase 4 (``SlatePolicy.select``'s pool): for ``MODE_UNIFORM`` every finite score's item in
    index order, else the ``k`` best (ties to the lower index, never ``-inf``/NaN) best first,
    into ``pool`` (int64) with their scores in ``pool_scores``; ``cand`` int64[n] is scratch.
    Sets ``counts[C_CANDIDATES]``
    (scores neither ``-inf`` nor NaN) and returns the pool's size.

    Assumes: pool and pool_scores hold min(k, n) (top-k) or n (uniform). No allocation.
    O(n log k).
    """
    if mode == MODE_UNIFORM:
        m = _finite_items(scores, pool, counts)
    else:
        m = _heap_select(scores, k, pool, cand, counts)
        _heap_sort(pool, m, scores)
    for j in range(m):
        pool_scores[j] = scores[pool[j]]
    return m


# --------------------------------------------------------------------------- kernels


@kernel(nrt=False)
def decide_slate(
    prof: Arrays, row: int, now: int, personalized: int, upd_fvs: np.ndarray, upd_w: np.ndarray,
    hl: np.ndarray, cat: Arrays, acc: np.ndarray, plc: Arrays, params: np.ndarray, state: np.ndarray,
    work: Arrays, out: Arrays, counts: np.ndarray,
) -> int:
    """One recommendation decision for profile row ``row`` at event time ``now`` (ms), in one
    call. Bundles and ``params``/``counts`` indices: module docstring.

    1. The event's interest update, as ``affinity_update`` (``upd_fvs`` int32[m] gain
       ``upd_w`` float64[m]; m = 0 skips it: no consent, or no item).
    2-3. :func:`score_row`: live affinities into ``work[3:5]`` (none when ``personalized`` is
       0), every item's score into ``work[0]``.
    4. :func:`select_pool`: the top ``max(pool, slots)``, or every finite item (uniform).
    5. The slate by ``params[P_MODE]``, drawing from ``state`` (uint64[1]), as ``rank_slate``.
    6. ``trials`` and ``extra`` of the chosen items updated.

    With ``params[P_RETRIEVE]`` > 0 (a learned ranker) it stops after 3: the greedy top
    ``P_RETRIEVE`` into ``work[1]``/``work[2]``, their count in ``counts[C_POOL]``; the caller
    scores them with its model and :func:`slate_ranked` does 4-6 over its order.

    Writes ``out`` and ``counts``; returns the slots filled.

    Assumes: 0 <= row < P; upd_fvs < n_fv; hl > 0; work and out sized as in the module
    docstring; K <= 256; tau > 0; 0 <= eps <= 1. No allocation.
    O(m K + K^2 + n + touched postings + n log pool + slots * pool).
    """
    fid, score, t = prof[0], prof[1], prof[2]
    _mask, extra, boost, trials, clicks = plc
    scores, pool, pool_scores, weights = work[0], work[1], work[2], work[5]
    out_idx, out_score, out_prop = out
    if upd_fvs.shape[0] > 0:  # 1
        late = now < t[row]  # an older event: its weights decayed to the row's time
        back = t[row] - now
        if not late:
            _decay_row(fid, score, t, row, now, hl)
        for j in range(upd_fvs.shape[0]):
            f = upd_fvs[j]
            w = upd_w[j]
            if late:
                w = w * math.pow(2.0, -back / hl[f])
            _add(fid, score, row, f, w)
    score_row(prof, row, now, personalized, hl, cat, acc, plc, params, work, counts)
    mode = int(params[P_MODE])
    n_slots = int(params[P_SLOTS])
    retrieve = int(params[P_RETRIEVE])
    if retrieve > 0:  # retrieval for a learned ranker: slate_ranked goes on from the pool
        counts[C_POOL] = select_pool(scores, MODE_GREEDY, retrieve, pool, pool_scores, work[6], counts)
        counts[C_FILLED] = 0
        return 0
    m = select_pool(scores, mode, max(int(params[P_POOL]), n_slots), pool, pool_scores, work[6], counts)
    filled = _slate(pool, pool_scores, m, n_slots, mode, params[P_PARAM], state, weights, out_idx, out_score, out_prop)
    _feedback(out_idx, filled, extra, boost, trials, clicks,
              params[P_FEEDBACK_W], params[P_PRIOR_CLICKS], params[P_PRIOR_TRIALS])
    counts[C_FILLED] = filled
    counts[C_POOL] = m
    return filled


@kernel(nrt=False)
def slate_ranked(
    y: np.ndarray, pool: np.ndarray, plc: Arrays, params: np.ndarray, state: np.ndarray, rwork: Arrays,
    weights: np.ndarray, out: Arrays, counts: np.ndarray,
) -> int:
    """Phases 4-6 of :func:`decide_slate` over a learned ranker's order: ``pool`` int64[m] the
    retrieved items, ``y`` float64[m] the model's scores of them. The policy's pool is the top
    ``max(P_POOL, P_SLOTS)`` by ``y`` (ties to the retrieval order), best first; then the slate
    (propensities exact given that order, as :func:`decide_slate`'s) and the click-through
    update of the shown items. ``rwork = (pos int64[m], cand int64[m], items int64[m],
    scores float64[m])`` is scratch; ``weights`` float64[>= m]. Sets ``counts[C_FILLED]``
    (``C_CANDIDATES`` stays the retrieval's) and returns it.

    Assumes: y finite; m <= each scratch's length; as :func:`decide_slate`. No allocation.
    O(m log k + slots * k).
    """
    pos, cand, items, sc = rwork
    _mask, extra, boost, trials, clicks = plc
    out_idx, out_score, out_prop = out
    mode = int(params[P_MODE])
    n_slots = int(params[P_SLOTS])
    k = max(int(params[P_POOL]), n_slots)
    kept = counts[C_CANDIDATES]
    size = _heap_select(y, k, pos, cand, counts)
    counts[C_CANDIDATES] = kept
    _heap_sort(pos, size, y)
    for j in range(size):
        items[j] = pool[pos[j]]
        sc[j] = y[pos[j]]
    filled = _slate(items, sc, size, n_slots, mode, params[P_PARAM], state, weights, out_idx, out_score, out_prop)
    _feedback(out_idx, filled, extra, boost, trials, clicks,
              params[P_FEEDBACK_W], params[P_PRIOR_CLICKS], params[P_PRIOR_TRIALS])
    counts[C_FILLED] = filled
    return filled


@kernel(nrt=False)
def recommend_rows(
    prof: Arrays, rows: np.ndarray, now: np.ndarray, personalized: np.ndarray, hl: np.ndarray, cat: Arrays,
    acc: np.ndarray, plc: Arrays, params: np.ndarray, k: int, work: Arrays, out: Arrays, counts: np.ndarray,
    lo: int, hi: int,
) -> None:
    """The read path for requests ``lo`` to ``hi - 1`` of a batch: ``rows`` and ``now``
    int64[b], ``personalized`` uint8[b]; ``out`` = (int64[b, >= k], float64[b, >= k],
    float64[b, >= k]) and ``counts`` int64[b, N_COUNTS], one row per request. Each request is
    :func:`score_row` as :func:`decide_slate` calls it (same scores, bit for bit), then the
    greedy top ``k`` by :func:`select_pool` (best first, ties to the lower index, ``out_prop``
    = 1). Writes only ``work``, rows ``lo:hi`` of ``out`` and of ``counts`` (``C_POOL`` =
    ``C_FILLED``): no update, no exploration, no feedback. A row < 0 (unknown person): no
    affinities and no purchase exclusion.

    ``work`` is the caller's scratch, reused request after request (only ``scores``,
    ``live_fid``, ``live_score`` and ``cand`` are used: :func:`new_read_work`); concurrent
    readers each pass their own. :func:`recommend_one` (one request) and
    :func:`recommend_batch` (a batch over threads) call it from Python.

    Assumes: 0 <= lo <= hi <= b; rows < P; 0 <= k <= out width; as :func:`decide_slate`. No
    allocation. O((hi - lo) * (K^2 + n + touched postings + n log k)).
    """
    out_idx, out_score, out_prop = out
    for b in range(lo, hi):
        pers = 1 if personalized[b] != 0 else 0  # int64, as decide_slate passes it to score_row
        c = counts[b]
        score_row(prof, rows[b], now[b], pers, hl, cat, acc, plc, params, work, c)
        o_prop = out_prop[b]
        m = select_pool(work[0], MODE_GREEDY, k, out_idx[b], out_score[b], work[6], c)
        for j in range(m):
            o_prop[j] = 1.0
        c[C_FILLED] = m
        c[C_POOL] = m


# --------------------------------------------------------------------------- read path (Python)

#: requests per thread below which :func:`recommend_batch` does not hand work to another thread
#: (a hand-over costs about as much as a few reads of a 10,000-item catalog)
MIN_PER_THREAD = 4

_pool_lock = threading.Lock()
_pool: list[ThreadPoolExecutor] = []


def _threads() -> int:
    """``NUMBA_NUM_THREADS`` (default: the cores), read without starting numba's thread pool."""
    return int(getattr(numba.config, "NUMBA_NUM_THREADS"))  # noqa: B009 - set at import, untyped


def _executor() -> ThreadPoolExecutor:
    """The module's reader threads (created on first use): ``NUMBA_NUM_THREADS - 1`` of them, the
    calling thread being the last."""
    with _pool_lock:
        if not _pool:
            n = max(1, _threads() - 1)
            _pool.append(ThreadPoolExecutor(max_workers=n, thread_name_prefix="decisioner-read"))
        return _pool[0]


def recommend_one(
    prof: Arrays, row: int, now: int, personalized: int, hl: np.ndarray, cat: Arrays, acc: np.ndarray,
    plc: Arrays, params: np.ndarray, k: int, work: Arrays, out: Arrays, counts: np.ndarray,
) -> int:
    """One read (:func:`recommend_rows` for a batch of one): ``out`` = (int64[>= k],
    float64[>= k], float64[>= k]), ``counts`` int64[N_COUNTS]; returns how many items were
    written. Bundles as :func:`decide_slate`'s; ``work`` as :func:`recommend_rows`'s."""
    recommend_rows(
        prof, np.array([row], dtype=np.int64), np.array([now], dtype=np.int64),
        np.array([1 if personalized else 0], dtype=np.uint8), hl, cat, acc, plc, params, k, work,
        (out[0][None], out[1][None], out[2][None]), counts[None], 0, 1,
    )
    return int(counts[C_FILLED])


def recommend_batch(
    prof: Arrays, rows: np.ndarray, now: np.ndarray, personalized: np.ndarray, hl: np.ndarray, cat: Arrays,
    acc: np.ndarray, plc: Arrays, params: np.ndarray, k: int, out: Arrays, counts: np.ndarray,
) -> None:
    """:func:`recommend_rows` for a whole batch, the requests spread over the cores: the batch
    is cut into one contiguous part per thread (``NUMBA_NUM_THREADS``, at least
    :data:`MIN_PER_THREAD` requests each), and each part runs the serial kernel, which releases
    the GIL, with its own scratch (``scores`` float64[n] and the live-affinity buffers: memory
    O(threads * n), never O(b * n)). Results equal one :func:`recommend_one` call per request.

    (A ``prange`` kernel did the same, but it was the costliest kernel to compile: numba builds
    the loop body as a gufunc and compiles the linked read path once more.)
    """
    b = rows.shape[0]
    n, slots = plc[0].shape[0], prof[0].shape[1]
    parts = max(1, min(_threads(), b // MIN_PER_THREAD))

    def run(j: int) -> None:
        recommend_rows(prof, rows, now, personalized, hl, cat, acc, plc, params, k, new_read_work(n, slots),
                       out, counts, j * b // parts, (j + 1) * b // parts)

    if parts == 1:
        run(0)
        return
    # the first call compiles (or loads) it: never in two threads at once
    if not getattr(recommend_rows, "signatures", True):
        run(0)
        futures = [_executor().submit(run, j) for j in range(1, parts)]
    else:
        futures = [_executor().submit(run, j) for j in range(1, parts)]
        run(0)
    for f in futures:
        f.result()


# --------------------------------------------------------------------------- buffers (Python)


def new_work(n_items: int, slots: int) -> tuple[np.ndarray, ...]:
    """A ``work`` bundle for ``n_items`` catalog items and ``slots`` (K) affinity slots per
    profile: allocate once per engine (decide path, under the writer lock) or per reader."""
    return (
        np.empty(n_items, dtype=np.float64), np.empty(n_items, dtype=np.int64),
        np.empty(n_items, dtype=np.float64), np.empty(slots, dtype=np.int32),
        np.empty(slots, dtype=np.float64), np.empty(n_items, dtype=np.float64), np.empty(n_items, dtype=np.int64),
    )


def new_read_work(n_items: int, slots: int) -> tuple[np.ndarray, ...]:
    """A ``work`` bundle for the read path only (pool, pool_scores and weights empty)."""
    return (
        np.empty(n_items, dtype=np.float64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64),
        np.empty(slots, dtype=np.int32), np.empty(slots, dtype=np.float64), np.empty(0, dtype=np.float64),
        np.empty(n_items, dtype=np.int64),
    )


def new_out(n_slots: int) -> tuple[np.ndarray, ...]:
    """An ``out`` bundle for ``n_slots`` slots: (int64 items, float64 scores, float64 propensities)."""
    return np.empty(n_slots, dtype=np.int64), np.empty(n_slots, dtype=np.float64), np.empty(n_slots, dtype=np.float64)
