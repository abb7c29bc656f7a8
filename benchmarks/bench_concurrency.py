"""Read scaling: ``Engine.recommend`` (shared lock, kernels without the GIL) from 1 and from 2
threads over the same requests; ``extra_info`` carries the throughputs and their ratio."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import pytest

from decisioner.bench import BenchState


def _requests(state: BenchState, n: int) -> list[tuple[dict[str, str], int]]:
    return [({"cookie": state.cookie(i % state.people)}, state.now) for i in range(0, n * 7919, 7919)]


def _run(state: BenchState, reqs: list[tuple[dict[str, str], int]], threads: int) -> float:
    """Seconds to serve every request, split over ``threads`` threads."""
    eng = state.engine
    chunks = [reqs[i::threads] for i in range(threads)]
    counts = [0] * threads

    def work(k: int) -> None:
        for ids, now in chunks[k]:
            counts[k] += len(eng.recommend(ids, placement="home", now=now).slots)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    seconds = time.perf_counter() - t0
    assert sum(counts) == 4 * len(reqs)
    return seconds


@pytest.mark.benchmark(group="concurrency")
def test_recommend_scales_over_two_threads(benchmark: Any, state: BenchState, smoke: bool) -> None:
    """One- and two-thread runs alternate (pairs), so drift of a shared machine hits both
    alike; the speedup is the median of the pairs' ratios."""
    reqs = _requests(state, 400 if smoke else 16000)
    ones: list[float] = []

    def pair() -> float:
        ones.append(_run(state, reqs, 1))
        return _run(state, reqs, 2)

    benchmark.pedantic(pair, rounds=1 if smoke else 7, iterations=1)
    twos = benchmark.stats.stats.data if not benchmark.disabled and benchmark.stats else [pair()]
    ratios = sorted(o / t for o, t in zip(ones, twos))
    one, two = statistics.median(ones), statistics.median(twos)
    benchmark.extra_info.update({
        "requests": len(reqs),
        "pairs": len(ratios),
        "reads_per_s_1_thread": round(len(reqs) / one, 1),
        "reads_per_s_2_threads": round(len(reqs) / two, 1),
        "speedup_2_threads": round(statistics.median(ratios), 3),
        "speedup_range": [round(ratios[0], 3), round(ratios[-1], 3)],
    })
    print(f"\nrecommend: 1 thread {len(reqs) / one:.0f}/s, 2 threads {len(reqs) / two:.0f}/s, "
          f"x{statistics.median(ratios):.2f} (median of {len(ratios)} pairs, x{ratios[0]:.2f}-x{ratios[-1]:.2f})")


@pytest.mark.benchmark(group="concurrency")
def test_recommend_many_parallel_batch(benchmark: Any, state: BenchState, smoke: bool) -> None:
    """The batch read path: one parallel kernel per batch of 256 requests, against one
    ``recommend`` call per request on one thread."""
    reqs = _requests(state, 512 if smoke else 8192)
    ids = [r[0] for r in reqs]
    now = reqs[0][1]
    one = _run(state, reqs, 1)
    eng = state.engine

    def batched() -> float:
        t0 = time.perf_counter()
        n = 0
        for j in range(0, len(ids), 256):
            n += sum(len(d.slots) for d in eng.recommend_many(ids[j : j + 256], placement="home", now=now))
        assert n == 4 * len(ids)
        return time.perf_counter() - t0

    secs = benchmark.pedantic(batched, rounds=1 if smoke else 3, iterations=1)
    benchmark.extra_info.update({
        "reads_per_s_single_calls": round(len(reqs) / one, 1),
        "reads_per_s_batched": round(len(reqs) / secs, 1),
        "speedup_batched": round(one / secs, 3),
    })
    print(f"\nrecommend: single calls {len(reqs) / one:.0f}/s, "
          f"recommend_many {len(reqs) / secs:.0f}/s, x{one / secs:.2f}")
