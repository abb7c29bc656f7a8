"""Batch ingestion (``Engine.ingest_many``, ``replay(..., batch=N)``) gives what one call per event
gives: the same decisions, the same state of every stage, the same write-ahead log, on a
generated world with merges, consent changes, erasure mid-stream, bad lines and decisions."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from decisioner import Engine
from decisioner.batch import default_decide_on
from decisioner.durability import engine_state
from decisioner.errors import ConfigError, DecisionerError, SchemaError, UnknownPlacementError
from decisioner.journal import ForgetOp, read_records
from decisioner.replay import replay
from decisioner.schemas import decode_event, decode_event_lines

#: events of the world log replayed by each test; erasure happens before event ERASE_AT
N_EVENTS = 2500
ERASE_AT = 1300


def _stream(world: str) -> tuple[list[bytes], int]:
    """The world's first events with consent changes (withdrawn, granted, GPC, one purpose on
    one channel), malformed lines and an unknown item mixed in; and where the erasure comes."""
    lines = (Path(world) / "events.jsonl").read_bytes().splitlines()[:N_EVENTS]
    out: list[bytes] = []
    cut = 0
    for j, ln in enumerate(lines):
        if j == ERASE_AT:
            cut = len(out)
        if j % 53 == 7:
            ev = json.loads(ln)
            ev["consent"] = {"personalization": False} if j % 2 else {"personalization": True, "analytics": True}
            ln = json.dumps(ev).encode()
        elif j % 71 == 11:
            ev = json.loads(ln)
            ev["gpc"] = True
            ln = json.dumps(ev).encode()
        elif j % 89 == 13:
            ev = json.loads(ln)
            ev["consent"] = {"analytics.email": False}
            ln = json.dumps(ev).encode()
        out.append(ln)
        if j % 401 == 5:
            out.append(b'{"type": "view", "time": 1, "ids": {"cookie": "x"}}')  # absurd time
        if j % 503 == 9:
            out.append(b'{"type": "view", "time": 1700000000000, "ids": {"cookie": "x"}, "item": "nope"}')
        if j == 600:
            out.append(b"\xff\xfe not json")
    return out, cut


def _erased(lines: list[bytes]) -> dict[str, str]:
    """Identifiers of the last view in ``lines`` (a decided event): the person erased."""
    for ln in reversed(lines):
        try:
            ev = decode_event(ln)
        except DecisionerError:
            continue
        if str(ev.__struct_config__.tag) == "view" and not ev.consent:
            return dict(ev.ids)
    raise AssertionError("no view in the stream")


def _one_by_one(engine: Engine, lines: list[bytes], decide_on: dict[str, str]) -> tuple[list[Any], int]:
    decisions, rejected = [], 0
    for ln in lines:
        try:
            ev = decode_event(ln)
            placement = decide_on.get(str(ev.__struct_config__.tag))
            if placement is None:
                engine.track(ev)
            else:
                decisions.append(engine.decide(ev, placement=placement))
        except DecisionerError:
            rejected += 1
    return decisions, rejected


def _batched(engine: Engine, lines: list[bytes], decide_on: dict[str, str], size: int) -> tuple[list[Any], int]:
    decisions, rejected = [], 0
    for lo in range(0, len(lines), size):
        got = engine.ingest_many(lines[lo : lo + size], decide_on=decide_on, errors="skip")
        decisions.extend(got.decisions)
        rejected += len(got.rejected)
        assert got.rows.shape == (len(lines[lo : lo + size]),)
        assert np.all(got.rows[got.decided] >= 0)
    return decisions, rejected


def _run(
    world: str, stream: tuple[list[bytes], int], size: int | None, log: Path | None = None
) -> tuple[Engine, list[Any], int]:
    """The stream through a fresh engine, one call per event (``size`` None) or in batches, with
    the erasure of one person between the two halves."""
    engine = Engine.from_world(world, seed=5)
    if log is not None:
        engine.attach_log(log)
    decide_on = default_decide_on(engine)
    lines, cut = stream
    out: list[Any] = []
    rejected = 0
    for part, erase in ((lines[:cut], True), (lines[cut:], False)):
        d, r = _one_by_one(engine, part, decide_on) if size is None else _batched(engine, part, decide_on, size)
        out.extend(d)
        rejected += r
        if erase:
            res = engine.forget(row=engine.profile_row(_erased(part)), actor="test")
            assert res["removed"]["people"] == 1 and res["removed"]["decisions"] > 0
    if log is not None:
        engine.detach_log()
    return engine, out, rejected


def _plain(decisions: list[Any]) -> list[Any]:
    return [msgspec.to_builtins(msgspec.structs.replace(d, latency_us=0.0)) for d in decisions]


def _assert_same_state(a: Engine, b: Engine) -> None:
    sa, sb = engine_state(a), engine_state(b)
    assert sa.keys() == sb.keys()
    for name in sa:
        if name == "audit":  # the audit log holds the wall-clock time of the erasure request
            continue
        (arr_a, meta_a), (arr_b, meta_b) = sa[name], sb[name]
        assert arr_a.keys() == arr_b.keys(), name
        for key in arr_a:
            assert np.array_equal(arr_a[key], arr_b[key]), f"{name}.{key}"
        assert meta_a == meta_b, name
    assert a.identity.types == b.identity.types and a.identity.sources == b.identity.sources


@pytest.fixture(scope="module")
def stream(small_world: str) -> tuple[list[bytes], int]:
    return _stream(small_world)


@pytest.fixture(scope="module")
def reference(small_world: str, stream: list[bytes]) -> tuple[Engine, list[Any], int]:
    return _run(small_world, stream, None)


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_batch_equals_one_by_one(small_world: str, stream: Any, reference: Any, size: int) -> None:
    ref_engine, ref_decisions, ref_rejected = reference
    engine, decisions, rejected = _run(small_world, stream, size)
    assert ref_rejected == rejected == len(stream[0]) - N_EVENTS
    assert len(ref_decisions) > 500
    assert _plain(decisions) == _plain(ref_decisions)
    _assert_same_state(ref_engine, engine)
    # the stream exercised what it must: merges, consent changes, an erasure
    assert ref_engine.people.next_ > ref_engine.identity.n_profiles + 1  # people merged (and one erased)
    assert ref_engine.consent.n_history_ > 0


def test_batch_log_is_the_same_and_recovers(small_world: str, stream: Any, tmp_path: Path) -> None:
    ref_engine, ref_decisions, _ = _run(small_world, stream, None, log=tmp_path / "one.log")
    _, decisions, _ = _run(small_world, stream, 7, log=tmp_path / "batch.log")
    assert _plain(decisions) == _plain(ref_decisions)

    def records(path: Path) -> list[Any]:  # an erasure's record holds the wall-clock time it was asked
        return [
            msgspec.structs.replace(r, op=msgspec.structs.replace(r.op, at=0)) if isinstance(r.op, ForgetOp) else r
            for r in read_records(path)
        ]

    assert records(tmp_path / "batch.log") == records(tmp_path / "one.log")
    assert len(records(tmp_path / "one.log")) == ref_engine.ops_
    recovered = Engine.from_world(small_world, seed=5)
    recovered.attach_log(tmp_path / "batch.log")  # replays every record of the log
    recovered.detach_log()
    _assert_same_state(ref_engine, recovered)


def test_replay_batch_equals_one_by_one(small_world: str, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(_stream(small_world)[0][:1500]) + b"\n")
    outs, engines = [], []
    for size in (1, 64):
        engine = Engine.from_world(small_world, seed=0)
        outs.append(replay(path, engine, batch=size))
        engines.append(engine)
    one, many = outs
    for key in ("events", "decisions", "rejected"):
        assert one[key] == many[key]
    assert one["rejected"] > 0 and one["decisions"] > 0
    assert (one["batch"], many["batch"]) == (1, 64)
    assert one["decode_us_per_event"] == 0.0 and many["decode_us_per_event"] > 0
    assert many["latency_us"]["count"] == many["decisions"]
    _assert_same_state(*engines)


def test_ingest_many_refuses_a_bad_batch_before_anything_moves(small_world: str) -> None:
    lines = (Path(small_world) / "events.jsonl").read_bytes().splitlines()[:20]
    bad = b'{"type": "view", "time": 1700000000000, "ids": {"cookie": "x"}, "item": "nope"}'
    engine = Engine.from_world(small_world, seed=0)
    with pytest.raises(DecisionerError, match=re.escape("`$[3].item`")):
        engine.ingest_many([*lines[:3], bad, *lines[3:]], decide_on=default_decide_on(engine))
    assert engine.events_ == 0 and engine.ops_ == 0 and engine.identity.n_profiles == 0
    with pytest.raises(SchemaError, match=re.escape("- at `$[1]")):
        engine.ingest_many([lines[0], b"{"])
    assert engine.events_ == 0
    with pytest.raises(UnknownPlacementError):
        engine.ingest_many(lines, decide_on={"view": "nowhere"})
    with pytest.raises(ConfigError, match=re.escape("Expected `errors` to be one of ['raise', 'skip'], got 'no'")):
        engine.ingest_many(lines, errors="no")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match=re.escape("Expected `events` to be a list of events, got `bytes`")):
        engine.ingest_many(lines[0])  # type: ignore[arg-type]
    got = engine.ingest_many(lines)  # dicts and Structs are taken too; nothing decided without decide_on
    assert got.decisions == [] and got.decided.shape == (0,) and np.all(got.rows >= 0)
    assert engine.events_ == 20


def test_ingest_many_takes_dicts_and_structs(small_world: str) -> None:
    lines = (Path(small_world) / "events.jsonl").read_bytes().splitlines()[:40]
    a, b = Engine.from_world(small_world, seed=0), Engine.from_world(small_world, seed=0)
    on = default_decide_on(a)
    mixed = [json.loads(ln) if j % 3 == 0 else decode_event(ln) if j % 3 == 1 else ln for j, ln in enumerate(lines)]
    da, db = a.ingest_many(lines, decide_on=on), b.ingest_many(mixed, decide_on=on)
    assert _plain(da.decisions) == _plain(db.decisions)
    assert np.array_equal(da.rows, db.rows)


def test_batch_refuses_identifier_types_past_the_cap_together(small_world: str) -> None:
    engine = Engine.from_world(small_world, seed=0)
    room = engine.identity.spec.max_types - len(engine.identity.types)
    events = [{"type": "identify", "time": 1_700_000_000_000, "ids": {f"t{j}": "v"}} for j in range(room + 1)]
    with pytest.raises(SchemaError, match=re.escape(f"got more, such as 't{room}' - at `$[{room}].ids`")):
        engine.ingest_many(events)
    assert engine.ops_ == 0 and len(engine.identity.types) == engine.identity.spec.max_types - room
    got = engine.ingest_many(events, errors="skip")
    assert [j for j, _ in got.rejected] == [room]
    assert len(engine.identity.types) == engine.identity.spec.max_types


def test_decode_event_lines_gives_single_decode_errors() -> None:
    good = b'{"type": "view", "time": 1700000000000, "ids": {"cookie": "c"}}'
    bad = [b"\xff", b'{"type": "view"}', b" " * 70_000]
    out = decode_event_lines([good, *bad, good])
    assert out[0] == out[-1] == decode_event(good)
    for got, line in zip(out[1:-1], bad):
        assert isinstance(got, SchemaError)
        with pytest.raises(SchemaError) as single:
            decode_event(line)
        assert str(got) == str(single.value)
    assert decode_event_lines([]) == []


def test_replay_refuses_a_bad_batch_size(small_world: str) -> None:
    engine = Engine.from_world(small_world, seed=0)
    with pytest.raises(ConfigError, match=re.escape("Expected `batch` to be a positive integer, got 0 - at `batch`")):
        replay(Path(small_world) / "events.jsonl", engine, batch=0)


def test_replay_cli_batches_by_default_and_one_by_one_on_request(
    capsys: pytest.CaptureFixture[str], small_world: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from decisioner.cli import main

    events = str(Path(small_world) / "events.jsonl")
    outs = []
    for extra in ([], ["--batch", "1"], ["--batch", "300"]):
        assert main(["replay", events, "--world", small_world, "--max-events", "1200", "--json", *extra]) == 0
        got = capsys.readouterr()
        assert got.err == ""  # no progress bar with --json
        outs.append(json.loads(got.out))
    assert [o["batch"] for o in outs] == [4096, 1, 300]
    assert len({(o["events"], o["decisions"], o["rejected"]) for o in outs}) == 1
    assert main(["replay", events, "--world", small_world, "--max-events", "1200", "--batch", "0"]) == 1
    assert capsys.readouterr().err == "error: Expected `batch` to be a positive integer, got 0 - at `batch`\n"
    # on a terminal: a progress bar with the rate and the time left
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert main(["replay", events, "--world", small_world, "--max-events", "1200", "--batch", "500"]) == 0
    got = capsys.readouterr()
    assert re.search(r"replay \[#+\] 1200/1200  [\d,]+/s  ETA 0:00\n", got.err)
    assert "batch 500" in got.out and "decoding apart" in got.out


def test_an_event_the_log_cannot_hold_refuses_the_batch(small_world: str) -> None:
    lines: list[Any] = [json.loads(ln) for ln in (Path(small_world) / "events.jsonl").read_bytes().splitlines()[:5]]
    lone = {"type": "view", "time": 1_700_000_000_000, "ids": {"cookie": "c"}, "device": "\ud800"}  # no UTF-8 form
    a, b = Engine.from_world(small_world, seed=0), Engine.from_world(small_world, seed=0)
    with pytest.raises(SchemaError, match=re.escape("expected an operation that can be logged, got one that cannot")):
        a.ingest_many([*lines[:2], lone, *lines[2:]])
    assert a.ops_ == 0 and a.events_ == 0
    got = a.ingest_many([*lines[:2], lone, *lines[2:]], errors="skip")
    for ev in [*lines[:2], lone, *lines[2:]]:
        with contextlib.suppress(SchemaError):
            b.track(ev)
    assert [j for j, _ in got.rejected] == [2] and a.ops_ == b.ops_ == 5
    _assert_same_state(a, b)


def test_replay_makes_no_reference_cycles(small_world: str, tmp_path: Path) -> None:
    # replay turns the cyclic collector off while it runs: that is only safe while the event path
    # leaves no cyclic garbage behind
    import gc

    path = tmp_path / "events.jsonl"
    lines, _ = _stream(small_world)
    path.write_bytes(b"\n".join(lines) + b"\n")
    engine = Engine.from_world(small_world, seed=0)
    gc.collect()
    gc.disable()
    try:
        out = replay(path, engine, batch=512)
        found = gc.collect()
    finally:
        gc.enable()
    assert out["decisions"] > 500 and out["rejected"] > 0
    assert found == 0
    assert gc.isenabled()
