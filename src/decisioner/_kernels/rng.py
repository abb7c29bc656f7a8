"""Explicit, portable randomness for kernels: splitmix64 state in a ``uint64[1]`` array.

Numba's internal ``np.random`` state is separate from NumPy's and differs across versions, so
stochastic kernels draw only through these functions, which give the same stream on any
machine for the same seed.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import helper, kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@helper(hot=True)
def mix64(z: np.uint64) -> np.uint64:
    """splitmix64 finaliser: a bijective avalanche of one 64-bit word."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@helper(hot=True)
def rng_next(state: np.ndarray) -> np.uint64:
    """Next 64-bit word; advances ``state[0]``."""
    z = state[0] + _GOLDEN
    state[0] = z
    return mix64(z)


@helper(hot=True)
def rng_uniform(state: np.ndarray) -> float:
    """Uniform float64 in [0, 1) with 53 random bits."""
    return float(rng_next(state) >> _S11) * _INV53


@helper(python=True, hot=True)
def rng_below(state: np.ndarray, n: int) -> int:
    """Uniform integer in [0, n); assumes n >= 1 (multiply-free, bias < 2**-53 * n)."""
    return int(rng_uniform(state) * n)


@helper(python=True, hot=True)
def rng_normal(state: np.ndarray) -> float:
    """Standard normal by Box-Muller (one value per call; the pair's twin is discarded so the
    stream position does not depend on call history)."""
    u1 = 1.0 - rng_uniform(state)  # (0, 1]: log is finite
    u2 = rng_uniform(state)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@helper(python=True)
def rng_gamma(state: np.ndarray, shape: float) -> float:
    """Gamma(shape, 1) by Marsaglia-Tsang; shape < 1 via the ``U**(1/shape)`` boost."""
    boost = 1.0
    if shape < 1.0:
        boost = (1.0 - rng_uniform(state)) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = rng_normal(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = 1.0 - rng_uniform(state)
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v * boost


@helper
def rng_beta(state: np.ndarray, a: float, b: float) -> float:
    """Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b)."""
    x = rng_gamma(state, a)
    y = rng_gamma(state, b)
    s = x + y
    if s <= 0.0:  # both underflowed (tiny shapes): fall back to a fair coin between the ends
        return 1.0 if rng_uniform(state) < a / (a + b) else 0.0
    return x / s


@kernel
def rng_fill_uniform(state: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (float64[n]) with uniforms; used by tests and warm-up.

    Assumes: ``state`` is uint64[1]. O(n).
    """
    for i in range(out.shape[0]):
        out[i] = rng_uniform(state)


@kernel
def rng_fill_beta(state: np.ndarray, a: float, b: float, out: np.ndarray) -> None:
    """Fill ``out`` (float64[n]) with Beta(a, b) draws. Assumes: a, b > 0. O(n)."""
    for i in range(out.shape[0]):
        out[i] = rng_beta(state, a, b)


def seed_state(seed: int, stream: int = 0) -> np.ndarray:
    """A fresh ``uint64[1]`` state for ``(seed, stream)``: distinct streams never overlap in
    practice (their starting points are splitmix64-mixed)."""
    mask = (1 << 64) - 1
    z = (seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return np.array([z], dtype=np.uint64)
