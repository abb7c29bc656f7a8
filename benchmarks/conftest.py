"""Benchmark fixtures: kernels compiled once per session, sizes from the environment.

Sizes: ``DECISIONER_BENCH_PROFILES`` (default 1,000,000) and ``DECISIONER_BENCH_ITEMS`` (default
10,000). Under ``--benchmark-disable`` (the CI smoke run: each body once) they drop to 20,000 x
2,000 so the whole directory runs in seconds. Timing runs print each latency benchmark's
percentiles (pytest-benchmark's table has no p99) at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import decisioner
import workloads
from decisioner.bench import BenchState
from decisioner.replay import latency_summary

SMOKE_PROFILES = 20_000
SMOKE_ITEMS = 2_000

_LATENCIES: list[tuple[str, dict[str, Any]]] = []


def is_smoke(config: pytest.Config) -> bool:
    """True when benchmark bodies run once without timing (``--benchmark-disable``)."""
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


@pytest.fixture(scope="session", autouse=True)
def _warm_up() -> None:
    """Compile (or load) every kernel before anything is timed (the admin ones too: some
    benchmarks time bulk loading or the standalone scorer)."""
    decisioner.warm_up(admin=True)


@pytest.fixture(scope="session")
def smoke(request: pytest.FixtureRequest) -> bool:
    return is_smoke(request.config)


@pytest.fixture(scope="session")
def sizes(smoke: bool) -> tuple[int, int]:
    """(profiles, items) of the populated engine."""
    if smoke:
        return SMOKE_PROFILES, SMOKE_ITEMS
    return (
        int(os.environ.get("DECISIONER_BENCH_PROFILES", "1000000")),
        int(os.environ.get("DECISIONER_BENCH_ITEMS", "10000")),
    )


@pytest.fixture(scope="session")
def state(sizes: tuple[int, int]) -> BenchState:
    """The populated engine shared by the decide and identity benchmarks (built once)."""
    return workloads.bench_state(*sizes)


@pytest.fixture
def record_latency(benchmark: Any) -> Callable[[], None]:
    """Call after ``benchmark.pedantic``: stores p50/p95/p99/p999/max of the rounds (us) in
    ``extra_info`` (saved with ``--benchmark-autosave``) and in the end-of-session summary."""

    def record() -> None:
        stats = getattr(benchmark, "stats", None)
        if benchmark.disabled or not stats:
            return
        summary = latency_summary(np.asarray(stats.stats.data, dtype=np.float64) * 1e6)
        benchmark.extra_info.update({f"{k}_us": summary[k] for k in ("p50", "p95", "p99", "p999", "max")})
        _LATENCIES.append((benchmark.name, summary))

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _LATENCIES:
        return
    tr = terminalreporter
    tr.section("decision latency percentiles (us)")
    width = max(len(name) for name, _ in _LATENCIES)
    tr.write_line(f"{'benchmark':<{width}}  {'rounds':>7} {'p50':>9} {'p95':>9} {'p99':>9} {'p999':>9} {'max':>9}")
    for name, s in _LATENCIES:
        tr.write_line(
            f"{name:<{width}}  {s['count']:>7} {s['p50']:>9.1f} {s['p95']:>9.1f} {s['p99']:>9.1f} "
            f"{s['p999']:>9.1f} {s['max']:>9.1f}"
        )
