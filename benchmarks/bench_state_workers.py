"""Shared state on Redis for several workers (loopback, one redis-server, AOF ``everysec``): decide
p50/p99 and events/s per worker for 1, 2 and 4 worker processes beside the embedded engine in
one run, decide latency of one worker with a warm local cache, and memory per profile in Redis
beside the embedded figure.

Sizes: a synthetic world of ``DECISIONER_BENCH_STATE_PEOPLE`` people (default 3,000; 300 under
``--benchmark-disable``) and its first ``DECISIONER_BENCH_STATE_EVENTS`` events (default 4,000;
150, with 2 workers only, under ``--benchmark-disable``). The server is started here on a
free port and stopped at the end (``tests/redis_servers.py``).

What limits the scaling on a 2-core machine: each worker is a Python process that spends most of
an event in the round trips to Redis (identity link when not cached, the compare-and-set of the
row) and in its own kernels; redis-server is a third single-threaded process. Two cores run two of
these at once at best, so 2 workers add little and 4 workers only share the same two cores (plus
the waits of ``order="person"``: a person's next event waits for the previous one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner.replay import replay
from decisioner.state import RedisState
from decisioner.state.rowcodec import RowCodec
from decisioner.state.shared import SharedEngine
from decisioner.state.workers import replay_workers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from redis_servers import RedisServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path_factory.mktemp("bench-state"), appendfsync="everysec").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, smoke: bool) -> tuple[str, str, int]:
    """(world dir, events file, number of events)."""
    from decisioner.datasets.synthetic import WorldSpec, generate_world, write_world

    people = 300 if smoke else int(os.environ.get("DECISIONER_BENCH_STATE_PEOPLE", "3000"))
    n = 150 if smoke else int(os.environ.get("DECISIONER_BENCH_STATE_EVENTS", "4000"))
    out = tmp_path_factory.mktemp("state-world")
    write_world(generate_world(WorldSpec(n_people=people, n_items=max(200, people // 3), seed=5)), out)
    lines = [ln for ln in (out / "events.jsonl").read_text().splitlines() if ln.strip()][:n]
    events = out / "bench-events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    return str(out), str(events), len(lines)


def _row(name: str, lat: dict[str, Any], eps: float) -> dict[str, Any]:
    return {"run": name, "decide_p50_us": lat["p50"], "decide_p99_us": lat["p99"], "events_per_s": eps}


@pytest.mark.benchmark(group="state-workers")
def test_workers_beside_embedded(benchmark: Any, server: RedisServer, world: tuple[str, str, int],
                                 smoke: bool) -> None:
    """One run: the embedded replay, then 1, 2 and 4 workers over Redis; the same digest each."""
    wdir, events, n = world
    counts = (2,) if smoke else (1, 2, 4)

    def run() -> dict[str, Any]:
        eng = Engine.from_world(wdir)
        emb = replay(events, eng)
        from decisioner.cli_state import embedded_digest

        rows = [_row("embedded", emb["latency_us"], emb["events_per_s"])]
        digests = {embedded_digest(eng, events, emb)}
        for k in counts:
            out = replay_workers(events, wdir, url=server.url, workers=k, key_prefix=f"bw{k}")
            digests.add(out["state_digest"])
            for w in out["per_worker"]:
                rows.append({**_row(f"redis {k}w #{w['worker']}", w["latency_us"], w["events_per_s"]),
                             "retries": w["retries"], "waits": w["waits"]})
            rows.append({"run": f"redis {k}w total", "events_per_s": out["events_per_s"]})
        return {"rows": rows, "digests": digests}

    res = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["runs"] = res["rows"]
    print(f"\nshared state, {n} events (decide latency us, events/s per worker):")
    for r in res["rows"]:
        print("  " + ", ".join(f"{k}={v}" for k, v in r.items()))
    assert len(res["digests"]) == 1, "every backend and worker count reaches the same state"


@pytest.mark.benchmark(group="state-workers")
@pytest.mark.parametrize("max_stale_ms", [0, 1000])
def test_decide_with_warm_local_cache(benchmark: Any, server: RedisServer, world: tuple[str, str, int],
                                      smoke: bool, record_latency: Any, max_stale_ms: int) -> None:
    """One worker deciding for people whose rows and identities it has cached: the version check
    (``max_stale_ms=0``, the default) and the compare-and-set of the row, or the compare-and-set
    only (``max_stale_ms=1000``: a decision may miss another worker's update of the last second),
    and the kernels."""
    wdir, _, _ = world
    state = RedisState.from_url(server.url, key_prefix=f"warm{max_stale_ms}")
    w = SharedEngine.connect(Engine.from_world(wdir, instance="warm"), state, log="off", identity_cache_ms=60_000,
                             max_stale_ms=max_stale_ms)
    people = [{"cookie": f"warm-{i}"} for i in range(50)]
    items = w.engine.catalog.ids
    t = [1_700_000_000_000]

    def request(i: int) -> dict[str, Any]:
        t[0] += 1000
        return {"type": "view", "time": t[0], "ids": people[i % len(people)], "item": items[i % len(items)]}

    for i in range(2 * len(people)):  # warm: every person linked and cached
        w.decide(request(i), placement="home_recs")
    counter = iter(range(10**9))

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (request(next(counter)),), {"placement": "home_recs"}

    d = benchmark.pedantic(w.decide, setup=setup, rounds=20 if smoke else 3_000, warmup_rounds=1)
    record_latency()
    benchmark.extra_info["identity_cache_hits"] = w.link_hits_
    state.close()
    assert d.person >= 1 and d.slots


@pytest.mark.benchmark(group="state-workers")
def test_memory_per_profile(benchmark: Any, server: RedisServer, world: tuple[str, str, int]) -> None:
    """Bytes per profile row in Redis (``MEMORY USAGE`` of each row key, the hash and its value)
    beside the embedded stores' bytes per profile; bytes per identifier of the graph beside it."""
    wdir, events, _ = world
    state = RedisState.from_url(server.url, key_prefix="mem")
    w = SharedEngine.connect(Engine.from_world(wdir, instance="mem"), state, log="off")
    with open(events, "rb") as fh:
        for line in fh:
            try:
                w.track(line)
            except ValueError:
                continue
    w.sync()
    ident = w.identity.identity  # type: ignore[attr-defined]
    persons = sorted({pid for pid, st in ident.nodes().values() if st == 0})

    def measure() -> float:
        sizes = [w.rows.memory_usage(p) for p in persons]
        return float(np.mean(sizes))

    redis_row = benchmark.pedantic(measure, rounds=1, iterations=1)
    e = w.engine
    # the same row in the embedded stores: every row-keyed array's row, attributes, person id
    embedded = sum(a[0].nbytes for a in RowCodec(e)._row_arrays().values()) + e.attributes_.nbytes_per_profile() + 8
    value = float(np.mean([len(w.rows.fetch(p).value) for p in persons[:200]]))
    figures = {
        "profiles": len(persons), "redis_bytes_per_profile": round(redis_row, 1),
        "row_value_bytes": round(value, 1), "embedded_bytes_per_profile": embedded,
        "redis_identity_bytes_per_identifier": ident.memory()["total_bytes_per_identifier"],
    }
    benchmark.extra_info.update(figures)
    print("\nmemory per profile:", figures)
    state.close()
    assert redis_row > value > 0
