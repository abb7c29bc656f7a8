"""``_kernels/decide.py``: the fused decide and read kernels, against their twins and, bit for
bit, against today's composition of kernels (``affinity_update`` + ``affinity_read`` +
``score_items`` + ``SlatePolicy.select`` + the engine's click-through refresh)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

import reference as ref
from decisioner._kernels import affinity as A
from decisioner._kernels import bandit as B
from decisioner._kernels import decide as D
from decisioner._kernels._jit import kernel
from decisioner._kernels.rng import seed_state
from decisioner.allocation.slate import SlatePolicy
from decisioner.config import EpsilonGreedySpec, GreedySpec, PolicySpec, RandomSpec, SoftmaxSpec

from ._helpers import size

FEEDBACK_W, PRIOR_CLICKS, PRIOR_TRIALS = 0.3, 1.0, 20.0  # the engine's defaults
NOW = 50_000


# The shared phases are helpers (linked into the kernels, no Python entry point): these
# test-only kernels run each phase alone, compiled as the library's kernels compile it.


@kernel(nrt=False)
def score_row(
    prof: D.Arrays, row: int, now: int, personalized: int, hl: np.ndarray, cat: D.Arrays, acc: np.ndarray,
    plc: D.Arrays, params: np.ndarray, work: D.Arrays, counts: np.ndarray,
) -> int:
    return D.score_row(prof, row, now, personalized, hl, cat, acc, plc, params, work, counts)


@kernel(nrt=False)
def select_pool(
    scores: np.ndarray, mode: int, k: int, pool: np.ndarray, pool_scores: np.ndarray, cand: np.ndarray,
    counts: np.ndarray,
) -> int:
    return D.select_pool(scores, mode, k, pool, pool_scores, cand, counts)

#: (policy spec, mode) of every slate mode, with a small pool so pools and slots interact
POLICIES: dict[str, PolicySpec] = {
    "greedy": GreedySpec(),
    "epsilon": EpsilonGreedySpec(epsilon=0.3, pool=7),
    "softmax": SoftmaxSpec(temperature=0.05, pool=7),
    "uniform": RandomSpec(),
}


@dataclass
class World:
    """One engine's arrays in the bundles of ``decide.py`` (canonical dtypes)."""

    prof: tuple[np.ndarray, ...]
    hl: np.ndarray
    cat: tuple[np.ndarray, ...]
    acc: np.ndarray
    plc: tuple[np.ndarray, ...]
    params: np.ndarray = field(default_factory=lambda: np.zeros(D.N_PARAMS))

    @property
    def n(self) -> int:
        return int(self.plc[0].shape[0])

    def clone(self) -> World:
        return copy.deepcopy(self)

    def set_policy(self, spec: PolicySpec, slots: int) -> SlatePolicy:
        pol = SlatePolicy(spec)
        self.params[D.P_MODE], self.params[D.P_PARAM], self.params[D.P_POOL] = pol.mode, pol.param, pol.pool
        self.params[D.P_SLOTS] = slots
        return pol

    def prior(self) -> np.ndarray:
        """The normalised prior as the kernel forms it (``acc * inv_max``)."""
        return self.acc * self.params[D.P_INV_MAX]


def world(seed: int, n_items: int = 300, n_fv: int = 40, rows: int = 6, K: int = 6, R: int = 4) -> World:
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 4, n_items)
    indices = np.concatenate([rng.choice(n_fv, m, replace=False) for m in per]).astype(np.int32)
    item_of = np.repeat(np.arange(n_items), per)
    order = np.argsort(indices, kind="stable")
    fv_indptr = np.zeros(n_fv + 1, np.int64)
    np.cumsum(np.bincount(indices, minlength=n_fv), out=fv_indptr[1:])
    cat = (fv_indptr, item_of[order].astype(np.int32), rng.uniform(0.2, 1.0, order.shape[0]).astype(np.float32))
    fid = np.full((rows, K), -1, np.int32)
    score = np.zeros((rows, K), np.float32)
    t = np.zeros(rows, np.int64)
    hl = rng.uniform(1e4, 1e6, n_fv)
    for r in range(rows - 1):  # the last row stays empty
        for step in range(3 * K):
            fvs = rng.integers(0, n_fv, 2).astype(np.int32)
            A.affinity_update(fid, score, t, r, fvs, rng.uniform(0.1, 3.0, 2), int(step * 700 + r), hl)
    purchased = np.full((rows, R), -1, np.int32)
    purchased[:, : R // 2] = rng.integers(0, n_items, (rows, R // 2))
    acc = rng.exponential(3.0, n_items)
    acc[rng.random(n_items) < 0.3] = 0.0
    mask = (rng.random(n_items) > 0.15).astype(np.uint8)
    boost = np.where(rng.random(n_items) < 0.1, 0.2, 0.0)
    trials = rng.integers(0, 30, n_items).astype(np.float64)
    clicks = np.floor(trials * rng.random(n_items))
    extra = boost + FEEDBACK_W * (clicks + PRIOR_CLICKS) / (trials + PRIOR_TRIALS)
    w = World((fid, score, t, purchased), hl, cat, acc, (mask, extra, boost, trials, clicks))
    p = w.params
    p[D.P_AFFINITY_W], p[D.P_PRIOR_W], p[D.P_INV_MAX] = 1.3, 0.4, 1.0 / acc.max()
    p[D.P_FEEDBACK_W], p[D.P_PRIOR_CLICKS], p[D.P_PRIOR_TRIALS] = FEEDBACK_W, PRIOR_CLICKS, PRIOR_TRIALS
    p[D.P_EXCLUDE_PURCHASED] = 1.0
    return w


def event(w: World, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An item's facet values and weights, as ``Engine._apply`` passes them."""
    rng = np.random.default_rng(seed)
    n_fv = w.cat[0].shape[0] - 1
    fvs = rng.choice(n_fv, 3, replace=False).astype(np.int32)
    return fvs, rng.uniform(0.2, 2.0, 3)


NO_FVS = np.empty(0, np.int32)
NO_W = np.empty(0, np.float64)


# --------------------------------------------------------------------------- runners


@dataclass
class Result:
    n: int
    idx: list[int]
    score: list[float]
    prop: list[float]
    counts: list[int]
    live: list[tuple[int, float]]


def run_kernel(
    w: World, row: int, now: int, personalized: bool, fvs: np.ndarray, wts: np.ndarray, state: np.ndarray,
) -> Result:
    slots = int(w.params[D.P_SLOTS])
    work = D.new_work(w.n, w.prof[0].shape[1])
    out = tuple(np.full(max(slots, 1), v) for v in (-7, np.nan, np.nan))
    out = (out[0].astype(np.int64), out[1], out[2])
    counts = np.full(D.N_COUNTS, -7, np.int64)
    n = D.decide_slate(w.prof, row, now, int(personalized), fvs, wts, w.hl, w.cat, w.acc, w.plc, w.params, state,
                       work, out, counts)
    assert n == counts[D.C_FILLED]
    live = list(zip(work[3][: counts[D.C_LIVE]].tolist(), work[4][: counts[D.C_LIVE]].tolist()))
    return Result(n, out[0][:n].tolist(), out[1][:n].tolist(), out[2][:n].tolist(), counts.tolist(), live)


def run_today(
    w: World, row: int, now: int, personalized: bool, fvs: np.ndarray, wts: np.ndarray, state: np.ndarray,
    pol: SlatePolicy,
) -> Result:
    """Today's decision as ``Engine._apply`` + ``_decide_recommendation`` compose it (with the
    prior formed as ``acc * inv_max``)."""
    fid, score, t, purchased = w.prof
    mask, extra, boost, trials, clicks = w.plc
    if fvs.shape[0]:
        A.affinity_update(fid, score, t, row, fvs, wts, now, w.hl)
    K = fid.shape[1]
    of, osc = np.empty(K, np.int32), np.empty(K, np.float64)
    m = A.affinity_read(fid, score, t, row, now, w.hl, of, osc) if personalized else 0
    fids, scores = of[:m].copy(), osc[:m].copy()
    # AffinityScorer.score_one
    total = float(scores.sum()) if scores.shape[0] else 0.0
    norm = scores / total if total > 0.0 else scores
    item_scores = np.empty(w.n, np.float64)
    excluded = purchased[row] if w.params[D.P_EXCLUDE_PURCHASED] else np.empty(0, np.int32)
    n_cand = A.score_items(*w.cat, fids, np.ascontiguousarray(norm, dtype=np.float64), fids.shape[0],
                           float(w.params[D.P_AFFINITY_W]), w.prior(), float(w.params[D.P_PRIOR_W]),
                           extra, mask, excluded, item_scores)
    idx, prop = pol.select(item_scores, int(w.params[D.P_SLOTS]), state)
    # Engine._decide_recommendation + _refresh_extra
    trials[idx] += 1.0
    ctr = (clicks[idx] + PRIOR_CLICKS) / (trials[idx] + PRIOR_TRIALS)
    extra[idx] = boost[idx] + FEEDBACK_W * ctr
    if pol.mode == B.MODE_UNIFORM:
        n_pool = int(np.isfinite(item_scores).sum())
    else:
        n_pool = min(int((item_scores != -np.inf).sum()), max(pol.pool, int(w.params[D.P_SLOTS])))
    counts = [len(idx), int(n_cand), m, n_pool]
    return Result(len(idx), idx.tolist(), item_scores[idx].tolist(), prop.tolist(), counts,
                  list(zip(fids.tolist(), scores.tolist())))


def assert_same_state(a: World, b: World) -> None:
    for x, y in zip(a.prof + a.plc, b.prof + b.plc):
        assert np.array_equal(x, y, equal_nan=True)


# --------------------------------------------------------------------------- constants and helpers


def test_mode_codes_are_bandits() -> None:
    assert (D.MODE_GREEDY, D.MODE_EPSILON, D.MODE_SOFTMAX, D.MODE_UNIFORM) == (
        B.MODE_GREEDY, B.MODE_EPSILON, B.MODE_SOFTMAX, B.MODE_UNIFORM)
    assert D.N_PARAMS == 1 + max(v for k, v in vars(D).items() if k.startswith("P_"))
    assert [getattr(D, k) for k in dir(ref) if k.startswith("P_")] == [getattr(ref, k) for k in dir(ref) if k.startswith("P_")]


@pytest.mark.parametrize("n", [*list(range(0, 40)), 63, 64, 127, 128, 129, 135, 136, 137, 200, 250, 255, 256])
def test_affinity_total_is_numpys_sum(n: int) -> None:
    """``_np_sum`` (the normaliser of ``score_one``'s ``scores / scores.sum()``) equals
    ``np.sum`` bit for bit up to the 256 slots a profile may have."""
    x = np.random.default_rng(n).exponential(1.0, n) * 10.0 ** np.random.default_rng(n + 1).integers(-6, 3, n)
    np_sum = getattr(D._np_sum, "py_func", D._np_sum)  # the algorithm as Python (the kernels run it compiled below)
    assert np_sum(x, n) == np.sum(x)


# --------------------------------------------------------------------------- bit for bit vs today


@pytest.mark.parametrize("mode", list(POLICIES))
@pytest.mark.parametrize(("seed", "K"), [(0, 6), (1, 24), (2, 24)])  # 24: the default profile slots
def test_equals_todays_composition(mode: str, seed: int, K: int) -> None:
    """A run of decisions on one world: every output, every updated array and the RNG state
    equal today's kernels composed as the engine composes them, bit for bit."""
    a = world(seed, K=K)
    b = a.clone()
    pa, pb = a.set_policy(POLICIES[mode], 4), b.set_policy(POLICIES[mode], 4)
    assert pa.mode == pb.mode
    sa, sb = seed_state(seed, 1), seed_state(seed, 1)
    rng = np.random.default_rng(seed + 100)
    rows = a.prof[0].shape[0]
    for step in range(size(24, 8)):
        row = int(rng.integers(0, rows))
        now = NOW + 1000 * step - int(rng.integers(0, 3000))  # some events arrive late
        personalized = bool(rng.random() < 0.8)
        fvs, wts = event(a, seed * 1000 + step) if rng.random() < 0.7 else (NO_FVS, NO_W)
        got = run_kernel(a, row, now, personalized, fvs, wts, sa)
        want = run_today(b, row, now, personalized, fvs, wts, sb, pb)
        assert got == want, step
        assert sa[0] == sb[0]
        assert_same_state(a, b)


@pytest.mark.parametrize(("mode", "n_live"), [
    *[("greedy", n) for n in (8, 13, 64, 128, 129, 200, 255)], *[(m, 256) for m in POLICIES],
])
def test_equals_today_with_long_profiles(mode: str, n_live: int) -> None:
    """Up to 256 live slots (the configurable maximum): the compiled pairwise affinity total
    still equals ``scores.sum()``, so the decision is still bit for bit today's."""
    a = world(5, n_items=400, n_fv=300, rows=2, K=256)
    fid, score, t, _ = a.prof
    fid[0] = -1
    score[0] = 0.0
    fid[0, :n_live] = np.arange(n_live, dtype=np.int32)
    score[0, :n_live] = np.random.default_rng(n_live).uniform(0.01, 5.0, n_live).astype(np.float32)
    t[0] = NOW
    b = a.clone()
    pb = b.set_policy(POLICIES[mode], 5)
    a.set_policy(POLICIES[mode], 5)
    sa, sb = seed_state(9), seed_state(9)
    got = run_kernel(a, 0, NOW + 10, True, NO_FVS, NO_W, sa)
    want = run_today(b, 0, NOW + 10, True, NO_FVS, NO_W, sb, pb)
    assert got.counts[D.C_LIVE] == n_live
    assert got == want
    assert_same_state(a, b)


# --------------------------------------------------------------------------- vs the twin


def check_twin(w: World, row: int, now: int, personalized: bool, fvs: np.ndarray, wts: np.ndarray, seed: int) -> Result:
    """Kernel and twin from the same state: same slate, counts and updates (scores to 1e-12:
    compiled ``math.pow`` may differ from CPython's in the last bit)."""
    twin = w.clone()
    state = seed_state(seed)
    g = ref.SplitMix64(state)
    got = run_kernel(w, row, now, personalized, fvs, wts, state)
    want = ref.decide_slate_ref(twin.prof, row, now, personalized, fvs.tolist(), wts.tolist(), twin.hl, twin.cat,
                                twin.acc, twin.plc, twin.params, g)
    assert got.idx == want["idx"]
    np.testing.assert_allclose(got.score, want["score"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.prop, want["prop"], rtol=1e-12)
    assert got.counts == [len(want["idx"]), want["candidates"], len(want["live"]), want["pool"]]  # type: ignore[arg-type]
    assert [f for f, _ in got.live] == [f for f, _ in want["live"]]  # type: ignore[union-attr]
    np.testing.assert_allclose([s for _, s in got.live], [s for _, s in want["live"]], rtol=1e-12)  # type: ignore[union-attr]
    assert int(state[0]) == g.state
    assert np.array_equal(w.prof[0], twin.prof[0]) and np.array_equal(w.prof[2], twin.prof[2])
    np.testing.assert_array_max_ulp(w.prof[1], twin.prof[1], maxulp=1)
    np.testing.assert_array_equal(w.plc[3], twin.plc[3])
    np.testing.assert_allclose(w.plc[1], twin.plc[1], rtol=1e-15, atol=0.0)
    return got


@pytest.mark.parametrize("mode", list(POLICIES))
@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_matches_twin_random(mode: str, seed: int) -> None:
    w = world(seed)
    w.set_policy(POLICIES[mode], 5)
    rng = np.random.default_rng(seed)
    for step in range(size(10, 3)):
        row = int(rng.integers(0, w.prof[0].shape[0]))
        fvs, wts = event(w, step) if step % 3 else (NO_FVS, NO_W)
        check_twin(w, row, NOW + 900 * step - 1500 * (step % 4 == 1), step % 5 != 4, fvs, wts, seed * 100 + step)


# --------------------------------------------------------------------------- edge cases


def small(n_items: int = 6, mode: str = "greedy", slots: int = 3) -> World:
    """Six items, two facet values, no popularity: hand-made cases set what they test."""
    fv_indptr = np.array([0, 3, 6], np.int64)
    cat = (fv_indptr, np.array([0, 1, 2, 3, 4, 5], np.int32), np.ones(6, np.float32))
    n = n_items
    prof = (np.full((2, 3), -1, np.int32), np.zeros((2, 3), np.float32), np.zeros(2, np.int64), np.full((2, 2), -1, np.int32))
    plc = (np.ones(n, np.uint8), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))
    w = World(prof, np.full(2, 1e6), cat, np.zeros(n), plc)
    w.params[D.P_AFFINITY_W], w.params[D.P_PRIOR_W], w.params[D.P_PRIOR_TRIALS] = 1.0, 1.0, PRIOR_TRIALS
    w.params[D.P_FEEDBACK_W], w.params[D.P_PRIOR_CLICKS], w.params[D.P_EXCLUDE_PURCHASED] = FEEDBACK_W, 1.0, 1.0
    w.set_policy(POLICIES[mode], slots)
    return w


@pytest.mark.parametrize("mode", list(POLICIES))
def test_no_eligible_item(mode: str) -> None:
    w = small(mode=mode)
    w.plc[0][:] = 0
    state = seed_state(1)
    before = state.copy()
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 1)
    assert got.n == 0 and got.counts[:2] == [0, 0] and got.counts[3] == 0
    assert (w.plc[3] == 0).all()  # nothing shown, nothing counted
    assert np.array_equal(state, before)


@pytest.mark.parametrize("mode", list(POLICIES))
def test_fewer_candidates_than_slots(mode: str) -> None:
    w = small(mode=mode, slots=5)
    w.plc[0][[1, 4]] = 0
    w.plc[0][0] = 0
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 2)
    assert got.n == 3 and sorted(got.idx) == [2, 3, 5]
    assert (w.plc[3][[2, 3, 5]] == 1).all() and w.plc[3].sum() == 3


@pytest.mark.parametrize("mode", list(POLICIES))
def test_all_items_excluded_as_purchased(mode: str) -> None:
    w = small(n_items=4, mode=mode)  # items 0..3 (the catalog's postings beyond 3 are unused)
    w.cat = (np.array([0, 2, 4], np.int64), np.array([0, 1, 2, 3], np.int32), np.ones(4, np.float32))
    w.plc[0][0] = 0
    w.prof[3][0] = [1, 2]
    w.prof[3][1] = [3, -1]
    # row 0 excludes 1 and 2, item 0 is masked: only item 3 remains (row 1 bought it)
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 3)
    assert got.idx == [3] and got.counts[D.C_CANDIDATES] == 1
    w.prof[3][0] = [3, 1]
    w.plc[0][2] = 0
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 3)
    assert got.n == 0 and got.counts[D.C_CANDIDATES] == 0
    w.params[D.P_EXCLUDE_PURCHASED] = 0.0  # the filter off: purchases are candidates again
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 3)
    assert sorted(got.idx) == [1, 3]


@pytest.mark.parametrize("mode", list(POLICIES))
def test_nan_scores_are_never_chosen(mode: str) -> None:
    w = small(mode=mode, slots=6)
    w.plc[1][[0, 3]] = np.nan
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 4)
    assert got.n == 4 and 0 not in got.idx and 3 not in got.idx
    assert got.counts[D.C_CANDIDATES] == 4
    assert np.isnan(w.plc[1][[0, 3]]).all()  # not shown, not refreshed


def test_ties_go_to_the_lower_index() -> None:
    w = small(mode="greedy", slots=4)
    w.plc[1][:] = [0.5, 0.7, 0.7, 0.5, 0.7, 0.1]
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 5)
    assert got.idx == [1, 2, 4, 0] and got.prop == [1.0] * 4
    w = small(mode="epsilon", slots=2)
    w.params[D.P_POOL] = 3  # the pool cut falls inside a tie: lower indices kept
    w.plc[1][:] = 0.25
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 6)
    assert got.counts[D.C_POOL] == 3 and set(got.idx) <= {0, 1, 2}


def test_personalized_off_and_empty_rows() -> None:
    w = small(mode="greedy", slots=2)
    w.params[D.P_PRIOR_W] = 0.0
    fvs, wts = np.array([1], np.int32), np.array([1.0])
    got = check_twin(w, 0, NOW, False, fvs, wts, 7)  # the update still applies (the caller decides)
    assert got.counts[D.C_LIVE] == 0 and got.live == [] and got.idx == [0, 1]  # ties: index order
    assert w.prof[0][0].tolist() == [1, -1, -1]
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 7)
    assert got.counts[D.C_LIVE] == 1 and got.idx == [3, 4]  # facet value 1 holds items 3..5
    assert got.score == [1.0, 1.0]  # share 1 of facet value 1, weight 1; extra was 0 when scored
    got = check_twin(w, 1, NOW, True, NO_FVS, NO_W, 7)  # a row with no interests
    assert got.counts[D.C_LIVE] == 0 and got.idx == [0, 1]


def test_late_event_adds_decayed_weight() -> None:
    w = small(mode="greedy", slots=1)
    w.prof[2][0] = NOW
    got = check_twin(w, 0, NOW - 500_000, True, np.array([0], np.int32), np.array([2.0]), 8)
    assert w.prof[2][0] == NOW  # the row keeps its time
    assert w.prof[1][0, 0] == pytest.approx(2.0 * 2 ** (-0.5), rel=1e-6)
    assert got.idx == [0]


@pytest.mark.parametrize("mode", list(POLICIES))
def test_zero_slots(mode: str) -> None:
    w = small(mode=mode, slots=0)
    state = seed_state(2)
    before = state.copy()
    got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 2)
    assert got.n == 0 and (w.plc[3] == 0).all()
    assert np.array_equal(state, before)


def test_uniform_pool_skips_infinite_scores() -> None:
    """As ``SlatePolicy``: top-k pools keep ``+inf``, the uniform pool only finite scores."""
    for mode, want in (("greedy", 1), ("uniform", 5)):
        w = small(mode=mode, slots=6)
        w.plc[1][2] = np.inf
        got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 9)
        assert got.counts[D.C_POOL] == (6 if mode == "greedy" else want)
        assert (2 in got.idx) == (mode == "greedy")


def test_softmax_and_epsilon_propensities() -> None:
    """First-slot propensities are the closed-form probabilities of the policy."""
    for mode in ("softmax", "epsilon"):
        w = small(mode=mode, slots=1)
        w.params[D.P_POOL] = 6
        extra = [0.3, 0.1, 0.25, 0.0, 0.05, 0.2]
        w.plc[1][:] = extra
        got = check_twin(w, 0, NOW, True, NO_FVS, NO_W, 10)
        order = sorted(range(6), key=lambda i: (-extra[i], i))
        p = ref.first_slot_probabilities([0.3, 0.25, 0.2, 0.1, 0.05, 0.0], int(w.params[D.P_MODE]), w.params[D.P_PARAM])
        assert got.prop[0] == pytest.approx(p[order.index(got.idx[0])], rel=1e-12)


# --------------------------------------------------------------------------- read path


def read(w: World, row: int, now: int, personalized: bool, k: int, work: tuple[np.ndarray, ...] | None = None) -> Result:
    work = D.new_read_work(w.n, w.prof[0].shape[1]) if work is None else work
    out = D.new_out(max(k, 1))
    counts = np.zeros(D.N_COUNTS, np.int64)
    m = D.recommend_one(w.prof, row, now, int(personalized), w.hl, w.cat, w.acc, w.plc, w.params, k, work, out, counts)
    live = list(zip(work[3][: counts[D.C_LIVE]].tolist(), work[4][: counts[D.C_LIVE]].tolist()))
    return Result(m, out[0][:m].tolist(), out[1][:m].tolist(), out[2][:m].tolist(), counts.tolist(), live)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("row", [0, 3, 5, -1])  # 5: empty profile; -1: unknown person
@pytest.mark.parametrize("k", [0, 1, 4, 1000])
@pytest.mark.parametrize("personalized", [True, False])
def test_recommend_one_matches_twin_and_writes_nothing(seed: int, row: int, k: int, personalized: bool) -> None:
    w = world(seed)
    w.plc[1][7] = np.nan
    before = w.clone()
    got = read(w, row, NOW, personalized, k)
    assert_same_state(w, before)
    want = ref.recommend_one_ref(w.prof, row, NOW, personalized, w.hl, w.cat, w.acc, w.plc, w.params, k)
    assert got.idx == want["idx"] and got.prop == [1.0] * got.n
    np.testing.assert_allclose(got.score, want["score"], rtol=1e-12, atol=1e-12)
    assert got.counts == [got.n, want["candidates"], len(want["live"]), got.n]  # type: ignore[arg-type]
    assert 7 not in got.idx


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recommend_one_is_the_greedy_decision(seed: int) -> None:
    """The read path scores exactly as the decide path: a greedy decision without an update
    shows the same items with the same scores, bit for bit."""
    w = world(seed)
    w.set_policy(POLICIES["greedy"], 5)
    for row in range(w.prof[0].shape[0]):
        r = read(w, row, NOW, True, 5)
        d = run_kernel(w, row, NOW, True, NO_FVS, NO_W, seed_state(0))
        assert (r.idx, r.score, r.counts[:3]) == (d.idx, d.score, d.counts[:3])


@pytest.mark.parametrize("b", [0, 1, 5, size(150, 70)])  # 150: split over the threads
def test_recommend_batch_equals_serial_calls(b: int) -> None:
    w = world(9)
    rng = np.random.default_rng(b)
    rows = rng.integers(-1, w.prof[0].shape[0], b).astype(np.int64)
    nows = (NOW + rng.integers(-5000, 90_000, b)).astype(np.int64)
    pers = (rng.random(b) < 0.7).astype(np.uint8)
    k = 6
    before = w.clone()
    out = (np.full((b, k), -7, np.int64), np.full((b, k), np.nan), np.full((b, k), np.nan))
    counts = np.full((b, D.N_COUNTS), -7, np.int64)
    D.recommend_batch(w.prof, rows, nows, pers, w.hl, w.cat, w.acc, w.plc, w.params, k, out, counts)
    assert_same_state(w, before)
    for j in range(b):
        r = read(w, int(rows[j]), int(nows[j]), bool(pers[j]), k)
        assert counts[j].tolist() == r.counts
        assert out[0][j, : r.n].tolist() == r.idx and out[1][j, : r.n].tolist() == r.score
        assert out[2][j, : r.n].tolist() == r.prop


def test_phase_kernels_alone() -> None:
    """``score_row`` and ``select_pool`` alone (the phases both paths call)."""
    w = world(4)
    work = D.new_work(w.n, w.prof[0].shape[1])
    counts = np.zeros(D.N_COUNTS, np.int64)
    w.plc[1][5] = np.nan  # a NaN score stays NaN in ``scores`` and is no candidate
    n_live = score_row(w.prof, 2, NOW, 1, w.hl, w.cat, w.acc, w.plc, w.params, work, counts)
    scores, want_kept, live = ref._row_scores(w.prof, 2, NOW, True, w.hl, w.cat, w.acc, w.plc[0], w.plc[1], w.params)
    assert n_live == counts[D.C_LIVE] == len(live)
    assert np.isnan(work[0][5]) and scores[5] == -math.inf
    np.testing.assert_allclose(np.where(np.isnan(work[0]), -math.inf, work[0]), scores, rtol=1e-12, atol=1e-12)
    for mode, k in ((D.MODE_GREEDY, 9), (D.MODE_UNIFORM, 0), (D.MODE_GREEDY, 0)):
        counts[D.C_CANDIDATES] = -1
        m = select_pool(work[0], mode, k, work[1], work[2], work[6], counts)
        assert counts[D.C_CANDIDATES] == want_kept
        want = ref.top_k(scores, k) if mode == D.MODE_GREEDY else [i for i, s in enumerate(scores) if math.isfinite(s)]
        assert work[1][:m].tolist() == want
        assert np.array_equal(work[2][:m], work[0][work[1][:m]])


def _scores_in(order: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Scores with ties, NaN and ``-inf``, laid out to help or mislead a strided sample."""
    s = np.round(rng.normal(size=n), 2)  # rounded: many ties
    s[rng.random(n) < 0.05] = -math.inf
    s[rng.random(n) < 0.01] = np.nan
    if order == "ascending":
        s.sort()
    elif order == "descending":
        s[::-1].sort()
    elif order == "sample-high":  # every strided position high, the rest low: the sample misleads
        s[:] = -1.0
        s[:: 7] = 5.0
        s[:: 5] = 5.0
    elif order == "equal":
        s[:] = 0.5
    return s


@pytest.mark.parametrize("order", ["random", "ascending", "descending", "sample-high", "equal"])
@pytest.mark.parametrize("n", [5_000, 10_000, 20_001])
def test_pool_of_a_large_catalog_equals_its_twin(order: str, n: int) -> None:
    """The sampled-threshold top-k (catalogs of thousands) gives exactly the full heap's pool
    and candidate count, whatever the sample sees."""
    rng = np.random.default_rng(n)
    scores = _scores_in(order, n, rng)
    pool, pool_scores, cand = np.empty(n, np.int64), np.empty(n), np.empty(n, np.int64)
    counts = np.zeros(D.N_COUNTS, np.int64)
    want_kept = int(np.sum(~np.isnan(scores) & (scores != -math.inf)))
    for k in (0, 1, 4, 50, 200, n):
        m = select_pool(scores, D.MODE_GREEDY, k, pool, pool_scores, cand, counts)
        assert pool[:m].tolist() == ref.top_k(scores.tolist(), k), (order, n, k)
        assert counts[D.C_CANDIDATES] == want_kept
