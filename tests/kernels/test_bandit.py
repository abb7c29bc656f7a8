"""``_kernels/bandit.py``: Thompson sampling and slate exploration against their twins (same
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
    assert (B.MODE_GREEDY, B.MODE_EPSILON, B.MODE_SOFTMAX, B.MODE_UNIFORM) == (
        ref.MODE_GREEDY, ref.MODE_EPSILON, ref.MODE_SOFTMAX, ref.MODE_UNIFORM)


# --------------------------------------------------------------------------- thompson_select


def thompson(
    trials: Sequence[float], successes: Sequence[float], eligible: Sequence[int], state: np.ndarray,
    draws: int, prior: tuple[float, float] = (1.0, 1.0),
) -> tuple[int, float]:
    """Kernel and twin on the same stream; asserts they agree (arm, propensity, state)."""
    twin = ref.SplitMix64(state)
    tr = np.array(trials, np.float64)
    su = np.array(successes, np.float64)
    el = np.array(eligible, np.uint8)
    arm, prop = B.thompson_select(prior[0], prior[1], tr, su, el, state, draws)
    want = ref.thompson_select(prior[0], prior[1], list(trials), list(successes), list(eligible), twin, draws)
    assert (arm, prop) == want
    assert int(state[0]) == twin.state
    return arm, prop


def test_thompson_no_eligible_arm(seed: int) -> None:
    for trials, eligible in (([], []), ([3.0, 4.0], [0, 0])):
        st_ = seed_state(seed)
        before = int(st_[0])
        assert thompson(trials, [0.0] * len(trials), eligible, st_, 10) == (-1, 0.0)
        assert int(st_[0]) == before  # nothing drawn


def test_thompson_single_eligible_arm_has_propensity_one(seed: int) -> None:
    arm, prop = thompson([10.0, 5.0, 7.0], [1.0, 5.0, 3.0], [0, 1, 0], seed_state(seed), 25)
    assert (arm, prop) == (1, 1.0)


def test_thompson_without_extra_draws_has_propensity_one(seed: int) -> None:
    arm, prop = thompson([10.0, 10.0], [2.0, 8.0], [1, 1], seed_state(seed), 0)
    assert prop == 1.0 and arm in (0, 1)


def test_thompson_propensity_grid(seed: int) -> None:
    """prop = wins / (draws + 1) with 1 <= wins <= draws + 1."""
    st_ = seed_state(seed)
    for draws in (1, 4, 31):
        for _ in range(20):
            _, prop = thompson([5.0, 5.0, 5.0], [2.0, 3.0, 2.0], [1, 1, 1], st_, draws)
            wins = prop * (draws + 1)
            assert wins == round(wins) and 1 <= round(wins) <= draws + 1


@pytest.mark.parametrize("stream", range(4))
def test_thompson_random_matches_twin(make_rng, stream: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(stream)
    st_ = seed_state(1000 + stream)
    for _ in range(size(300, 40)):
        n = int(g.integers(0, 8))
        trials = g.integers(0, 200, size=n).astype(float)
        successes = np.floor(trials * g.random(n))
        eligible = (g.random(n) < 0.8).astype(int)
        prior = (float(g.choice([0.5, 1.0, 2.0])), float(g.choice([0.5, 1.0, 3.0])))
        thompson(trials.tolist(), successes.tolist(), eligible.tolist(), st_, int(g.choice([0, 1, 10, 50])), prior)


@pytest.mark.slow
def test_thompson_propensity_matches_selection_frequency(seed: int) -> None:
    """Over R seeded selections, the propensity is consistent with the empirical selection
    frequency f_a of each arm.

    Given that arm a was selected, the propensity is (1 + W) / (D + 1) with W ~ Bin(D, p_a)
    from D independent rounds, so E[prop | a] = (1 + D p_a) / (D + 1). We invert that to
    p_hat_a = ((D + 1) mean(prop | a) - 1) / D and require |p_hat_a - f_a| <= Z * SE, where
    SE combines the binomial error of f_a over R and of p_hat_a over n_a * D rounds.
    """
    r_sel, draws = size(3000, 600), size(200, 50)
    trials = np.array([20.0, 20.0, 20.0, 5.0])
    successes = np.array([8.0, 10.0, 12.0, 2.0])
    el = np.ones(4, np.uint8)
    st_ = seed_state(seed, 3)
    arms = np.empty(r_sel, np.int64)
    props = np.empty(r_sel)
    for i in range(r_sel):
        arms[i], props[i] = B.thompson_select(1.0, 1.0, trials, successes, el, st_, draws)
    for a in range(4):
        n_a = int((arms == a).sum())
        f_a = n_a / r_sel
        if n_a < 10:  # too few selections for a normal approximation
            continue
        p_hat = ((draws + 1) * props[arms == a].mean() - 1.0) / draws
        se = math.sqrt(binomial_se(f_a, r_sel) ** 2 + binomial_se(f_a, n_a * draws) ** 2)
        assert abs(p_hat - f_a) <= Z * se, (a, p_hat, f_a, se)
    assert (arms == 2).mean() > (arms == 0).mean()  # the best posterior wins most often


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
        idx, prop = slate([1.0, 0.5, -math.inf], 2, B.MODE_SOFTMAX, 0.5, st_)
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
