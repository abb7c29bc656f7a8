"""Event log (write-ahead): format, damaged tails, flush policies, exact recovery, and a crash
test that kills a writer with SIGKILL at seeded random moments."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from decisioner import Engine
from decisioner.errors import ConfigError, DecisionerWarning, NotReadyError
from decisioner.eventlog import LOG_MAGIC, LOG_VERSION, EventLog, read_log
from decisioner.journal import Record, TrackOp, read_records
from decisioner.schemas import View
from decisioner.snapshot import SNAPSHOT_FORMAT, read_snapshot, write_snapshot
from statecheck import assert_same, engine_state


def rec(i: int) -> bytes:
    return b"record %d padded to a realistic size" % i


def seqs(payloads: list[bytes]) -> list[int]:
    return [int(p.split()[1]) for p in payloads]


def test_append_and_read_back(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.log")
    for i in range(5):
        log.append(rec(i))
    log.close()
    scan = read_log(tmp_path / "events.log")
    assert seqs(scan.payloads) == [0, 1, 2, 3, 4]
    assert scan.problem is None
    assert scan.good_bytes == (tmp_path / "events.log").stat().st_size
    with pytest.raises(NotReadyError, match=re.escape(f"the event log {str(tmp_path / 'events.log')!r} is closed")):
        log.append(rec(5))


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_truncated_tail_is_reported_and_cut_keeping_earlier_records(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "events.log"
    log = EventLog(path)
    for i in range(4):
        log.append(rec(i))
    log.close()
    full = path.read_bytes()
    path.write_bytes(full[:-cut])  # a write torn by a crash
    scan = read_log(path)
    assert seqs(scan.payloads) == [0, 1, 2]
    assert scan.problem is not None and scan.problem.startswith("truncated record")
    with pytest.warns(DecisionerWarning, match="kept the 3 records before it"):
        log2 = EventLog(path)
    log2.append(rec(3))
    log2.close()
    assert seqs(read_log(path).payloads) == [0, 1, 2, 3]


def test_corrupt_record_is_detected_by_crc(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = EventLog(path)
    for i in range(3):
        log.append(rec(i))
    log.close()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the last payload
    path.write_bytes(bytes(data))
    scan = read_log(path)
    assert seqs(scan.payloads) == [0, 1]
    assert scan.problem is not None and "CRC mismatch" in scan.problem


def test_not_a_log_and_unknown_version(tmp_path: Path) -> None:
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"NOTALOG!" + b"\x01\x00\x00\x00")
    with pytest.raises(ConfigError, match=re.escape(f"expected an event log starting with {LOG_MAGIC!r}, got b'NOTALOG!'")):
        read_log(bad)
    old = tmp_path / "old.log"
    old.write_bytes(LOG_MAGIC + (99).to_bytes(4, "little"))
    with pytest.raises(ConfigError, match=re.escape(f"expected event log format version {LOG_VERSION}, got 99")):
        read_log(old)
    old.write_bytes(LOG_MAGIC + (1).to_bytes(4, "little"))  # version 1 held raw identifiers
    with pytest.raises(ConfigError, match=re.escape(f"expected event log format version {LOG_VERSION}, got 1")):
        read_log(old)


OLD_KEYS = (
    "its identifier keys are xxh3 hashes, and format 4 keys are keyed BLAKE2b: old keys cannot be converted, "
    "because raw identifiers are never stored; rebuild the state with this version from the source events and "
    "CRM loads, or keep running the version that wrote it; see CHANGELOG.md"
)


def test_a_log_of_xxh3_keys_is_refused_with_how_to_rebuild(tmp_path: Path) -> None:
    assert LOG_VERSION == 4
    old = tmp_path / "events.log"
    old.write_bytes(LOG_MAGIC + (3).to_bytes(4, "little"))
    msg = f"expected event log format version 4, got 3 - at {str(old)!r} ({OLD_KEYS})"
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        read_log(old)


@pytest.mark.parametrize("fmt", [3, 2, 1])
def test_a_snapshot_of_xxh3_keys_is_refused_with_how_to_rebuild(tmp_path: Path, fmt: int) -> None:
    assert SNAPSHOT_FORMAT == 4
    snap = write_snapshot(tmp_path, ops=0, header={}, config=b"{}", catalog_lines=[], components={})
    head = json.loads((snap / "header.json").read_text())
    if fmt == 1:  # format 1 had meta.json and no header
        (snap / "header.json").rename(snap / "meta.json")
    else:
        (snap / "header.json").write_text(json.dumps({**head, "format": fmt}))
    msg = f"expected snapshot format 4, got {fmt} - at {str(snap)!r} ({OLD_KEYS})"
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        read_snapshot(tmp_path)
    (snap / ("meta.json" if fmt == 1 else "header.json")).write_text(json.dumps({**head, "format": 5}))
    if fmt == 1:
        (snap / "meta.json").rename(snap / "header.json")
    msg = f"expected snapshot format 4, got 5 - at {str(snap)!r} (open it with the decisioner version that wrote it)"
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        read_snapshot(tmp_path)


def test_interval_policy_buffers_then_writes(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = EventLog(path, flush="interval", interval_ms=10_000.0)
    log.append(rec(0))
    assert read_log(path).payloads == []  # still in the process buffer
    log.flush_now()
    assert len(read_log(path).payloads) == 1
    log.append(rec(1))
    log.close()  # close flushes
    assert len(read_log(path).payloads) == 2


def test_interval_flusher_thread_writes_without_new_appends(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = EventLog(path, flush="interval", interval_ms=5.0)
    log.append(rec(0))
    deadline = time.monotonic() + 5.0
    while not read_log(path).payloads and time.monotonic() < deadline:
        time.sleep(0.01)
    log.close()
    assert len(read_log(path).payloads) == 1


def test_fsync_policy_and_reset(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = EventLog(path, fsync=True)
    log.append(rec(0))
    log.reset()
    assert read_log(path).payloads == []
    log.append(rec(7))
    log.close()
    assert seqs(read_log(path).payloads) == [7]


def test_bad_policy_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("`flush` must be 'event' or 'interval', got 'sometimes'")):
        EventLog(tmp_path / "x.log", flush="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=re.escape("`interval_ms` must be > 0, got 0")):
        EventLog(tmp_path / "x.log", flush="interval", interval_ms=0)


# ---------------------------------------------------------------------------------- engine


def feed(engine: Engine, lines: list[bytes]) -> None:
    for ln in lines:
        if b'"type":"view"' in ln or b'"type": "view"' in ln:
            engine.decide(ln, placement="home_recs")
        else:
            engine.track(ln)


def world_lines(world: str, n: int) -> list[bytes]:
    return (Path(world) / "events.jsonl").read_bytes().splitlines()[:n]


def test_recovery_replays_the_log_exactly(small_world: str, tmp_path: Path) -> None:
    lines = world_lines(small_world, 1500)
    live = Engine.from_world(small_world, seed=0)
    live.attach_log(tmp_path / "events.log")
    feed(live, lines)
    d = live.decide(lines[0], placement="email_hero")
    live.observe({"decision_id": d.decision_id, "kind": "click", "time": d.time + 1})
    live.set_inventory(live.catalog.ids[3], 0)
    live.detach_log()
    recovered = Engine.from_world(small_world, seed=0)
    recovered.attach_log(tmp_path / "events.log")
    assert_same(engine_state(live), engine_state(recovered))
    assert recovered.catalog.inventory[3] == 0
    # both go on identically
    nxt = world_lines(small_world, 1510)[1500:]
    feed(live, nxt)
    feed(recovered, nxt)
    assert_same(engine_state(live), engine_state(recovered))


def test_rejected_events_are_not_logged(small_world: str, tmp_path: Path) -> None:
    e = Engine.from_world(small_world, seed=0)
    log = e.attach_log(tmp_path / "events.log")
    with pytest.raises(ConfigError.__mro__[1]):  # any DecisionerError
        e.track({"type": "view", "time": 1, "ids": {"cookie": "x"}})
    e.track({"type": "view", "time": 1_700_000_000_000, "ids": {"cookie": "x"}})
    assert log.records_ == 1 and e.ops_ == 1


def test_log_holds_keyed_hashes_never_raw_identifiers(small_world: str, tmp_path: Path) -> None:
    e = Engine.from_world(small_world, seed=0)
    e.attach_log(tmp_path / "events.log")
    t = 1_700_000_000_000
    e.track({"type": "view", "time": t, "ids": {"email": "Ada.Lovelace@Example.com", "cookie": "ck-ada-77"}})
    e.decide({"type": "view", "time": t + 1, "ids": {"phone": "+44 20 7946 0958"}}, placement="home_recs")
    e.detach_log()
    raw = (tmp_path / "events.log").read_bytes()
    for secret in (b"ada", b"Ada", b"lovelace", b"ck-ada-77", b"7946", b"0958"):
        assert secret not in raw
    recs = read_records(tmp_path / "events.log")
    assert [type(r.op).__struct_config__.tag for r in recs] == ["track", "decide"]
    ids = recs[0].op.event.ids
    assert sorted(ids) == ["cookie", "email"] and all(len(v) == 32 for v in ids.values())
    # replay links exactly the keys the live engine linked (nothing is hashed twice)
    again = Engine.from_world(small_world, seed=0)
    again.attach_log(tmp_path / "events.log")
    assert_same(engine_state(e), engine_state(again))
    assert again.profile_row({"cookie": "ck-ada-77"}) == e.profile_row({"email": "ada.lovelace@example.com"}) >= 0


def test_a_failed_attach_leaves_the_engine_working_without_a_log(small_world: str, tmp_path: Path) -> None:
    t = 1_700_000_000_000
    first = Engine.from_world(small_world, seed=0)
    first.track({"type": "view", "time": t, "ids": {"cookie": "a"}})
    first.attach_log(tmp_path / "events.log")  # the log starts at record 1
    first.track({"type": "view", "time": t + 1, "ids": {"cookie": "b"}})
    first.detach_log()
    e = Engine.from_world(small_world, seed=0)
    with pytest.raises(NotReadyError, match=re.escape("expected log record 0, got 1: the log has a gap")):
        e.attach_log(tmp_path / "events.log")
    assert e.journal.log is None  # not the log it closed: later changes are not lost half-way
    assert e.track({"type": "view", "time": t + 2, "ids": {"cookie": "c"}}) >= 0 and e.ops_ == 1


def test_hashed_log_ids_that_are_not_hex_are_rejected(small_world: str) -> None:
    e = Engine.from_world(small_world, seed=0)
    ev = View(time=1_700_000_000_000, ids={"cookie": "not-a-hash"})
    with pytest.raises(ConfigError.__mro__[1], match=re.escape("32 hex digits")):
        e.apply_record(Record(0, TrackOp(ev)))
    assert e.ops_ == 0 and e.identity.n_nodes == 0


CHILD = r"""
import sys
from pathlib import Path
from decisioner import Engine, warm_up
warm_up()
world, log_path = sys.argv[1], sys.argv[2]
engine = Engine.from_world(world, seed=0)
engine.attach_log(log_path, flush="event")
lines = (Path(world) / "events.jsonl").read_bytes().splitlines()
out = sys.stdout
print("ready", flush=True)
for i, ln in enumerate(lines):
    if b'"type":"view"' in ln:
        engine.decide(ln, placement="home_recs")
    else:
        engine.track(ln)
    out.write(f"{i}\n")  # acknowledged: this call has returned
    out.flush()
"""


@pytest.mark.slow
def test_crash_kill_recovers_every_acknowledged_event(small_world: str, tmp_path: Path) -> None:
    """SIGKILL a writer at 20 seeded random moments; after recovery every event whose call had
    returned (acknowledged on stdout) is reflected, and the state equals a reference engine fed
    exactly the events in the log (the log is always a prefix of the feed)."""
    rng = np.random.default_rng(7)
    lines = world_lines(small_world, 10**9)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    recovered_counts = []
    for trial in range(20):
        (tmp_path / f"trial{trial}").mkdir()
        log_path = tmp_path / f"trial{trial}" / "events.log"  # one writer per directory
        proc = subprocess.Popen(
            [sys.executable, str(script), small_world, str(log_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read() if proc.stderr else b""
        time.sleep(float(rng.uniform(0.02, 0.6)))
        os.kill(proc.pid, signal.SIGKILL)
        acked_out, _ = proc.communicate()
        acked = [int(x) for x in acked_out.split()]
        n_acked = acked[-1] + 1 if acked else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DecisionerWarning)  # a torn tail record is expected
            recovered = Engine.from_world(small_world, seed=0)
            recovered.attach_log(log_path)
            recovered.detach_log()
        k = recovered.ops_
        assert k >= n_acked, f"trial {trial}: {n_acked} acknowledged, {k} recovered"
        assert k <= len(lines)
        reference = Engine.from_world(small_world, seed=0)
        feed(reference, lines[:k])
        assert_same(engine_state(reference), engine_state(recovered))
        recovered_counts.append(k)
    assert len(set(recovered_counts)) > 10  # the kills landed at many different moments
