"""``_kernels/linear.py``: Cholesky-factor ridge updates, scores and LinUCB against a twin that
solves the ridge system with ``numpy.linalg``."""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference as ref
from decisioner._kernels import linear as K

from ._helpers import size


def make(n: int, d: int, l2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    chol = np.zeros((n, d, d))
    inv = np.zeros((n, d, d))
    chol[:, np.arange(d), np.arange(d)] = math.sqrt(l2)
    inv[:, np.arange(d), np.arange(d)] = 1.0 / math.sqrt(l2)
    return chol, inv, np.zeros((n, d)), np.zeros((n, d)), np.empty(d)


@pytest.mark.parametrize(("n", "d", "l2"), [(1, 1, 1.0), (3, 4, 0.5), (5, 8, 2.0)])
def test_updates_scores_and_linucb_match_twin(make_rng, n: int, d: int, l2: float) -> None:  # type: ignore[no-untyped-def]
    g = make_rng(n, d)
    chol, inv, b, theta, work = make(n, d, l2)
    twin = ref.LinearTwin(n, d, l2)
    mean, sd = np.empty(n), np.empty(n)
    for step in range(size(150, 30)):
        arm = int(g.integers(0, n))
        x = g.normal(size=d)
        r = float(g.normal())
        count = 0.0 if step % 7 == 3 else 1.0  # late rewards add to b only
        K.linear_update(chol, inv, b, theta, arm, x, r, count, work)
        twin.update(arm, x, r, count)
        assert np.allclose(chol[arm] @ chol[arm].T, twin.a[arm], rtol=1e-10, atol=1e-10)
        assert np.allclose(inv[arm] @ chol[arm], np.eye(d), atol=1e-9)
        assert np.allclose(theta[arm], twin.theta(arm), rtol=1e-8, atol=1e-10)
        xq = g.normal(size=d)
        el = (g.random(n) < 0.8).astype(np.uint8)
        K.linear_scores(inv, theta, xq, el, mean, sd)
        for a in range(n):
            if el[a]:
                assert mean[a] == pytest.approx(twin.theta(a) @ xq, rel=1e-8, abs=1e-10)
                assert sd[a] == pytest.approx(twin.sd(a, xq), rel=1e-8)
            else:
                assert mean[a] == -np.inf and sd[a] == 0.0
        alpha = float(g.uniform(0.0, 2.0))
        arm_k, score = K.linucb_select(inv, theta, xq, el, alpha)
        assert arm_k == twin.linucb(xq, el, alpha)
        if arm_k >= 0:
            assert score == pytest.approx(mean[arm_k] + alpha * sd[arm_k], rel=1e-9, abs=1e-12)


def test_no_eligible_arm_and_zero_context() -> None:
    _chol, inv, _b, theta, _work = make(2, 3, 1.0)
    assert K.linucb_select(inv, theta, np.ones(3), np.zeros(2, np.uint8), 1.0) == (-1, -np.inf)
    # a zero context: every score is 0 with sd 0, ties go to the lower index
    assert K.linucb_select(inv, theta, np.zeros(3), np.ones(2, np.uint8), 1.0) == (0, 0.0)


def test_factor_stays_accurate_over_many_updates(seed: int) -> None:
    """50k rank-one updates: the factor still reproduces A to 1e-9 relative (no drift)."""
    g = np.random.default_rng(seed)
    d = 6
    chol, inv, b, theta, work = make(1, d, 1.0)
    a = np.eye(d)
    xs = g.normal(size=(size(50_000, 2_000), d))
    for x in xs:
        K.linear_update(chol, inv, b, theta, 0, x, 1.0, 1.0, work)
        a += np.outer(x, x)
    assert np.abs(chol[0] @ chol[0].T - a).max() / np.abs(a).max() < 1e-9
    assert np.allclose(inv[0] @ chol[0], np.eye(d), atol=1e-9)
