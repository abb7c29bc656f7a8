"""Replay throughput, batched against one call per event, side by side on the demo world.

The world is ``make demo``'s (20,000 people, 5,000 items, seed 0; about 326,000 events), replayed
open-loop as ``decisioner replay`` does it: views decided for ``home_recs``, email opens for
``email_hero``, everything else tracked. ``test_replay[1]`` is the one-by-one path
(``--batch 1``), ``test_replay[4096]`` the batch path (the CLI's default); both get a fresh
engine, outside the timed region. Each records ``events_per_s`` (wall clock) and
``cpu_events_per_s`` (process CPU time: a busy shared machine inflates the wall clock) in
``extra_info``, and the second prints both side by side.

``DECISIONER_BENCH_REPLAY_EVENTS`` replays only the first N events. Under
``--benchmark-disable`` (the CI smoke) the world is a small one (800 people, 300 items) and
2,000 events.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from decisioner import Engine
from decisioner.replay import replay

_RESULTS: list[tuple[int, dict[str, Any]]] = []


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, smoke: bool) -> str:
    from decisioner.datasets.synthetic import WorldSpec, generate_world, write_world

    spec = WorldSpec(n_people=800, n_items=300, seed=0) if smoke else WorldSpec(n_people=20_000, n_items=5_000, seed=0)
    out = tmp_path_factory.mktemp("demo-world")
    write_world(generate_world(spec), out)
    return str(out)


@pytest.fixture(scope="module")
def max_events(smoke: bool) -> int | None:
    if smoke:
        return 2_000
    n = os.environ.get("DECISIONER_BENCH_REPLAY_EVENTS")
    return int(n) if n else None


def _side_by_side() -> str:
    lines = ["", f"replay throughput ({_RESULTS[0][1]['events']} events)",
             f"  {'batch':>6} {'events/s':>10} {'CPU events/s':>13} {'decide p50 us':>14} {'p99 us':>8}"]
    for size, out in sorted(_RESULTS):
        lat = out["latency_us"]
        lines.append(
            f"  {size:>6} {out['events_per_s']:>10,.0f} {out['cpu_events_per_s']:>13,.0f} {lat['p50']:>14.1f}"
            f" {lat['p99']:>8.1f}"
        )
    return "\n".join(lines)


@pytest.mark.benchmark(group="replay")
@pytest.mark.parametrize("batch", [1, 4096])
def test_replay(
    benchmark: Any, world: str, max_events: int | None, batch: int, capsys: pytest.CaptureFixture[str]
) -> None:
    events = Path(world) / "events.jsonl"
    results: list[dict[str, Any]] = []

    def setup() -> tuple[tuple[Engine], dict[str, Any]]:
        return (Engine.from_world(world, seed=0),), {}

    def run(engine: Engine) -> None:
        c0 = time.process_time()
        out = replay(events, engine, max_events=max_events, batch=batch)
        out["cpu_events_per_s"] = round(out["events"] / max(time.process_time() - c0, 1e-9), 1)
        results.append(out)

    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    out = results[-1]
    assert out["rejected"] == 0 and out["decisions"] > 0 and out["batch"] == batch
    benchmark.extra_info.update(
        {k: out[k] for k in ("events", "decisions", "events_per_s", "cpu_events_per_s", "decode_us_per_event")}
    )
    _RESULTS.append((batch, out))
    if len(_RESULTS) == 2:  # both paths ran: the figures side by side
        with capsys.disabled():
            print(_side_by_side())
