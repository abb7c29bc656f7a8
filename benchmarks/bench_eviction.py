"""Memory bounds under churn: an engine full to its profile capacity serves people it has never
seen, so every decision adds a profile and the longest idle ones are evicted in batches of 1%.

The rounds give the latency of a new person's decision with the eviction pauses amortised in
(p99 and max show the batch pauses); ``extra_info`` records that memory did not grow. The state
is its own (a tenth of the shared one's size), since churn replaces the people the other
benchmarks expect to find.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from decisioner.bench import BenchState, build_engine


@pytest.fixture(scope="module")
def full(sizes: tuple[int, int]) -> BenchState:
    return build_engine(max(sizes[0] // 10, 1000), sizes[1], seed=7)


def _bytes(st: BenchState) -> int:
    eng = st.engine
    return int(eng.identity.nbytes() + sum(getattr(eng.profiles, a).nbytes for a in eng.profiles._ARRAYS))


@pytest.mark.benchmark(group="eviction")
def test_new_people_at_capacity(
    benchmark: Any, full: BenchState, smoke: bool, record_latency: Callable[[], None]
) -> None:
    eng = full.engine
    cap = eng.config.profiles.max_profiles
    rounds = 200 if smoke else 3 * cap // 100 * 10  # ten or more eviction batches
    # one round of newcomers first: the arrays reach their steady size
    for req in full.newcomers(cap // 50 + 1, seed=1):
        eng.decide(req, placement="home")
    before_bytes, before_evicted = _bytes(full), eng.evicted_
    it = iter(full.newcomers(rounds + 1, seed=2))

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (next(it),), {"placement": "home"}

    benchmark.pedantic(eng.decide, setup=setup, rounds=rounds, iterations=1, warmup_rounds=1)
    record_latency()
    assert eng.identity.n_profiles <= cap
    assert eng.evicted_ > cap // 100  # the warm-up round alone evicts two batches
    assert _bytes(full) == before_bytes  # bounded: nothing grew while people kept coming
    benchmark.extra_info.update({
        "max_profiles": cap,
        "evicted": eng.evicted_ - before_evicted,
        "state_bytes": before_bytes,
        "bytes_per_profile_slot": round(before_bytes / cap, 1),
    })
