"""Allocation kernels: Bernoulli Thompson sampling over arms, and slate exploration over a
ranked candidate pool. Every selection returns its propensity."""

from __future__ import annotations

import math

import numpy as np

from ._jit import kernel
from .rng import rng_below, rng_beta, rng_uniform

#: slate modes (integer codes: kernels take no Python objects)
MODE_GREEDY = 0
MODE_EPSILON = 1
MODE_SOFTMAX = 2
MODE_UNIFORM = 3


@kernel
def thompson_select(
    prior_a: float, prior_b: float, trials: np.ndarray, successes: np.ndarray,
    eligible: np.ndarray, state: np.ndarray, draws: int,
) -> tuple[int, float]:
    """Bernoulli Thompson sampling: one Beta(prior_a + s, prior_b + n - s) draw per eligible arm
    (``trials``/``successes`` float64[n], ``eligible`` uint8[n]); the arm with the highest draw
    wins (ties: lower index).

    The propensity is ``(wins + 1) / (draws + 1)``: the chosen arm's win count over ``draws``
    further independent rounds, counting the selection round itself (never zero, as inverse
    propensity weighting needs). Returns ``(-1, 0.0)`` if no arm is eligible.

    Assumes: priors > 0; 0 <= successes <= trials; ``state`` uint64[1]. O(n * (draws + 1)).
    """
    n = trials.shape[0]
    best = -1
    best_v = -1.0
    for a in range(n):
        if eligible[a] != 0:
            v = rng_beta(state, prior_a + successes[a], prior_b + trials[a] - successes[a])
            if v > best_v:
                best_v = v
                best = a
    if best < 0:
        return -1, 0.0
    wins = 1
    for _ in range(draws):
        win = -1
        win_v = -1.0
        for a in range(n):
            if eligible[a] != 0:
                v = rng_beta(state, prior_a + successes[a], prior_b + trials[a] - successes[a])
                if v > win_v:
                    win_v = v
                    win = a
        if win == best:
            wins += 1
    return best, wins / (draws + 1.0)


@kernel
def rank_slate(
    pool: np.ndarray, pool_scores: np.ndarray, n_pool: int, n_slots: int, mode: int,
    param: float, state: np.ndarray, out_idx: np.ndarray, out_prop: np.ndarray,
) -> int:
    """Fill up to ``n_slots`` slots from a candidate pool sorted best first.

    ``pool`` int64[>= n_pool] (item indices) and ``pool_scores`` float64 are sorted by score,
    descending. Per slot, among the candidates not yet placed:

    * greedy (0): the best; propensity 1.
    * epsilon-greedy (1, ``param`` = epsilon): the best with probability 1 - eps, else a uniform
      draw; propensity ``(1 - eps) [chosen is best] + eps / remaining``.
    * softmax (2, ``param`` = temperature tau): a draw from ``exp((s - s_max) / tau)``;
      propensity its probability (Plackett-Luce).
    * uniform (3): a uniform draw; propensity ``1 / remaining``.

    Each slot's propensity is conditional on the slots before it, so the slate's probability
    is their product. Writes ``out_idx`` (int64) and ``out_prop`` (float64); returns the slots
    filled (``min(n_slots, n_pool)``).

    Assumes: ``state`` uint64[1]; 0 <= param (<= 1 for epsilon); tau > 0. O(n_slots * n_pool).
    """
    m = n_pool
    filled = min(n_slots, m)
    # work on a copy so the caller's pool stays sorted; removal keeps order (best first)
    idx = pool[:m].copy()
    sc = pool_scores[:m].copy()
    weights = np.empty(m, dtype=np.float64)
    for s in range(filled):
        remaining = m - s
        pick = 0
        prop = 1.0
        if mode == MODE_EPSILON:
            if rng_uniform(state) < param:
                pick = rng_below(state, remaining)
            prop = param / remaining
            if pick == 0:
                prop += 1.0 - param
        elif mode == MODE_SOFTMAX:
            top = sc[0]
            total = 0.0
            for j in range(remaining):
                w = math.exp((sc[j] - top) / param)
                weights[j] = w
                total += w
            u = rng_uniform(state) * total
            acc = 0.0
            pick = remaining - 1
            for j in range(remaining):
                acc += weights[j]
                if u < acc:
                    pick = j
                    break
            prop = weights[pick] / total
        elif mode == MODE_UNIFORM:
            pick = rng_below(state, remaining)
            prop = 1.0 / remaining
        out_idx[s] = idx[pick]
        out_prop[s] = prop
        for j in range(pick, remaining - 1):
            idx[j] = idx[j + 1]
            sc[j] = sc[j + 1]
    return filled
