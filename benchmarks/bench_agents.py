"""Agent context latency (issue 14: p99 <= 1 ms at 1M profiles): ``Engine.agent_context`` for a
different known person each round, without next-best actions (a read) and with them (a
decision on the campaign placement ``hero``, the request tracked as a service call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from decisioner.bench import BenchState

ROUNDS = 3_000


def _rounds(benchmark: Any, state: BenchState, placement: str | None) -> Any:
    reqs = iter(state.requests(ROUNDS + 1, seed=11))
    ctx = state.engine.agent_context

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        r = next(reqs)
        return (r["ids"],), {"now": r["time"], "placement": placement}

    return benchmark.pedantic(ctx, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="agents")
def test_agent_context(benchmark: Any, state: BenchState, record_latency: Callable[[], None]) -> None:
    c = _rounds(benchmark, state, None)
    record_latency()
    assert c.known and c.personalized and c.interests and c.next_best_actions is None


@pytest.mark.benchmark(group="agents")
def test_agent_context_with_actions(benchmark: Any, state: BenchState, record_latency: Callable[[], None]) -> None:
    c = _rounds(benchmark, state, "hero")
    record_latency()
    assert c.next_best_actions is not None and len(c.next_best_actions.actions) == 1
