"""Open-loop replay: every event processed, latency report shape, bad lines rejected and
skipped while the engine keeps serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from decisioner import Engine
from decisioner.replay import SLA_US, latency_summary, replay


def test_latency_summary_percentiles() -> None:
    lat = np.arange(1, 1001, dtype=np.float64)
    s = latency_summary(lat)
    assert s["count"] == 1000 and s["max"] == 1000.0
    assert s["p50"] == pytest.approx(np.percentile(lat, 50))
    assert s["p999"] == round(float(np.percentile(lat, 99.9)), 2)  # reported to 0.01 us
    assert s["over_30ms"] == 0
    assert latency_summary(np.array([SLA_US + 1.0]))["over_30ms"] == 1
    assert latency_summary(np.empty(0))["count"] == 0


def test_replay_world_log(small_world: str) -> None:
    engine = Engine.from_world(small_world, seed=0)
    out = replay(Path(small_world) / "events.jsonl", engine, max_events=4000)
    assert out["events"] == 4000 and out["rejected"] == 0
    assert out["decisions"] > 0
    lat = out["latency_us"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert out["events_per_s"] > 0
    assert out["over_30ms"] == lat["over_30ms"]
    assert engine.events_ == 4000
    assert len(engine.decision_log) > 0


def test_replay_rejects_bad_lines_and_keeps_serving(small_world: str, tmp_path: Path) -> None:
    good = (Path(small_world) / "events.jsonl").read_bytes().splitlines()[:50]
    bad = [
        b'{"type": "view", "time": 1, "ids": {"cookie": "x"}}',  # absurd time
        b'{"type": "view", "time": 1700000000000, "ids": {"cookie": "x"}, "item": "nope"}',  # unknown item
        b"\xff\xfe not json",
        b'{"type": "teleport", "time": 1700000000000, "ids": {"cookie": "x"}}',
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(good[:25] + bad + good[25:]) + b"\n")
    engine = Engine.from_world(small_world, seed=0)
    out = replay(path, engine)
    assert out["events"] == 54
    assert out["rejected"] == 4
    assert engine.events_ == 50
