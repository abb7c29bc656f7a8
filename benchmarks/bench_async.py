"""AsyncEngine: the cost of one awaited decide run inline on the event loop against one handed
off to a worker thread, on the default asyncio loop and on uvloop, next to a plain synchronous
``Engine.decide``. Each round awaits ``BATCH`` decides one after another (a client's session);
``extra_info`` carries the median and the best per-decide microseconds of each mode (the best is
the steadier figure on a shared machine) and how many calls ran inline."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from decisioner.aio import AsyncEngine
from decisioner.bench import BenchState

BATCH = 200
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def _session(aeng: AsyncEngine, reqs: list[dict[str, Any]]) -> Callable[[], Any]:
    async def run() -> None:
        for r in reqs:
            await aeng.decide(r, placement="home")

    return run


@pytest.mark.benchmark(group="async-decide")
@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_async_decide_inline_vs_handoff(benchmark: Any, state: BenchState, smoke: bool, loop_name: str) -> None:
    """Each round runs one batch synchronously, one by ``engine.decide`` called straight from a
    coroutine (raw inline: what the loop would pay without AsyncEngine), one through AsyncEngine
    inline and one handed off (fresh requests each), so drift of a shared machine hits them alike;
    pytest-benchmark times the AsyncEngine inline batches, ``extra_info`` has the median and best
    microseconds per decide of each mode."""
    rounds = 1 if smoke else 15
    loop = LOOPS[loop_name]()
    inline = AsyncEngine(state.engine, inline=True, max_workers=2)
    handoff = AsyncEngine(state.engine, inline=False, max_workers=2)
    eng = state.engine
    times: dict[str, list[float]] = {"sync": [], "raw": [], "handoff": []}

    def timed(fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def sync_batch() -> None:
        for r in state.requests(BATCH, seed=1):
            eng.decide(r, placement="home")

    async def raw_session(reqs: list[dict[str, Any]]) -> None:
        for r in reqs:  # the engine called straight from a coroutine: no lock probe, no yield
            eng.decide(r, placement="home")

    def round_() -> None:
        times["sync"].append(timed(sync_batch))
        raw = state.requests(BATCH, seed=4)
        times["raw"].append(timed(lambda: loop.run_until_complete(raw_session(raw))))
        reqs = state.requests(BATCH, seed=2)
        times["handoff"].append(timed(lambda: loop.run_until_complete(_session(handoff, reqs)())))

    def inline_batch(reqs: list[dict[str, Any]]) -> None:
        loop.run_until_complete(_session(inline, reqs)())

    try:
        round_()  # untimed: threads started, loop primed
        inline_batch(state.requests(BATCH, seed=3))
        times = {"sync": [], "raw": [], "handoff": []}
        per_inline: list[float] = []

        def setup() -> tuple[tuple[list[dict[str, Any]]], dict[str, Any]]:
            round_()
            return (state.requests(BATCH, seed=3),), {}

        benchmark.pedantic(inline_batch, setup=setup, rounds=rounds, iterations=1)
        if not benchmark.disabled and benchmark.stats:
            per_inline = list(benchmark.stats.stats.data)
        else:
            per_inline = [timed(lambda: inline_batch(state.requests(BATCH, seed=3)))]

        def median_us(xs: list[float]) -> float:
            return round(statistics.median(xs) / BATCH * 1e6, 2)

        benchmark.extra_info.update({
            "decides_per_batch": BATCH,
            "sync_us_per_decide": median_us(times["sync"]),
            "raw_inline_us_per_decide": median_us(times["raw"]),
            "inline_us_per_decide": median_us(per_inline),
            "handoff_us_per_decide": median_us(times["handoff"]),
            "sync_min_us": round(min(times["sync"]) / BATCH * 1e6, 2),
            "raw_inline_min_us": round(min(times["raw"]) / BATCH * 1e6, 2),
            "inline_min_us": round(min(per_inline) / BATCH * 1e6, 2),
            "handoff_min_us": round(min(times["handoff"]) / BATCH * 1e6, 2),
            "inline_calls": inline.inline_calls_,
            "handed_off": handoff.handed_off_,
        })
        print(f"\n{loop_name}: us per decide {benchmark.extra_info}")
        assert inline.handed_off_ == 0 and handoff.inline_calls_ == 0
    finally:
        inline.close()
        handoff.close()
        loop.close()
