"""The ``decisioner`` command: JSON outputs carry the promised keys; errors are one line with
exit code 2 (usage) or 1 (bad data)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_bench_reports_memory_per_component_with_the_windows(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "--profiles", "500", "--items", "100", "--decisions", "300", "--churn", "1000",
            "--log-rows", "1024", "--pending", "64"]
    out = run_json(capsys, *args)
    mem = out["churn"]["memory"]  # type: ignore[index]
    assert mem["decision_log_rows"] <= 1024 and mem["decision_log_dropped_rows"] > 0
    assert mem["pending_outcomes"] == 64 and mem["components"]["decision_log"] == 8 * 128 * 64
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "memory after churn: identity " in text and "decision log 64.0 KiB" in text and "0 tombstones" in text


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
                   "--max-events", "800", "--event-log", str(log), "--flush", flush)
    assert out["event_log"]["flush"] == flush and out["event_log"]["bytes"] == log.stat().st_size  # type: ignore[index]
    assert len(read_log(log).payloads) == 800
    recovered = Engine.from_world(small_world, seed=0)
    recovered.attach_log(log)
    assert recovered.ops_ == 800 and recovered.events_ == 800


# ---------------------------------------------------------------------------------- log check / repair


def durable_dir(world: str, root: Path) -> Path:
    """A durable directory an engine wrote: a snapshot after 50 events, 30 more in its log."""
    from decisioner import Engine

    lines = (Path(world) / "events.jsonl").read_bytes().splitlines()[:80]
    e = Engine.from_world(world, seed=0)
    for ln in lines[:50]:
        e.track(ln)
    e.durable(root / "d")
    for ln in lines[50:]:
        e.track(ln)
    e.detach_log()
    return root / "d"


def record_offsets(log: Path) -> list[int]:
    from decisioner.eventlog import read_log

    offsets = [12]
    for p in read_log(log).payloads:
        offsets.append(offsets[-1] + 8 + len(p))
    return offsets


def run_log(capsys: pytest.CaptureFixture[str], *argv: str, code: int) -> dict[str, Any]:
    assert main(["log", *argv, "--json"]) == code
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_log_check_of_a_healthy_directory(capsys: pytest.CaptureFixture[str], small_world: str, tmp_path: Path) -> None:
    d = durable_dir(small_world, tmp_path)
    size = (d / "events.log").stat().st_size
    out = run_log(capsys, "check", str(d), code=0)
    snapshot = out.pop("snapshot")
    assert Path(snapshot).parent == d and Path(snapshot).name.startswith("snapshot-")
    assert out == {
        "path": str(d / "events.log"), "expected_by_snapshot": True, "exists": True, "healthy": True,
        "kind": "none", "records": 30, "intact_bytes": size, "size": size, "damage_at": None, "problem": None,
        "bytes_after": 0, "intact_records_after": 0, "intact_bytes_after": 0,
    }
    assert main(["log", "check", str(d / "events.log")]) == 0  # a file path too, in words
    assert capsys.readouterr().out == f"{d / 'events.log'}: healthy, 30 records ({size} bytes)\n"


def test_log_check_and_repair_of_damage_before_the_end(capsys: pytest.CaptureFixture[str], small_world: str,
                                                       tmp_path: Path) -> None:
    d = durable_dir(small_world, tmp_path)
    log = d / "events.log"
    offsets = record_offsets(log)
    data = bytearray(log.read_bytes())
    data[offsets[12] + 40] ^= 0x08
    log.write_bytes(bytes(data))
    n = len(data)
    out = run_log(capsys, "check", str(d), code=1)
    assert (out["kind"], out["healthy"], out["records"], out["damage_at"]) == ("damaged", False, 12, offsets[12])
    assert (out["problem"], out["bytes_after"]) == ("corrupt record, CRC mismatch", n - offsets[12])
    assert (out["intact_records_after"], out["intact_bytes_after"]) == (17, n - offsets[13])
    assert main(["log", "check", str(d)]) == 1
    assert capsys.readouterr().out == (
        f"{log}: damaged at byte {offsets[12]} (corrupt record, CRC mismatch); 12 intact records ({offsets[12]} "
        f"bytes) before it, 17 intact records ({n - offsets[13]} of {n - offsets[12]} bytes) after it\n"
        f"  opening refuses; `decisioner log repair {d}` keeps the 12 records and moves the {n - offsets[12]} "
        "bytes after them into a file of their own\n"
    )
    assert log.read_bytes() == bytes(data)  # check changes nothing
    out = run_log(capsys, "repair", str(d), code=0)
    moved = Path(out.pop("moved_to"))
    assert out == {
        "path": str(log), "kind": "damaged", "problem": "corrupt record, CRC mismatch", "created": False,
        "kept_records": 12, "kept_bytes": offsets[12], "moved_bytes": n - offsets[12], "moved_intact_records": 17,
    }
    assert re.fullmatch(r"events\.log\.damaged-\d{8}T\d{6}Z", moved.name) and moved.parent == d
    assert log.read_bytes() == bytes(data[: offsets[12]]) and moved.read_bytes() == bytes(data[offsets[12] :])
    assert run_log(capsys, "check", str(d), code=0)["records"] == 12
    assert main(["log", "repair", str(d)]) == 0
    assert capsys.readouterr().out == f"{log}: nothing to repair; 12 intact records\n"


def test_log_check_and_repair_of_a_torn_tail_in_words(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from decisioner.eventlog import EventLog

    log = tmp_path / "events.log"
    ev = EventLog(log)
    for i in range(3):
        ev.append(b"record %d" % i)
    ev.close()
    whole = log.read_bytes()
    log.write_bytes(whole + b"\x20\x00\x00\x00\xaa\xbb\xcc\xdd\x01")
    assert main(["log", "check", str(log)]) == 1
    assert capsys.readouterr().out == (
        f"{log}: a torn write at byte {len(whole)} (truncated record, 1 of 32 bytes); 3 intact records "
        f"({len(whole)} bytes) before it, 0 intact records (0 of 9 bytes) after it\n"
        f"  opening cuts the torn bytes with a warning; `decisioner log repair {log}` keeps the 3 records and "
        "moves the 9 bytes after them into a file of their own\n"
    )
    assert main(["log", "repair", str(log)]) == 0
    text = capsys.readouterr().out
    moved = text.rsplit(" to ", 1)[1].strip()
    assert text == f"{log}: kept 3 intact records ({len(whole)} bytes); moved the 9 bytes after them (0 intact " \
        f"records) to {moved}\n"
    assert log.read_bytes() == whole and Path(moved).read_bytes() == b"\x20\x00\x00\x00\xaa\xbb\xcc\xdd\x01"


def test_log_check_and_repair_of_a_missing_log(capsys: pytest.CaptureFixture[str], small_world: str,
                                               tmp_path: Path) -> None:
    d = durable_dir(small_world, tmp_path)
    (d / "events.log").unlink()
    out = run_log(capsys, "check", str(d), code=1)
    assert (out["kind"], out["exists"], out["healthy"], out["expected_by_snapshot"]) == ("missing", False, False, True)
    assert main(["log", "check", str(d)]) == 1
    assert capsys.readouterr().out == (
        f"{d / 'events.log'}: missing, but snapshot {out['snapshot']} expects it (what was logged after it is gone)\n"
        f"  opening refuses; restore the file, or start an empty log with `decisioner log repair {d}`\n"
    )
    assert main(["log", "repair", str(d)]) == 0
    assert capsys.readouterr().out == (
        f"{d / 'events.log'}: was missing; started an empty log (what was logged after the snapshot is lost)\n"
    )
    assert run_log(capsys, "check", str(d), code=0)["records"] == 0


def test_log_commands_on_what_is_not_a_log_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "x.log").write_bytes(b"NOTALOG!\x03\x00\x00\x00")
    assert main(["log", "repair", str(tmp_path / "x.log")]) == 1
    assert capsys.readouterr().err == (
        f"error: expected an event log starting with b'DCSNWAL1', got b'NOTALOG!' - at {str(tmp_path / 'x.log')!r}\n"
    )
    assert main(["log", "check", str(tmp_path / "nope.log")]) == 1
    assert capsys.readouterr().err == f"error: no event log at {str(tmp_path / 'nope.log')!r}\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["log", "check", str(empty)]) == 0
    assert capsys.readouterr().out == f"{empty / 'events.log'}: no log, and no snapshot expects one\n"
