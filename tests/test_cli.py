"""The ``decisioner`` command: JSON outputs carry the promised keys; errors are one line with
exit code 2 (usage) or 1 (bad data)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from decisioner.cli import main

LAT_KEYS = {"p50", "p95", "p99", "p999", "max"}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main([*argv, "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_generate_writes_a_world(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = run_json(capsys, "generate", "--people", "200", "--items", "100", "--seed", "4", "--out", str(tmp_path / "w"))
    assert out["people"] == 200 and out["items"] == 100
    for name in ("catalog.jsonl", "events.jsonl", "truth.npz", "config.toml"):
        assert (tmp_path / "w" / name).exists()


def test_simulate_json(capsys: pytest.CaptureFixture[str], small_world: str) -> None:
    out = run_json(capsys, "simulate", "--world", small_world, "--max-events", "4000")
    assert set(out["ctr"]) == {"engine", "random", "popular"}  # type: ignore[arg-type]
    assert "lift_vs_random" in out and "lift_vs_popular" in out
    assert LAT_KEYS <= set(out["latency_us"])  # type: ignore[arg-type]


def test_replay_json(capsys: pytest.CaptureFixture[str], small_world: str) -> None:
    out = run_json(capsys, "replay", str(Path(small_world) / "events.jsonl"), "--world", small_world, "--max-events", "2000")
    assert out["events"] == 2000
    assert out["events_per_s"] > 0  # type: ignore[operator]
    assert LAT_KEYS <= set(out["latency_us"])  # type: ignore[arg-type]
    assert out["over_30ms"] == out["latency_us"]["over_30ms"]  # type: ignore[index]


def test_replay_with_config_and_catalog(capsys: pytest.CaptureFixture[str], small_world: str) -> None:
    w = Path(small_world)
    out = run_json(capsys, "replay", str(w / "events.jsonl"), "--config", str(w / "config.toml"),
                   "--catalog", str(w / "catalog.jsonl"), "--max-events", "500")
    assert out["events"] == 500


def test_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "bench", "--profiles", "2000", "--items", "300", "--decisions", "300")
    assert out["profiles"] == 2000 and out["items"] == 300
    assert out["events_per_s"] > 0  # type: ignore[operator]
    assert LAT_KEYS | {"over_30ms"} <= set(out["latency_us"])  # type: ignore[arg-type]
    assert out["memory"]["bytes_per_profile"] > 0  # type: ignore[index]


def test_human_output(capsys: pytest.CaptureFixture[str], small_world: str) -> None:
    assert main(["simulate", "--world", small_world, "--max-events", "2000"]) == 0
    text = capsys.readouterr().out
    assert "lift vs random" in text and "p99" in text


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str], small_world: str) -> None:
    code = main(["replay", str(Path(small_world) / "events.jsonl")])
    assert code == 2
    assert capsys.readouterr().err == "error: replay needs --world DIR, or both --config and --catalog\n"


def test_bad_data_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[identity]\nhash_key = "zz"\n')
    (tmp_path / "catalog.jsonl").write_text('{"id": "a"}\n')
    code = main(["replay", str(tmp_path / "e.jsonl"), "--world", str(tmp_path)])
    assert code == 1
    assert capsys.readouterr().err == "error: expected a hex string, got 'zz'... - at `identity.hash_key`\n"


def test_console_script_and_argparse_usage() -> None:
    exe = shutil.which("decisioner") or str(Path(sys.executable).parent / "decisioner")
    proc = subprocess.run([exe, "frobnicate"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
    proc = subprocess.run([exe, "warmup", "--json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["warm_up_s"] >= 0


@pytest.mark.parametrize("flush", ["event", "interval"])
def test_replay_with_the_event_log_on(capsys: pytest.CaptureFixture[str], small_world: str, tmp_path: Path, flush: str) -> None:
    from decisioner import Engine
    from decisioner.eventlog import read_log

    log = tmp_path / "events.log"
    out = run_json(capsys, "replay", str(Path(small_world) / "events.jsonl"), "--world", small_world,
                   "--max-events", "800", "--log", str(log), "--flush", flush)
    assert out["log"]["flush"] == flush and out["log"]["bytes"] == log.stat().st_size  # type: ignore[index]
    assert len(read_log(log).payloads) == 800
    recovered = Engine.from_world(small_world, seed=0)
    recovered.attach_log(log)
    assert recovered.ops_ == 800 and recovered.events_ == 800
