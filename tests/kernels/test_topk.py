"""``_kernels/topk.py`` against ``sorted`` by (-score, index)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from decisioner._kernels.topk import top_k

from ._helpers import size

NAN, INF = math.nan, math.inf


def run(scores: Sequence[float], k: int) -> list[int]:
    s = np.array(scores, dtype=np.float64)
    before = s.copy()
    out = np.full(max(k, 0) + 2, -7, np.int64)  # two guard cells past k
    n = top_k(s, k, out)
    assert out[max(k, 0) :].tolist() == [-7, -7]  # never writes past k
    assert np.array_equal(s, before, equal_nan=True)
    got = out[:n].tolist()
    assert got == ref.top_k(list(before), k)
    return got


@pytest.mark.parametrize("k", [0, 1, 5])
def test_empty_scores(k: int) -> None:
    assert run([], k) == []


def test_k_zero_and_negative_select_nothing() -> None:
    assert run([3.0, 1.0], 0) == []
    assert run([3.0, 1.0], -2) == []


def test_single_element() -> None:
    assert run([0.5], 1) == [0]
    assert run([0.5], 3) == [0]
    assert run([-INF], 1) == []
    assert run([NAN], 1) == []


def test_k_larger_than_n_returns_every_valid_item_sorted() -> None:
    assert run([1.0, 3.0, 2.0], 10) == [1, 2, 0]


def test_nan_and_minus_inf_are_never_selected_plus_inf_first() -> None:
    scores = [NAN, -INF, 1.0, INF, NAN, -1e308, -INF, INF]
    assert run(scores, 8) == [3, 7, 2, 5]
    assert run(scores, 1) == [3]
    assert run([NAN] * 5 + [-INF] * 3, 4) == []


def test_ties_go_to_the_lower_index() -> None:
    assert run([1.0, 2.0, 1.0, 2.0, 1.0], 3) == [1, 3, 0]
    assert run([0.0] * 7, 3) == [0, 1, 2]
    assert run([-0.0, 0.0, -0.0], 2) == [0, 1]  # -0.0 == 0.0
    assert run([5.0, 1.0, 1.0, 1.0, 1.0], 2) == [0, 1]  # a later equal score never replaces


def test_replacement_of_the_worst_kept_item() -> None:
    assert run([1.0, 2.0, 3.0, 4.0, 5.0], 2) == [4, 3]  # ascending input: replaces each time
    assert run([5.0, 4.0, 3.0, 2.0, 1.0], 2) == [0, 1]
    assert run([2.0, 1.0, 3.0, 1.0, 2.0, 3.0], 4) == [2, 5, 0, 4]


@pytest.mark.parametrize("stream", range(6))
def test_random_scores(make_rng, stream: int) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(stream)
    n = int(g.integers(1, size(5000, 500)))
    scores = np.round(g.normal(size=n), int(g.integers(0, 3)))  # rounding makes many ties
    scores[g.random(n) < 0.05] = NAN
    scores[g.random(n) < 0.05] = -INF
    scores[g.random(n) < 0.001] = INF
    for k in (0, 1, 7, n // 3, n, n + 5):
        got = run(scores.tolist(), k)
        # independent: a stable sort by descending score
        valid = np.flatnonzero(~np.isnan(scores) & (scores != -INF))
        order = valid[np.lexsort((valid, -scores[valid]))]
        assert got == order[:k].tolist()


scores_st = st.lists(
    st.one_of(
        st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, NAN, INF, -INF]),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    max_size=60,
)


@settings(max_examples=size(300, 100))
@given(scores=scores_st, extra_k=st.integers(-1, 65))
def test_top_k_equals_reference(scores: list[float], extra_k: int) -> None:
    run(scores, min(extra_k, len(scores) + 3))
