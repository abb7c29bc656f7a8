"""Contextual linear bandit kernels (LinUCB, linear Thompson sampling) over a Cholesky factor.

Each arm k keeps the ridge system ``A_k = l2 I + sum x x^T`` as its lower Cholesky factor
``L_k`` (``A_k = L_k L_k^T``, float64[n_arms, d, d]) and that factor's inverse ``R_k = L_k^-1``
(also lower triangular), the vector ``b_k = sum r x`` and the coefficients
``theta_k = A_k^{-1} b_k = R_k^T R_k b_k``. An observation is a rank-one update of ``L_k`` (the
LINPACK ``dchud`` rotation, numerically stable; ``A`` itself is never inverted) followed by a
triangular inversion. For a context x the score has mean ``theta_k . x`` and standard
deviation ``||R_k x||`` (``sqrt(x^T A_k^{-1} x)``, a triangular mat-vec, which vectorises
where a forward substitution would chain divisions): LinUCB adds ``alpha`` of it; linear
Thompson sampling draws from ``N(theta_k . x, (v ||L_k^{-1} x||)^2)``, which is exactly the
distribution of ``theta~ . x`` for ``theta~ ~ N(theta_k, v^2 A_k^{-1})`` drawn through the
Cholesky factor, at the cost of one normal instead of d.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import helper, kernel


@kernel
def linear_update(
    chol: np.ndarray, inv: np.ndarray, b: np.ndarray, theta: np.ndarray, arm: int, x: np.ndarray,
    reward: float, count: float, work: np.ndarray,
) -> None:
    """Add the observation ``(x, reward)`` to ``arm``: ``A += count x x^T`` (Cholesky rank-one
    update; ``count`` 0 adds a late reward to an exposure already counted), ``b += reward x``,
    ``inv = L^{-1}`` (triangular inversion, O(d^3 / 6)) and ``theta = inv^T inv b``.

    ``chol``, ``inv`` float64[n, d, d] (lower triangles), ``b`` and ``theta`` float64[n, d],
    ``x`` and ``work`` float64[d]. Assumes: 0 <= arm < n; count >= 0; l2 > 0. O(d^3).
    """
    d = x.shape[0]
    L = chol[arm]
    R = inv[arm]
    if count > 0.0:
        g = math.sqrt(count)
        for i in range(d):
            work[i] = g * x[i]
        for k in range(d):
            lkk = L[k, k]
            r = math.sqrt(lkk * lkk + work[k] * work[k])
            c = r / lkk
            s = work[k] / lkk
            L[k, k] = r
            for i in range(k + 1, d):
                L[i, k] = (L[i, k] + s * work[i]) / c
                work[i] = c * work[i] - s * L[i, k]
        # R = L^{-1}, column by column (R is lower triangular too)
        for j in range(d):
            R[j, j] = 1.0 / L[j, j]
            for i in range(j + 1, d):
                acc = 0.0
                for q in range(j, i):
                    acc += L[i, q] * R[q, j]
                R[i, j] = -acc / L[i, i]
    for i in range(d):
        b[arm, i] += reward * x[i]
    # theta = R^T (R b)
    for i in range(d):
        acc = 0.0
        for j in range(i + 1):
            acc += R[i, j] * b[arm, j]
        work[i] = acc
    for j in range(d):
        acc = 0.0
        for i in range(j, d):
            acc += R[i, j] * work[i]
        theta[arm, j] = acc


@helper(hot=True)
def _mean_sd(inv: np.ndarray, theta: np.ndarray, a: int, x: np.ndarray) -> tuple[float, float]:
    """Arm ``a``'s score mean ``theta_a . x`` and standard deviation ``||R_a x||``. O(d^2)."""
    m = 0.0
    ss = 0.0
    for i in range(x.shape[0]):
        m += theta[a, i] * x[i]
        acc = 0.0
        for j in range(i + 1):
            acc += inv[a, i, j] * x[j]
        ss += acc * acc
    return m, math.sqrt(ss)


@kernel
def linear_scores(
    inv: np.ndarray, theta: np.ndarray, x: np.ndarray, eligible: np.ndarray,
    mean_out: np.ndarray, sd_out: np.ndarray,
) -> None:
    """For every eligible arm: ``mean_out = theta . x`` and ``sd_out = ||L^{-1} x||``
    (ineligible arms: mean -inf, sd 0).

    Assumes: shapes as in ``linear_update``. O(n d^2).
    """
    n = inv.shape[0]
    for a in range(n):
        if eligible[a] == 0:
            mean_out[a] = -np.inf
            sd_out[a] = 0.0
            continue
        mean_out[a], sd_out[a] = _mean_sd(inv, theta, a, x)


@kernel
def linucb_select(
    inv: np.ndarray, theta: np.ndarray, x: np.ndarray, eligible: np.ndarray, alpha: float,
) -> tuple[int, float]:
    """LinUCB: the eligible arm with the highest ``theta . x + alpha ||L^{-1} x||`` (ties: lower
    index); returns ``(arm, score)``, ``(-1, -inf)`` if none is eligible. Deterministic, so its
    propensity is 1. Assumes: shapes as in ``linear_update``; alpha >= 0. O(n d^2).
    """
    n = inv.shape[0]
    best = -1
    best_s = -np.inf
    for a in range(n):
        if eligible[a] == 0:
            continue
        m, sd = _mean_sd(inv, theta, a, x)
        s = m + alpha * sd
        if best < 0 or s > best_s:
            best = a
            best_s = s
    return best, best_s
