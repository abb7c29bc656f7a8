"""``_kernels/rng.py`` against the pure-Python splitmix64 twin, plus sampler statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference as ref
from decisioner._kernels import rng

from ._helpers import Z, size


def state_of(x: int) -> np.ndarray:
    return np.array([x], dtype=np.uint64)


# --------------------------------------------------------------------------- seeding, stream


@pytest.mark.parametrize(
    ("seed", "stream"),
    [(0, 0), (1, 0), (0, 1), (12345, 7), (2**63, 3), (2**64 - 1, 2**64 - 1), (-1, 0), (10**30, 5)],
)
def test_seed_state_matches_twin(seed: int, stream: int) -> None:
    st = rng.seed_state(seed, stream)
    assert st.dtype == np.uint64 and st.shape == (1,)
    assert int(st[0]) == ref.seed_state(seed, stream)


def test_seed_state_streams_differ() -> None:
    words = {int(rng.seed_state(s, k)[0]) for s in range(20) for k in range(20)}
    assert len(words) == 400


def test_splitmix64_known_vector() -> None:
    """Published splitmix64 outputs from state 0 (Vigna's reference implementation)."""
    g = ref.SplitMix64(0)
    assert [g.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    u = np.empty(3)
    st = state_of(0)
    rng.rng_fill_uniform(st, u)
    assert u.tolist() == [(w >> 11) * 2.0**-53 for w in (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F)]
    assert int(st[0]) == (3 * ref.GOLDEN) & ref.MASK64


@pytest.mark.parametrize("start", [0, 1, 2**64 - 1, 2**64 - ref.GOLDEN, ref.GOLDEN, 0xDEADBEEF])
@pytest.mark.parametrize("n", [0, 1, 2, 1000])
def test_fill_uniform_bit_exact(start: int, n: int) -> None:
    st = state_of(start)
    out = np.full(n, np.nan)
    rng.rng_fill_uniform(st, out)
    want, end = ref.rng_fill_uniform(start, n)
    assert out.tolist() == want  # bit-exact
    assert int(st[0]) == end == (start + n * ref.GOLDEN) & ref.MASK64
    assert ((out >= 0.0) & (out < 1.0)).all()


def test_fill_uniform_seeded_streams(seed: int) -> None:
    n = size(50_000, 5_000)
    for stream in range(3):
        st = rng.seed_state(seed, stream)
        start = int(st[0])
        out = np.empty(n)
        rng.rng_fill_uniform(st, out)
        want, end = ref.rng_fill_uniform(start, n)
        assert np.array_equal(out, np.array(want))
        assert int(st[0]) == end


def test_fill_uniform_moments(seed: int) -> None:
    n = size(200_000, 20_000)
    out = np.empty(n)
    rng.rng_fill_uniform(rng.seed_state(seed), out)
    assert abs(out.mean() - 0.5) < Z * math.sqrt(1 / 12 / n)
    assert abs(out.var() - 1 / 12) < Z * math.sqrt((1 / 80 - 1 / 144) / n)


# --------------------------------------------------------------------------- primitives


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1000, 2**40])
def test_rng_below_matches_twin(seed: int, n: int) -> None:
    st = rng.seed_state(seed)
    g = ref.SplitMix64(st)
    got = [rng.rng_below(st, n) for _ in range(200)]
    assert got == [g.below(n) for _ in range(200)]
    assert int(st[0]) == g.state
    assert all(0 <= x < n for x in got)
    if n == 1:
        assert set(got) == {0}


def test_rng_normal_matches_twin(seed: int) -> None:
    st = rng.seed_state(seed)
    g = ref.SplitMix64(st)
    got = np.array([rng.rng_normal(st) for _ in range(size(2000, 500))])
    want = np.array([g.normal() for _ in range(got.shape[0])])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert int(st[0]) == g.state
    assert np.isfinite(got).all()


@pytest.mark.parametrize("shape", [1e-3, 0.05, 0.5, 0.999, 1.0, 1.5, 3.0, 50.0, 1e4])
def test_rng_gamma_matches_twin(seed: int, shape: float) -> None:
    st = rng.seed_state(seed, 1)
    g = ref.SplitMix64(st)
    n = size(500, 100)
    got = np.array([rng.rng_gamma(st, shape) for _ in range(n)])
    want = np.array([g.gamma(shape) for _ in range(n)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0.0)
    assert int(st[0]) == g.state  # same number of rejections: identical stream position
    assert (got >= 0.0).all() and np.isfinite(got).all()


@pytest.mark.parametrize(
    ("a", "b"), [(1.0, 1.0), (0.5, 0.5), (0.2, 3.0), (2.0, 5.0), (30.0, 2.0), (1e-3, 1e-3), (1e-4, 2.0)]
)
def test_fill_beta_matches_twin(seed: int, a: float, b: float) -> None:
    st = rng.seed_state(seed, 2)
    start = int(st[0])
    n = size(3000, 300)
    out = np.empty(n)
    rng.rng_fill_beta(st, a, b, out)
    want, end = ref.rng_fill_beta(start, a, b, n)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-300)
    assert int(st[0]) == end
    assert ((out >= 0.0) & (out <= 1.0)).all()


def test_beta_tiny_shapes_use_the_coin_fallback(seed: int) -> None:
    """With a = b = 1e-3 both gammas often underflow to 0 (x + y == 0); the kernel then returns
    an end point with P(1) = a / (a + b) instead of NaN. Beta(a, a) is symmetric about 1/2, so
    the mean and P(X > 1/2) stay within Z standard errors of 1/2."""
    n = size(20_000, 2_000)
    out = np.empty(n)
    rng.rng_fill_beta(rng.seed_state(seed), 1e-3, 1e-3, out)
    assert not np.isnan(out).any()
    assert ((out == 0.0) | (out == 1.0)).mean() > 0.5  # the near-Bernoulli regime is exercised
    _, var, _ = beta_moments(1e-3, 1e-3)
    assert abs(out.mean() - 0.5) <= Z * math.sqrt(var / n)
    assert abs((out > 0.5).mean() - 0.5) <= Z * math.sqrt(0.25 / n)


def test_fill_beta_empty_leaves_state(seed: int) -> None:
    st = rng.seed_state(seed)
    before = int(st[0])
    rng.rng_fill_beta(st, 2.0, 3.0, np.empty(0))
    assert int(st[0]) == before


# --------------------------------------------------------------------------- sampler statistics


def beta_moments(a: float, b: float) -> tuple[float, float, float]:
    """Mean, variance and the fourth central moment of Beta(a, b)."""
    s = a + b
    mean = a / s
    var = a * b / (s * s * (s + 1.0))
    # raw moments E[X^k] = prod_{j<k} (a + j) / (s + j)
    raw = [1.0]
    for j in range(4):
        raw.append(raw[-1] * (a + j) / (s + j))
    m4 = raw[4] - 4 * mean * raw[3] + 6 * mean**2 * raw[2] - 3 * mean**4
    return mean, var, m4


@pytest.mark.slow
@pytest.mark.parametrize(("a", "b"), [(1.0, 1.0), (0.3, 0.3), (0.5, 2.0), (2.0, 5.0), (8.0, 1.5), (40.0, 60.0)])
def test_beta_mean_and_variance(seed: int, a: float, b: float) -> None:
    """Sample mean and variance of N draws within Z standard errors of the closed forms.

    SE(mean) = sqrt(var / N); SE(sample variance) ~ sqrt((mu4 - var^2) / N).
    N = 200k compiled (20k with the JIT off).
    """
    n = size(200_000, 20_000)
    out = np.empty(n)
    rng.rng_fill_beta(rng.seed_state(seed, 11), a, b, out)
    mean, var, m4 = beta_moments(a, b)
    assert abs(out.mean() - mean) <= Z * math.sqrt(var / n)
    assert abs(out.var() - var) <= Z * math.sqrt((m4 - var * var) / n)


def test_normal_and_gamma_moments(seed: int) -> None:
    st = rng.seed_state(seed, 12)
    n = size(100_000, 5_000)
    x = np.array([rng.rng_normal(st) for _ in range(n)])
    assert abs(x.mean()) <= Z / math.sqrt(n)
    assert abs(x.var() - 1.0) <= Z * math.sqrt(2.0 / n)
    for shape in (0.4, 2.5):
        y = np.array([rng.rng_gamma(st, shape) for _ in range(n)])
        assert abs(y.mean() - shape) <= Z * math.sqrt(shape / n)
