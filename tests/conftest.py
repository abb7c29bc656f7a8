"""Shared fixtures: a fixed ``seed``, a NumPy RNG factory, and a session-wide ``warm_up()`` so
compile time is never measured inside a test. Nothing here seeds global state."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import settings

#: ``NUMBA_DISABLE_JIT=1`` runs the kernels as plain Python (the coverage run)
JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"

# Deterministic property tests: the same examples on every run and machine, no example
# database written into the working tree, no per-example deadline (the first call may compile).
settings.register_profile("decisioner", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "decisioner"))


def pytest_configure(config: pytest.Config) -> None:
    if JIT_DISABLED:
        # Compiled kernels wrap uint64 arithmetic and follow IEEE inf/NaN rules silently; run as
        # Python, the same operations on NumPy scalars emit RuntimeWarning ("overflow
        # encountered in scalar multiply" in splitmix64, "invalid value" for -inf + inf).
        # Those are intended, so ignore RuntimeWarnings raised from kernel modules only.
        config.addinivalue_line("filterwarnings", r"ignore::RuntimeWarning:decisioner\._kernels")


@pytest.fixture
def seed() -> int:
    """The fixed seed of every seeded test."""
    return 20240611


@pytest.fixture
def make_rng(seed: int) -> Callable[..., np.random.Generator]:
    """Factory of independent NumPy generators: ``make_rng()`` uses ``seed``, ``make_rng(k)``
    seeds with ``(seed, k)`` for a second independent stream."""

    def factory(*extra: int) -> np.random.Generator:
        return np.random.default_rng((seed, *extra) if extra else seed)

    return factory


@pytest.fixture(scope="session", autouse=True)
def _warm_kernels() -> None:
    """Compile (or load from ``NUMBA_CACHE_DIR``) every kernel once per session."""
    import decisioner

    decisioner.warm_up()


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small seeded synthetic world on disk (1,500 people, 800 items), shared by the
    simulate, replay, CLI and example tests."""
    from decisioner.datasets.synthetic import WorldSpec, generate_world, write_world

    out = tmp_path_factory.mktemp("world")
    write_world(generate_world(WorldSpec(n_people=1500, n_items=800, seed=3)), out)
    return str(out)
