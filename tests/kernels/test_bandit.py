"""``_kernels/bandit.py``: rank probabilities (Thompson propensities) against a quadrature twin
and Monte Carlo, the selection kernels and slate exploration against their twins (same
splitmix64 stream), plus propensity-vs-frequency statistics."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from decisioner._kernels import bandit as B
from decisioner._kernels.rng import seed_state

from ._helpers import Z, binomial_se, size

MODES = {"greedy": B.MODE_GREEDY, "epsilon": B.MODE_EPSILON, "softmax": B.MODE_SOFTMAX, "uniform": B.MODE_UNIFORM}


def test_mode_codes_match_the_twin() -> None:
    assert (B.MODE_GREEDY, B.MODE_EPSILON, B.MODE_SOFTMAX, B.MODE_UNIFORM, B.MODE_UCB1) == (
        ref.MODE_GREEDY, ref.MODE_EPSILON, ref.MODE_SOFTMAX, ref.MODE_UNIFORM, ref.MODE_UCB1)
    assert (B.FAMILY_BETA, B.FAMILY_NORMAL) == (ref.FAMILY_BETA, ref.FAMILY_NORMAL)


# --------------------------------------------------------------------------- rank_probabilities


def ranks(family: int, p1: Sequence[float], p2: Sequence[float], eligible: Sequence[int] | None = None,
          k: int = 1, tol: float = 1e-4) -> tuple[np.ndarray, float]:
    n = len(p1)
    el = np.ones(n, np.uint8) if eligible is None else np.array(eligible, np.uint8)
    out = np.full((n, k), -7.0)
    err = B.rank_probabilities(family, np.array(p1, np.float64), np.array(p2, np.float64), el, k, 12.0, 48,
                               16_384, tol, out)
    return out, err


def test_rank_probabilities_no_eligible_and_single_arm() -> None:
    out, err = ranks(B.FAMILY_BETA, [2.0, 3.0], [5.0, 1.0], [0, 0])
    assert out.tolist() == [[0.0], [0.0]] and err == 0.0
    out, err = ranks(B.FAMILY_BETA, [2.0, 3.0, 1.0], [5.0, 1.0, 1.0], [0, 1, 0], k=2)
    assert out.tolist() == [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]] and err == 0.0
    out, _ = ranks(B.FAMILY_NORMAL, [], [])
    assert out.shape == (0, 1)


def test_identical_posteriors_are_uniform() -> None:
    """Symmetry: n identical posteriors give 1/n at every rank (also with many arms, where
    the region of the maximum is narrow)."""
    for n, (a, b) in ((2, (1.0, 1.0)), (5, (3.0, 40.0)), (200, (1.0, 1.0)), (50, (2000.0, 98000.0))):
        out, _ = ranks(B.FAMILY_BETA, [a] * n, [b] * n, k=min(3, n))
        assert np.allclose(out, 1.0 / n, rtol=2e-4, atol=0), (n, a, b, out[:3])


@pytest.mark.parametrize("case", [
    (B.FAMILY_BETA, [3.0, 5.0, 2.0], [20.0, 30.0, 10.0]),
    (B.FAMILY_BETA, [101.0, 1001.0, 11.0], [1000.0, 9000.0, 90.0]),  # mixed widths
    (B.FAMILY_BETA, [0.5, 2.0, 1.0], [0.5, 3.0, 4.0]),  # singular densities
    (B.FAMILY_BETA, [1001.0, 1011.0, 3.0], [9001.0, 8991.0, 19.0]),  # two narrow close + one wide
    (B.FAMILY_NORMAL, [0.0, 0.1, -0.3, 0.05], [1.0, 0.2, 2.0, 0.01]),
    (B.FAMILY_NORMAL, [5.0, 5.0], [1.0, 1e-3]),
], ids=["beta", "beta-mixed", "beta-singular", "beta-narrow", "normal", "normal-narrow"])
def test_rank_probabilities_match_quadrature_twin(case: tuple[int, list[float], list[float]]) -> None:
    """With ``tol`` = 1e-6 the kernel agrees with adaptive quadrature to 1e-5 absolute; with the
    policies' default 1e-4, to 1e-4 (the estimate bounds the actual error in both)."""
    family, p1, p2 = case
    want = ref.rank_probabilities(family, p1, p2, [1] * len(p1), 2)
    for tol, bound in ((1e-6, 1e-5), (1e-4, 1e-4)):
        out, err = ranks(family, p1, p2, k=2, tol=tol)
        assert np.abs(out - want).max() <= bound, (tol, out, want)
        assert np.abs(out - want).max() <= max(err, 1e-12) * 10
        assert np.allclose(out.sum(axis=0), 1.0, atol=bound)


@pytest.mark.parametrize("stream", range(3))
def test_rank_probabilities_random_match_twin(make_rng, stream: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(stream)
    for _ in range(size(6, 2)):
        n = int(g.integers(2, 5))
        trials = g.integers(0, 400, size=n).astype(float)
        a = 1.0 + np.floor(trials * g.uniform(0.01, 0.3, size=n))
        b = 1.0 + trials - (a - 1.0)
        el = (g.random(n) < 0.85).astype(int)
        out, _ = ranks(B.FAMILY_BETA, a.tolist(), b.tolist(), el.tolist(), k=2, tol=1e-6)
        want = ref.rank_probabilities(B.FAMILY_BETA, a.tolist(), b.tolist(), el.tolist(), 2)
        assert np.abs(out - want).max() <= 1e-5, (a, b, el, out, want)
        assert (out[el == 0] == 0).all()


def test_rank_probabilities_prune_hopeless_arms() -> None:
    """An arm 30 standard deviations below the others gets exactly 0 and costs nothing."""
    out, _ = ranks(B.FAMILY_NORMAL, [0.0, 0.1, -30.0], [1.0, 1.0, 0.5])
    assert out[2, 0] == 0.0 and abs(out[:2, 0].sum() - 1.0) < 1e-6


def test_rank_probabilities_against_monte_carlo_with_many_arms(seed: int) -> None:
    """60 overlapping Beta posteriors: the top-3 rank probabilities agree with 200k seeded
    NumPy draws within Z binomial standard errors."""
    g = np.random.default_rng(seed)
    n, draws = 60, 200_000
    trials = g.integers(20, 300, size=n).astype(float)
    a = 1.0 + np.floor(trials * g.uniform(0.02, 0.08, size=n))
    b = 1.0 + trials - (a - 1.0)
    out, err = ranks(B.FAMILY_BETA, a.tolist(), b.tolist(), k=3)
    x = g.beta(a, b, size=(draws, n))
    order = np.argsort(-x, axis=1)[:, :3]
    for r in range(3):
        freq = np.bincount(order[:, r], minlength=n) / draws
        se = np.sqrt(out[:, r] * (1 - out[:, r]) / draws) + 1e-12
        assert (np.abs(freq - out[:, r]) <= Z * se + 1e-4).all(), r
    assert err < 1e-3


# --------------------------------------------------------------------------- selection kernels


def test_categorical_select_matches_twin_and_skips_zero_weights(seed: int) -> None:
    st_ = seed_state(seed)
    cum = np.cumsum([0.0, 0.2, 0.0, 0.5, 0.3])
    seen = set()
    for _ in range(size(400, 100)):
        twin = ref.SplitMix64(st_)
        i = B.categorical_select(cum, st_)
        assert i == ref.categorical_select(cum.tolist(), twin) and int(st_[0]) == twin.state
        seen.add(i)
    assert seen == {1, 3, 4}
    assert B.categorical_select(np.array([1.0]), st_) == 0


@pytest.mark.parametrize("family", [B.FAMILY_BETA, B.FAMILY_NORMAL])
def test_posterior_top_k_matches_twin(make_rng, family: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(family, 5)
    st_ = seed_state(family, 5)
    for _ in range(size(200, 30)):
        n = int(g.integers(0, 9))
        p1 = g.uniform(0.5, 20.0, n)
        p2 = g.uniform(0.5, 20.0, n)
        el = (g.random(n) < 0.8).astype(np.uint8)
        k = int(g.integers(1, 5))
        twin = ref.SplitMix64(st_)
        out = np.full(k, -1, np.int64)
        m = B.posterior_top_k(family, p1, p2, el, st_, out)
        assert out[:m].tolist() == ref.posterior_top_k(family, p1.tolist(), p2.tolist(), el.tolist(), twin, k)
        assert int(st_[0]) == twin.state and m == min(k, int(el.sum()))


@pytest.mark.parametrize("mode", [B.MODE_GREEDY, B.MODE_EPSILON, B.MODE_SOFTMAX, B.MODE_UNIFORM, B.MODE_UCB1])
def test_arm_select_matches_twin(make_rng, mode: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(mode, 9)
    st_ = seed_state(mode, 9)
    for _ in range(size(300, 50)):
        n = int(g.integers(0, 7))
        means = np.round(g.random(n), 1)  # ties on purpose
        counts = g.integers(0, 4, n).astype(float)
        el = (g.random(n) < 0.8).astype(np.uint8)
        param = float(g.uniform(0.05, 1.0))
        twin = ref.SplitMix64(st_)
        got = B.arm_select(mode, param, means, counts, el, st_)
        want = ref.arm_select(mode, param, means.tolist(), counts.tolist(), el.tolist(), twin)
        assert got[0] == want[0] and got[1] == pytest.approx(want[1], rel=1e-12)
        assert int(st_[0]) == twin.state
        if got[0] >= 0:
            assert el[got[0]] == 1 and 0.0 < got[1] <= 1.0


@pytest.mark.parametrize(("discount", "window"), [(1.0, 0), (0.9, 0), (1.0, 5), (1.0, 1)])
def test_arm_stats_update_matches_twin(make_rng, discount: float, window: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(int(discount * 100), window)
    n = 4
    c, s, q = np.zeros(n), np.zeros(n), np.zeros(n)
    ring_arm, ring_val, meta = np.zeros(window, np.int64), np.zeros((window, 3)), np.zeros(2, np.int64)
    twin = ref.ArmStatsTwin(n, discount, window)
    for _ in range(size(200, 40)):
        arm = int(g.integers(0, n))
        dn, dr = float(g.integers(0, 2)), float(g.random())
        B.arm_stats_update(c, s, q, arm, dn, dr, dr * dr, discount, ring_arm, ring_val, meta)
        twin.add(arm, dn, dr, dr * dr)
        tc, ts, tq = twin.sums()
        assert np.allclose(c, tc, atol=1e-9) and np.allclose(s, ts, atol=1e-9) and np.allclose(q, tq, atol=1e-9)


# --------------------------------------------------------------------------- rank_slate


def slate(
    scores: Sequence[float], n_slots: int, mode: int, param: float, state: np.ndarray,
    n_pool: int | None = None, items: Sequence[int] | None = None,
) -> tuple[list[int], list[float]]:
    """Kernel and twin on the same stream; asserts identical slates, propensities and state,
    and that the caller's pool is untouched."""
    pool = np.array(range(100, 100 + len(scores)) if items is None else items, np.int64)
    ps = np.array(scores, np.float64)
    n_pool = len(scores) if n_pool is None else n_pool
    pool0, ps0 = pool.copy(), ps.copy()
    twin = ref.SplitMix64(state)
    out_idx = np.full(max(n_slots, 0) + 1, -7, np.int64)
    out_prop = np.full(max(n_slots, 0) + 1, -7.0)
    n = B.rank_slate(pool, ps, n_pool, n_slots, mode, param, state, out_idx, out_prop)
    idx, prop = out_idx[:n].tolist(), out_prop[:n].tolist()
    assert (idx, prop) == ref.rank_slate(pool0.tolist(), ps0.tolist(), n_pool, n_slots, mode, param, twin)
    assert int(state[0]) == twin.state
    assert np.array_equal(pool, pool0) and np.array_equal(ps, ps0)
    assert out_idx[n] == -7 and out_prop[n] == -7.0
    assert n == max(min(n_slots, n_pool), 0)
    assert len(set(idx)) == n and set(idx) <= set(pool0[:n_pool].tolist())
    assert all(0.0 < p <= 1.0 for p in prop)
    return idx, prop


@pytest.mark.parametrize("mode", MODES.values())
def test_slate_empty_pool_or_no_slots(seed: int, mode: int) -> None:
    st_ = seed_state(seed)
    assert slate([], 3, mode, 0.5, st_) == ([], [])
    assert slate([1.0, 0.5], 0, mode, 0.5, st_) == ([], [])
    assert slate([1.0, 0.5], 2, mode, 0.5, st_, n_pool=0) == ([], [])


@pytest.mark.parametrize("mode", MODES.values())
def test_slate_more_slots_than_candidates(seed: int, mode: int) -> None:
    idx, prop = slate([3.0, 2.0, 1.0], 5, mode, 0.5, seed_state(seed))
    assert sorted(idx) == [100, 101, 102]
    assert prop[-1] == 1.0  # the last remaining candidate is certain


@pytest.mark.parametrize("mode", MODES.values())
def test_slate_single_candidate(seed: int, mode: int) -> None:
    assert slate([0.3], 1, mode, 0.5, seed_state(seed)) == ([100], [1.0])


def test_slate_uses_only_the_first_n_pool_candidates(seed: int) -> None:
    idx, _ = slate([5.0, 4.0, 3.0, 2.0, 1.0], 5, B.MODE_UNIFORM, 0.0, seed_state(seed), n_pool=3)
    assert sorted(idx) == [100, 101, 102]


def test_greedy_is_the_pool_order_and_draws_nothing(seed: int) -> None:
    st_ = seed_state(seed)
    before = int(st_[0])
    assert slate([3.0, 3.0, 1.0], 3, B.MODE_GREEDY, 0.0, st_, items=[7, 3, 9]) == ([7, 3, 9], [1.0] * 3)
    assert int(st_[0]) == before


def test_epsilon_zero_is_greedy_and_epsilon_one_is_uniform(seed: int) -> None:
    st_ = seed_state(seed)
    assert slate([3.0, 2.0, 1.0, 0.0], 3, B.MODE_EPSILON, 0.0, st_) == ([100, 101, 102], [1.0, 1.0, 1.0])
    _, prop = slate([3.0, 2.0, 1.0, 0.0], 4, B.MODE_EPSILON, 1.0, st_)
    assert prop == [1 / 4, 1 / 3, 1 / 2, 1.0]


def test_epsilon_propensity_of_the_best_and_of_the_rest(seed: int) -> None:
    st_ = seed_state(seed)
    seen = set()
    for _ in range(200):
        idx, prop = slate([3.0, 2.0, 1.0, 0.0], 1, B.MODE_EPSILON, 0.2, st_)
        want = 0.8 + 0.2 / 4 if idx[0] == 100 else 0.2 / 4
        assert prop[0] == pytest.approx(want, rel=1e-15)
        seen.add(idx[0])
    assert seen == {100, 101, 102, 103}


def test_softmax_equal_scores_are_uniform_and_huge_gaps_are_greedy(seed: int) -> None:
    st_ = seed_state(seed)
    _, prop = slate([1.0, 1.0, 1.0], 3, B.MODE_SOFTMAX, 0.7, st_)
    assert prop == [1 / 3, 1 / 2, 1.0]
    idx, prop = slate([0.0, -800.0, -1600.0], 3, B.MODE_SOFTMAX, 1.0, st_)  # exp underflows to 0
    assert idx == [100, 101, 102] and prop == [1.0, 1.0, 1.0]


def test_softmax_never_picks_a_minus_inf_candidate_while_others_remain(seed: int) -> None:
    st_ = seed_state(seed)
    for _ in range(50):
        idx, _prop = slate([1.0, 0.5, -math.inf], 2, B.MODE_SOFTMAX, 0.5, st_)
        assert 102 not in idx


@pytest.mark.parametrize("mode", [B.MODE_EPSILON, B.MODE_SOFTMAX, B.MODE_UNIFORM])
def test_first_slot_propensity_is_the_closed_form(seed: int, mode: int) -> None:
    scores = [2.0, 1.5, 1.4, 0.0, -3.0]
    p = ref.first_slot_probabilities(scores, mode, 0.3)
    st_ = seed_state(seed)
    for _ in range(100):
        idx, prop = slate(scores, 1, mode, 0.3, st_)
        assert prop[0] == pytest.approx(p[idx[0] - 100], rel=1e-12)


@pytest.mark.parametrize("stream", range(3))
@pytest.mark.parametrize("mode", MODES.values())
def test_random_slates_match_twin(make_rng, stream: int, mode: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(stream, mode)
    st_ = seed_state(stream, mode)
    for _ in range(size(300, 40)):
        m = int(g.integers(0, 40))
        scores = np.sort(np.round(g.normal(size=m) * 3.0, 1))[::-1]  # best first, with ties
        param = float(g.uniform(0.0, 1.0)) if mode == B.MODE_EPSILON else float(g.uniform(0.05, 5.0))
        slate(scores.tolist(), int(g.integers(0, 12)), mode, param, st_, items=g.permutation(m).tolist())


@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
@settings(max_examples=size(60, 25))
@given(
    scores=st.lists(st.floats(-50.0, 50.0), max_size=25).map(lambda s: sorted(s, reverse=True)),
    n_slots=st.integers(0, 30),
    param=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**64 - 1),
)
def test_slate_propensities_equal_reference(
    mode: int, scores: list[float], n_slots: int, param: float, seed: int
) -> None:
    """Any sorted pool, slot count, parameter and stream: the same slate and per-slot
    propensities as the twin, bit for bit."""
    if mode == B.MODE_SOFTMAX:
        param = 0.01 + 10.0 * param  # a temperature, > 0
    slate(scores, n_slots, mode, param, np.array([seed], np.uint64))


# --------------------------------------------------------------------------- statistics

STAT_CASES = {
    "epsilon": (B.MODE_EPSILON, 0.3),
    "softmax": (B.MODE_SOFTMAX, 0.5),
    "uniform": (B.MODE_UNIFORM, 0.0),
}
SCORES = [1.2, 1.0, 0.9, 0.2, -0.5]


def draw_slates(mode: int, param: float, n_slots: int, n: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pool = np.arange(len(SCORES), dtype=np.int64)
    ps = np.array(SCORES)
    idx = np.empty((n, n_slots), np.int64)
    prop = np.empty((n, n_slots))
    for i in range(n):
        B.rank_slate(pool, ps, len(SCORES), n_slots, mode, param, state, idx[i], prop[i])
    return idx, prop


@pytest.mark.slow
@pytest.mark.parametrize("case", STAT_CASES)
def test_first_slot_frequency_matches_propensity(seed: int, case: str) -> None:
    """N = 20k seeded slates: each candidate's empirical frequency in the first slot is within
    Z = 4 binomial standard errors of the propensity the kernel reported for it (which is
    the same on every draw that picked it) and of the closed form."""
    mode, param = STAT_CASES[case]
    n = 20_000
    idx, prop = draw_slates(mode, param, 1, n, seed_state(seed, 7))
    closed = ref.first_slot_probabilities(SCORES, mode, param)
    for c in range(len(SCORES)):
        hit = idx[:, 0] == c
        reported = np.unique(prop[hit, 0])
        assert reported.shape == (1,)
        assert reported[0] == pytest.approx(closed[c], rel=1e-12)
        assert abs(hit.mean() - reported[0]) <= Z * binomial_se(reported[0], n), (c, hit.mean(), reported[0])


@pytest.mark.slow
@pytest.mark.parametrize("case", STAT_CASES)
def test_slate_probability_is_the_product_of_slot_propensities(seed: int, case: str) -> None:
    """Conditional per-slot propensities: the frequency of each ordered pair of the first two
    slots is within Z binomial standard errors of prop_1 * prop_2 (N = 20k)."""
    mode, param = STAT_CASES[case]
    n = size(20_000, 8_000)
    idx, prop = draw_slates(mode, param, 2, n, seed_state(seed, 8))
    first = ref.first_slot_probabilities(SCORES, mode, param)
    for a, b in itertools.permutations(range(len(SCORES)), 2):
        rest = [c for c in range(len(SCORES)) if c != a]
        closed = first[a] * ref.first_slot_probabilities([SCORES[c] for c in rest], mode, param)[rest.index(b)]
        hit = (idx[:, 0] == a) & (idx[:, 1] == b)
        if hit.any():
            reported = np.unique(prop[hit, 0] * prop[hit, 1])
            assert reported.shape == (1,)
            assert reported[0] == pytest.approx(closed, rel=1e-12)
        assert abs(hit.mean() - closed) <= Z * binomial_se(closed, n), (a, b, hit.mean(), closed)
