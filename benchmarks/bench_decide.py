"""``Engine.decide`` latency on the populated engine: one decision per round, so the rounds'
distribution gives the median and the tail (p99 in ``extra_info`` and the session summary).

Each round decides for a different known person (a view of a random item by cookie, times
increasing), the request is handed over by the untimed ``setup``; the engine state carries over
between rounds as in a service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import workloads
from decisioner.bench import BenchState
from decisioner.schemas import Decision

ROUNDS = 5_000


def _decide_rounds(
    benchmark: Any, state: BenchState, sizes: tuple[int, int], placement: str, seed: int
) -> Decision:
    reqs = workloads.events(ROUNDS + 1, seed, profiles=sizes[0], items=sizes[1])
    it = iter(reqs)
    decide = state.engine.decide

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (next(it),), {"placement": placement}

    result: Decision = benchmark.pedantic(decide, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    return result


@pytest.mark.benchmark(group="decide")
def test_decide_recommendation(
    benchmark: Any, state: BenchState, sizes: tuple[int, int], record_latency: Callable[[], None]
) -> None:
    """``home``: score every item for the person, epsilon-greedy 4-slot slate."""
    d = _decide_rounds(benchmark, state, sizes, "home", seed=1)
    record_latency()
    assert d.placement == "home" and d.personalized
    assert len(d.slots) == 4 and len({s.content for s in d.slots}) == 4
    assert all(0.0 < s.propensity <= 1.0 for s in d.slots)
    assert 0 < d.candidates <= sizes[1]


@pytest.mark.benchmark(group="decide")
def test_decide_campaign(
    benchmark: Any, state: BenchState, sizes: tuple[int, int], record_latency: Callable[[], None]
) -> None:
    """``hero``: track the view, Thompson sampling over 5 experiences."""
    d = _decide_rounds(benchmark, state, sizes, "hero", seed=2)
    record_latency()
    assert d.placement == "hero" and d.policy == "thompson"
    assert len(d.slots) == 1 and d.slots[0].content.startswith("hero-")
    assert 0.0 < d.slots[0].propensity <= 1.0
    assert d.candidates == 5
