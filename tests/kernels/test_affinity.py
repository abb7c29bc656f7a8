"""``_kernels/affinity.py``: decayed affinity rows and the CSC item scorer, against their twins."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

import reference as ref
from decisioner._kernels import affinity as A

from ._helpers import size

H = 1_000.0  # a half-life (ms) for hand-made cases


class Rows:
    """Profile arrays in the store's dtypes, plus an independent copy driven by the twins."""

    def __init__(self, n_rows: int, k: int, hl: Sequence[float]) -> None:
        self.fid = np.full((n_rows, k), -1, np.int32)
        self.score = np.zeros((n_rows, k), np.float32)
        self.t = np.zeros(n_rows, np.int64)
        self.hl = np.array(hl, dtype=np.float64)
        self.twin = (self.fid.copy(), self.score.copy(), self.t.copy())

    def update(self, r: int, fvs: Sequence[int], weights: Sequence[float], now: int) -> None:
        A.affinity_update(self.fid, self.score, self.t, r, np.array(fvs, np.int32),
                          np.array(weights, np.float64), now, self.hl)
        ref.affinity_update(*self.twin, r, fvs, weights, now, self.hl)
        self.check()

    def merge(self, dst: int, src: int) -> None:
        A.affinity_merge(self.fid, self.score, self.t, dst, src, self.hl)
        ref.affinity_merge(*self.twin, dst, src, self.hl)
        self.check()

    def read(self, r: int, now: int) -> list[tuple[int, float]]:
        k = self.fid.shape[1]
        out_f = np.full(k, -7, np.int32)
        out_s = np.full(k, np.nan)
        before = (self.fid.copy(), self.score.copy(), self.t.copy())
        n = A.affinity_read(self.fid, self.score, self.t, r, now, self.hl, out_f, out_s)
        for a, b in zip(before, (self.fid, self.score, self.t)):
            assert np.array_equal(a, b)  # reading changes nothing
        got = list(zip(out_f[:n].tolist(), out_s[:n].tolist()))
        want = ref.affinity_read(self.fid, self.score, self.t, r, now, self.hl)
        assert [f for f, _ in got] == [f for f, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-14, atol=0.0)
        return got

    def row(self, r: int) -> dict[int, float]:
        return {int(f): float(s) for f, s in zip(self.fid[r], self.score[r]) if f >= 0}

    def check(self) -> None:
        """Same slots and times as the twin, scores within one float32 ulp; then the twin is
        re-synced so each later step starts from identical state (no cascading drift).

        Why not bit-exact: compiled ``math.pow(2.0, x)`` differs from CPython's in the last
        float64 bit for about a third of exponents (measured), which can, rarely, flip a
        float32 rounding.
        """
        fid, score, t = self.twin
        assert np.array_equal(self.fid, fid)
        np.testing.assert_array_max_ulp(self.score, score, maxulp=1)
        assert np.array_equal(self.t, t)
        score[...] = self.score
        assert (self.score[self.fid < 0] == 0.0).all()
        assert (self.score[self.fid >= 0] > ref.MIN_SCORE).all()
        for r in range(self.fid.shape[0]):
            live = self.fid[r][self.fid[r] >= 0]
            assert len(set(live.tolist())) == live.shape[0]  # a value holds at most one slot


def f32(x: float) -> float:
    return float(np.float32(x))


def test_min_score_is_the_documented_constant() -> None:
    assert A.MIN_SCORE == ref.MIN_SCORE


# --------------------------------------------------------------------------- update


def test_empty_event_only_decays_the_row() -> None:
    p = Rows(1, 3, [H] * 4)
    p.update(0, [1, 2], [1.0, 4.0], 5_000)
    p.update(0, [], [], 7_000)  # two half-lives later
    assert p.row(0) == {1: 0.25, 2: 1.0}
    assert p.t[0] == 7_000


def test_first_event_at_time_zero_and_same_time_events() -> None:
    p = Rows(1, 3, [H] * 4)
    p.update(0, [1], [1.0], 0)
    p.update(0, [1], [1.0], 0)
    assert p.row(0) == {1: 2.0}


def test_duplicate_values_in_one_event_are_summed() -> None:
    p = Rows(1, 3, [H] * 4)
    p.update(0, [3, 3, 1, 3], [1.0, 0.5, 2.0, 0.25], 10)
    assert p.row(0) == {3: 1.75, 1: 2.0}
    assert p.fid[0].tolist() == [3, 1, -1]


def test_eviction_when_slots_are_full() -> None:
    p = Rows(1, 3, [1e12] * 8)
    p.update(0, [0, 1, 2], [1.0, 2.0, 3.0], 10)
    p.update(0, [3], [1.5], 11)  # replaces the least valuable (0: 1.0)
    assert p.fid[0].tolist() == [3, 1, 2]
    p.update(0, [4], [0.5], 12)  # worth less than every slot: dropped
    assert p.fid[0].tolist() == [3, 1, 2]
    p.update(0, [5], [1.5], 13)  # ties the least valuable: not strictly better, dropped
    assert p.fid[0].tolist() == [3, 1, 2]


def test_eviction_ties_replace_the_first_least_valuable_slot() -> None:
    p = Rows(1, 4, [1e12] * 8)
    p.update(0, [0, 1, 2, 3], [2.0, 1.0, 3.0, 1.0], 10)
    p.update(0, [4], [5.0], 10)
    assert p.fid[0].tolist() == [0, 4, 2, 3]
    p.update(0, [5], [5.0], 10)
    assert p.fid[0].tolist() == [0, 4, 2, 5]


def test_negative_weight_frees_a_slot_that_the_next_value_reuses() -> None:
    p = Rows(1, 3, [1e12] * 8)
    p.update(0, [0, 1, 2], [1.0, 2.0, 3.0], 10)
    p.update(0, [1], [-2.0], 11)  # a return cancels the interest
    assert p.fid[0].tolist() == [0, -1, 2]
    p.update(0, [1], [-1.0], 12)  # nothing left to lower, and no negative interest
    assert p.fid[0].tolist() == [0, -1, 2]
    p.update(0, [7], [0.1], 13)  # the freed slot, not an eviction
    assert p.fid[0].tolist() == [0, 7, 2]
    p.update(0, [2], [-0.5], 14)
    assert p.row(0)[2] == 2.5


def test_weights_at_or_below_min_score_never_create_a_slot() -> None:
    p = Rows(1, 2, [H] * 3)
    p.update(0, [0, 1, 2], [1e-6, 5e-7, 0.0], 10)
    assert p.row(0) == {}
    p.update(0, [0], [2e-6], 10)
    assert p.row(0) == {0: f32(2e-6)}


def test_decay_frees_slots_that_fall_to_min_score() -> None:
    p = Rows(1, 3, [H, 100 * H, H])
    p.update(0, [0, 1, 2], [1.0, 1.0, 1e-3], 1_000)
    p.update(0, [], [], 1_000 + 10 * 1_000)  # 2**-10 ~ 1e-3: value 2 falls below 1e-6
    assert 2 not in p.row(0) and 0 in p.row(0)
    p.update(0, [], [], 1_000 + 30 * 1_000)
    assert p.row(0).keys() == {1}


def test_older_event_adds_its_weight_decayed_to_the_row_time() -> None:
    p = Rows(1, 3, [H] * 3)
    p.update(0, [0], [1.0], 10_000)
    p.update(0, [0, 1], [2.0, 8.0], 8_000)  # two half-lives before the row's time
    assert p.t[0] == 10_000
    assert p.row(0) == {0: 1.5, 1: 2.0}
    p.update(0, [1], [-4.0], 9_000)  # an old return lowers by its decayed amount
    assert p.row(0) == {0: 1.5}
    assert p.fid[0].tolist() == [0, -1, -1]


def test_arrival_order_does_not_matter_without_eviction(make_rng) -> None:  # type: ignore[no-untyped-def]
    g = make_rng()
    hl = g.uniform(2_000.0, 5_000.0, size=6)  # slow enough that nothing decays to MIN_SCORE
    events = [(int(g.integers(0, 6)), float(g.uniform(0.1, 2.0)), int(g.integers(1, 20_000))) for _ in range(40)]
    in_order = Rows(1, 6, hl)
    for f, w, t in sorted(events, key=lambda e: e[2]):
        in_order.update(0, [f], [w], t)
    shuffled = Rows(1, 6, hl)
    for f, w, t in events:
        shuffled.update(0, [f], [w], t)
    a = dict(in_order.read(0, 25_000))
    b = dict(shuffled.read(0, 25_000))
    assert a.keys() == b.keys()
    for f in a:  # float32 storage rounds at different points along the two paths
        assert a[f] == pytest.approx(b[f], rel=1e-5)
    # and both equal the closed form sum_j w_j 2**(-(T - t_j)/h_f)
    for f in a:
        exact = sum(w * 2.0 ** (-(25_000 - t) / hl[f]) for ff, w, t in events if ff == f)
        assert a[f] == pytest.approx(exact, rel=1e-5)


def test_decay_product_is_float64_with_the_jit_off() -> None:
    """Regression: run as Python under NumPy 2, ``float32 * math.pow(...)`` was computed in
    float32 and stored 0.54886794 instead of the compiled kernels' 0.548868."""
    s0, dt, h = np.float32(0.5503784), 3, 756.6899017869497
    p = Rows(1, 2, [h])
    p.fid[0, 0] = 0
    p.score[0, 0] = s0
    p.t[0] = 1_000
    p.twin = (p.fid.copy(), p.score.copy(), p.t.copy())
    p.update(0, [], [], 1_000 + dt)
    assert p.score[0, 0] == np.float32(float(s0) * math.pow(2.0, -dt / h)) == np.float32(0.548868)


def test_rows_with_no_slots() -> None:
    """Regression: with K = 0, ``_add`` compared (and could overwrite) ``score[r, -1]``, out of
    the row (IndexError with the JIT off, an out-of-bounds write compiled)."""
    p = Rows(3, 0, [H] * 2)
    p.update(1, [0, 1], [1.0, 2.0], 10)
    p.update(1, [0], [1.0], 5)
    p.merge(0, 1)
    assert p.read(0, 20) == []
    assert p.t.tolist() == [10, 0, 0]


# --------------------------------------------------------------------------- read


def test_read_sorts_by_score_then_value_and_changes_nothing() -> None:
    p = Rows(1, 5, [H, H, H, H, 2 * H, H])
    p.update(0, [5, 2, 4, 0], [1.0, 4.0, 1.0, 1.0], 1_000)
    assert p.read(0, 1_000) == [(2, 4.0), (0, 1.0), (4, 1.0), (5, 1.0)]
    assert p.read(0, 2_000) == [(2, 2.0), (4, 2.0**-0.5), (0, 0.5), (5, 0.5)]


def test_read_before_the_row_time_does_not_grow_scores() -> None:
    p = Rows(1, 2, [H])
    p.update(0, [0], [1.0], 5_000)
    assert p.read(0, 1_000) == [(0, 1.0)]


def test_read_hides_slots_decayed_below_min_score() -> None:
    p = Rows(2, 2, [H, H])
    p.update(0, [0, 1], [1.0, 1e-4], 0)
    assert [f for f, _ in p.read(0, 10 * 1_000)] == [0]  # 1e-4 * 2**-10 < 1e-6
    assert p.read(1, 0) == []


# --------------------------------------------------------------------------- merge


def test_merge_of_two_full_rows_keeps_the_top_k_of_summed_scores() -> None:
    """Regression: merging slot by slot let ``src``'s first value evict a ``dst`` value that a
    later ``src`` slot would have raised into the top K (dst {A:1, B:1.5} + src {C:2, A:1}
    gave {C:2, B:1.5} instead of {A:2, C:2})."""
    p = Rows(2, 2, [1e12] * 3)
    p.update(0, [0, 1], [1.0, 1.5], 10)
    p.update(1, [2, 0], [2.0, 1.0], 10)
    p.merge(0, 1)
    assert p.row(0) == {0: 2.0, 2: 2.0}
    assert p.row(1) == {} and p.t[1] == 0


def test_merge_decays_both_rows_to_the_later_time() -> None:
    for dst_t, src_t in ((1_000, 3_000), (3_000, 1_000)):
        p = Rows(2, 3, [H] * 3)
        p.update(0, [0, 1], [4.0, 1.0], dst_t)
        p.update(1, [0, 2], [4.0, 8.0], src_t)
        p.merge(0, 1)
        assert p.t.tolist() == [3_000, 0]
        want = {0: 4.0 + 1.0, 1: 0.25 if dst_t < src_t else 1.0, 2: 8.0 if dst_t < src_t else 2.0}
        assert p.row(0) == want


@pytest.mark.parametrize(("dst_events", "src_events"), [([], [(0, 1.0)]), ([(0, 1.0)], []), ([], [])])
def test_merge_with_empty_rows(dst_events: list[tuple[int, float]], src_events: list[tuple[int, float]]) -> None:
    p = Rows(2, 2, [H])
    for f, w in dst_events:
        p.update(0, [f], [w], 100)
    for f, w in src_events:
        p.update(1, [f], [w], 100)
    p.merge(0, 1)
    assert p.row(0) == ({0: 1.0} if dst_events or src_events else {})
    assert p.row(1) == {}


@pytest.mark.parametrize("stream", range(5))
def test_merge_contract_on_random_full_rows(make_rng, stream: int) -> None:  # type: ignore[no-untyped-def]
    """Merged row == top K of the summed (decayed) scores, whenever the K-th and (K+1)-th
    summed scores differ (otherwise either choice is right)."""
    g = make_rng(stream)
    k, n_fv = 6, 12
    checked = 0
    for _ in range(size(200, 40)):
        p = Rows(2, k, [1e15] * n_fv)
        for r in (0, 1):
            fvs = g.choice(n_fv, size=k, replace=False).tolist()
            p.update(r, fvs, g.uniform(0.5, 3.0, size=k).tolist(), 10)
        a, b = p.row(0), p.row(1)
        p.merge(0, 1)
        total = sorted(ref.merged_top_k(a, b, 2 * k).values(), reverse=True)
        if len(total) > k and total[k - 1] == total[k]:
            continue
        assert p.row(0) == {f: f32(s) for f, s in ref.merged_top_k(a, b, k).items()}
        checked += 1
    assert checked > 0


# --------------------------------------------------------------------------- seeded random


@pytest.mark.parametrize(("stream", "k"), [(0, 1), (1, 3), (2, 8), (3, 16)])
def test_random_event_streams_match_twin(make_rng, stream: int, k: int) -> None:  # type: ignore[no-untyped-def]
    """Thousands of operations on a few rows: updates with repeated values, returns, tiny and
    zero weights, events older than the row, merges and reads; bit-exact after every step."""
    g = make_rng(stream)
    n_rows, n_fv = 12, 3 * k + 5
    p = Rows(n_rows, k, g.uniform(50.0, 5_000.0, size=n_fv))
    clock = 10_000
    for _ in range(size(3000, 300)):
        op = g.random()
        r = int(g.integers(0, n_rows))
        if op < 0.75:
            m = int(g.integers(0, 5))
            fvs = g.integers(0, n_fv, size=m).tolist()
            w = g.choice([-2.0, -0.5, 1e-7, 0.0, 0.2, 1.0, 1.0, 3.0], size=m) * g.uniform(0.5, 1.5, size=m)
            clock += int(g.integers(0, 400))
            now = clock - int(g.integers(0, 3_000)) if g.random() < 0.2 else clock
            p.update(r, fvs, w.tolist(), now)
        elif op < 0.85:
            src = int(g.integers(0, n_rows))
            if src != r:
                p.merge(r, src)
        else:
            p.read(r, clock + int(g.integers(-500, 2_000)))


# --------------------------------------------------------------------------- score_items


def csc(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense items x facet-values matrix -> (fv_indptr int64, fv_items int32, fv_data float32)."""
    indptr, items, data = [0], [], []
    for f in range(x.shape[1]):
        nz = np.flatnonzero(x[:, f])
        items += nz.tolist()
        data += x[nz, f].tolist()
        indptr.append(len(items))
    return np.array(indptr, np.int64), np.array(items, np.int32), np.array(data, np.float32)


def run_score(
    indptr: np.ndarray, items: np.ndarray, data: np.ndarray, prof_fid: Sequence[int], prof_score: Sequence[float],
    aw: float, prior: np.ndarray, pw: float, extra: np.ndarray, eligible: np.ndarray, excluded: Sequence[int],
    n_prof: int | None = None,
) -> tuple[np.ndarray, int]:
    pf = np.array(prof_fid, np.int32)
    ps = np.array(prof_score, np.float64)
    n_prof = pf.shape[0] if n_prof is None else n_prof
    ex = np.array(excluded, np.int32)
    out = np.full(prior.shape[0], 12345.0)
    got_n = A.score_items(indptr, items, data, pf, ps, n_prof, aw, prior, pw, extra, eligible, ex, out)
    want, want_n = ref.score_items(indptr, items, data, pf, ps, n_prof, aw, prior, pw, extra, eligible, ex)
    assert out.tolist() == want  # same additions in the same order: bit-exact
    assert got_n == want_n == int((out != -np.inf).sum())
    assert not np.isnan(out).any()
    return out, got_n


def test_score_no_items() -> None:
    e = np.empty(0)
    out, n = run_score(np.array([0, 0], np.int64), np.empty(0, np.int32), np.empty(0, np.float32), [0], [1.0],
                       1.0, e, 1.0, e, np.empty(0, np.uint8), [])
    assert n == 0 and out.shape == (0,)


def test_score_without_profile_is_prior_plus_extra() -> None:
    x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    prior = np.array([0.5, 1.0, 0.0])
    extra = np.array([0.0, -1.0, 2.0])
    out, n = run_score(*csc(x), [], [], 1.0, prior, 2.0, extra, np.ones(3, np.uint8), [])
    assert out.tolist() == [1.0, 1.0, 2.0] and n == 3


def test_score_filters_exclusions_and_nan() -> None:
    x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0], [3.0, 0.0]])
    prior = np.array([0.0, np.nan, 0.0, 1.0, 0.0])
    extra = np.array([0.0, 0.0, np.inf, 0.0, 0.0])
    eligible = np.array([1, 1, 1, 0, 1], np.uint8)
    out, n = run_score(*csc(x), [0, 1], [0.5, 0.25], 2.0, prior, 1.0, extra, eligible, [4, -1, 4, -3])
    assert out.tolist() == [1.0, -np.inf, np.inf, -np.inf, -np.inf]
    assert n == 2  # counts every score that is not -inf (+inf included)


def test_score_zero_weight_skips_postings_so_inf_data_gives_no_nan() -> None:
    x = np.array([[np.inf, 1.0], [0.0, 1.0]])
    out, n = run_score(*csc(x), [0, 1], [0.0, 1.0], 1.0, np.zeros(2), 0.0, np.zeros(2), np.ones(2, np.uint8), [])
    assert out.tolist() == [1.0, 1.0] and n == 2
    out, n = run_score(*csc(x), [0], [1.0], 1.0, np.zeros(2), 0.0, np.zeros(2), np.array([0, 1], np.uint8), [])
    assert out.tolist() == [-np.inf, 0.0] and n == 1  # ineligible -inf + inf is NaN, reported -inf


def test_score_duplicate_profile_values_and_postings_add_up() -> None:
    items = np.array([0, 1, 0], np.int32)  # item 0 twice in value 0's posting list
    data = np.array([1.0, 2.0, 0.5], np.float32)
    indptr = np.array([0, 3, 3], np.int64)
    out, _ = run_score(indptr, items, data, [0, 0], [1.0, 2.0], 1.0, np.zeros(2), 0.0, np.zeros(2),
                       np.ones(2, np.uint8), [])
    assert out.tolist() == [4.5, 6.0]


def test_score_reads_only_the_first_n_prof_values() -> None:
    x = np.eye(3)
    out, _ = run_score(*csc(x), [0, 1, 2], [1.0, 1.0, 1.0], 1.0, np.zeros(3), 0.0, np.zeros(3),
                       np.ones(3, np.uint8), [], n_prof=2)
    assert out.tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("stream", range(4))
def test_score_random_catalogs(make_rng, stream: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(stream)
    n, n_fv = size(3000, 300), 60
    x = np.where(g.random((n, n_fv)) < 0.05, g.uniform(0.1, 2.0, (n, n_fv)), 0.0).astype(np.float32)
    n_prof = int(g.integers(0, 24))
    pf = g.choice(n_fv, size=n_prof, replace=False)
    ps = g.dirichlet(np.ones(n_prof)) if n_prof else np.empty(0)
    prior = g.random(n)
    prior[g.random(n) < 0.01] = np.nan
    extra = np.where(g.random(n) < 0.1, g.normal(size=n), 0.0)
    eligible = (g.random(n) < 0.9).astype(np.uint8)
    excluded = g.integers(-5, n, size=20)
    aw, pw = float(g.uniform(0.5, 2.0)), float(g.uniform(0.0, 1.0))
    out, cnt = run_score(*csc(x), pf.tolist(), ps.tolist(), aw, prior, pw, extra, eligible, excluded.tolist())
    # independent dense check: a matrix product, then the same masks
    dense = pw * prior + extra + aw * (x[:, pf].astype(np.float64) @ ps if n_prof else 0.0)
    dense[(eligible == 0) | np.isnan(dense)] = -np.inf
    dense[excluded[excluded >= 0]] = -np.inf
    np.testing.assert_allclose(out, dense, rtol=1e-12, atol=1e-12)
    assert cnt == int(np.isfinite(dense).sum())
