"""Recovery of a durable directory whose log an engine wrote, then something damaged: flipped
bytes at seeded random positions, truncations at every position near the tail, a deleted log.
Whatever happens, the engine never opens in a wrong state, never loses records silently, and
never deletes an intact record from disk; a repair keeps the intact prefix and moves exactly the
rest aside."""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner.errors import ConfigError, DecisionerWarning, LogDamagedError
from decisioner.eventlog import LogRecovery, read_log
from decisioner.recovery import LOG_KEY, require_log
from decisioner.snapshot import read_header
from statecheck import assert_same, engine_state

BEFORE = 120  # events in the snapshot
LOGGED = 40  # events in the log after it


def feed(engine: Engine, lines: list[bytes]) -> None:
    for ln in lines:
        if b'"type":"view"' in ln:
            engine.decide(ln, placement="home_recs")
        else:
            engine.track(ln)


class Durable:
    """A durable directory an engine wrote (snapshot after ``BEFORE`` events, ``LOGGED`` more
    in its log), fresh copies of it, and reference states for every prefix of the log."""

    def __init__(self, world: str, root: Path) -> None:
        self.world = world
        self.lines = (Path(world) / "events.jsonl").read_bytes().splitlines()[: BEFORE + LOGGED]
        self.dir = root / "template"
        e = Engine.from_world(world, seed=0)
        feed(e, self.lines[:BEFORE])
        e.durable(self.dir)
        feed(e, self.lines[BEFORE:])
        e.detach_log()
        self.key = e.config.identity.hash_key
        self.log = self.dir / "events.log"
        self.bytes = self.log.read_bytes()
        payloads = read_log(self.log).payloads
        assert len(payloads) == LOGGED
        self.offsets = [12]
        for p in payloads:
            self.offsets.append(self.offsets[-1] + 8 + len(p))
        assert self.offsets[-1] == len(self.bytes)
        self._states: dict[int, dict[str, np.ndarray]] = {}
        self._n = 0

    def copy(self, data: bytes | None = None) -> Path:
        self._n += 1
        d = self.dir.parent / f"trial{self._n}"
        shutil.copytree(self.dir, d, ignore=shutil.ignore_patterns("LOCK"))
        if data is not None:
            (d / "events.log").write_bytes(data)
        return d

    def state(self, kept: int) -> dict[str, np.ndarray]:
        """The state of an engine fed the snapshot's events and the first ``kept`` logged ones."""
        if kept not in self._states:
            e = Engine.from_world(self.world, seed=0)
            feed(e, self.lines[: BEFORE + kept])
            self._states[kept] = engine_state(e)
        return self._states[kept]

    def record_at(self, pos: int) -> int:
        return max(i for i in range(LOGGED) if self.offsets[i] <= pos)


@pytest.fixture(scope="module")
def durable(small_world: str, tmp_path_factory: pytest.TempPathFactory) -> Durable:
    return Durable(small_world, tmp_path_factory.mktemp("durable"))


@contextmanager
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def open_engine(d: Path, key: str | None, flush: str) -> tuple[Engine | Exception, list[str]]:
    """Open, returning the engine (log detached) or the error, and the decisioner warnings."""
    with recorded() as caught:
        try:
            e = Engine.open(d, hash_key=key, flush=flush)  # type: ignore[arg-type]
            e.detach_log()
            out: Engine | Exception = e
        except (LogDamagedError, ConfigError) as exc:
            out = exc
    assert all(issubclass(w.category, DecisionerWarning) for w in caught), [str(w.message) for w in caught]
    return out, [str(w.message) for w in caught]


def test_the_snapshot_names_the_log_that_continues_it(durable: Durable) -> None:
    found = read_header(durable.dir)
    assert found is not None and found[1][LOG_KEY] == "events.log"


@pytest.mark.parametrize("flush", ["event", "off"])
def test_a_healthy_open_reports_what_it_kept(durable: Durable, flush: str) -> None:
    d = durable.copy()
    e, warned = open_engine(d, durable.key, flush)
    assert isinstance(e, Engine) and warned == []
    assert e.recovery_ == LogRecovery(str(d / "events.log"), LOGGED, len(durable.bytes), 0, None)
    assert_same(durable.state(LOGGED), engine_state(e))


def flip_positions(durable: Durable, rng: np.random.Generator) -> list[int]:
    n = len(durable.bytes)
    last = durable.offsets[-2]
    fixed = [0, 8, 11, 12, 15, 16, 19, 20, last, last + 4, last + 8, n - 1, durable.offsets[1] - 1]
    return sorted(set(fixed) | {int(p) for p in rng.integers(0, n, size=48)})


@pytest.mark.parametrize("flush", ["event", "off"])
def test_a_flipped_byte_anywhere_never_opens_a_wrong_state_nor_loses_a_record_silently(
    durable: Durable, flush: str, make_rng: Callable[..., np.random.Generator]
) -> None:
    rng = make_rng(1 if flush == "event" else 2)
    n, last = len(durable.bytes), durable.offsets[-2]
    outcomes = {"header": 0, "damaged": 0, "torn": 0}
    for pos in flip_positions(durable, rng):
        data = bytearray(durable.bytes)
        data[pos] ^= int(rng.integers(1, 256))
        d = durable.copy(bytes(data))
        got, warned = open_engine(d, durable.key, flush)
        after = (d / "events.log").read_bytes()
        if pos < 12:  # the file header: refused as not a log of this format
            assert isinstance(got, ConfigError) and not isinstance(got, LogDamagedError), pos
            assert after == bytes(data) and warned == []
            outcomes["header"] += 1
        elif pos < last:  # inside a record with intact ones after it: refused, nothing changed
            i = durable.record_at(pos)
            assert isinstance(got, LogDamagedError), (pos, got)
            assert str(got).startswith(
                "expected an event log whose records are intact up to its end, got damage at byte "
                f"{durable.offsets[i]} ("
            ), pos
            assert f") followed by {LOGGED - 1 - i} intact records ({n - durable.offsets[i + 1]} of the " in str(got)
            assert after == bytes(data) and warned == [], pos
            outcomes["damaged"] += 1
        else:  # the last record: a torn tail, cut (or left out) with a warning; the rest recovered
            assert isinstance(got, Engine), (pos, got)
            verb = "cut" if flush != "off" else "left out"
            pattern = (
                re.escape(f"event log {str(d / 'events.log')!r} ends in a torn write at byte {last} (")
                + ".+"
                + re.escape(f"): kept the {LOGGED - 1} records before it ({last} bytes) and {verb} the {n - last} "
                            "bytes after them")
                + ("" if flush != "off" else re.escape(" (the file is unchanged)"))
            )
            assert len(warned) == 1 and re.fullmatch(pattern, warned[0]), (pos, warned)
            assert got.recovery_ is not None and got.recovery_.records == LOGGED - 1
            assert got.recovery_.dropped_bytes == n - last
            assert_same(durable.state(LOGGED - 1), engine_state(got))
            assert after == (bytes(data[:last]) if flush != "off" else bytes(data)), pos
            outcomes["torn"] += 1
    assert min(outcomes.values()) >= 3, outcomes  # the positions hit every region


def test_every_truncation_near_the_tail_keeps_exactly_the_whole_records(durable: Durable) -> None:
    n = len(durable.bytes)
    start = durable.offsets[-2] - 10  # the last record and the end of the one before
    for cut in range(start, n):
        d = durable.copy(durable.bytes[:cut])
        got, warned = open_engine(d, durable.key, "event")
        assert isinstance(got, Engine), (cut, got)
        kept = sum(1 for i in range(LOGGED) if durable.offsets[i + 1] <= cut)
        end = durable.offsets[kept]
        assert got.ops_ == BEFORE + kept
        assert (d / "events.log").read_bytes() == durable.bytes[:end]  # only torn bytes were cut
        if cut == end:
            assert warned == [], cut
        else:
            assert len(warned) == 1 and f"kept the {kept} records before it ({end} bytes) and cut the {cut - end} " \
                "bytes after them" in warned[0], (cut, warned)
        if cut % 17 == 0 or cut == end:  # the whole state, at a stride (each reference is a replay)
            assert_same(durable.state(kept), engine_state(got))


@pytest.mark.parametrize("flush", ["event", "off"])
def test_a_deleted_log_the_snapshot_expects_is_an_error_not_an_empty_log(durable: Durable, flush: str) -> None:
    d = durable.copy()
    (d / "events.log").unlink()
    found = read_header(d)
    assert found is not None
    msg = (
        f"expected the event log 'events.log' that continues snapshot {found[0].name!r}, got no such file - at "
        f"{str(d)!r} (nothing was changed; restore the file, or accept losing every operation logged after the "
        f"snapshot with `decisioner log repair {d}`, which starts an empty log)"
    )
    with pytest.raises(LogDamagedError, match="^" + re.escape(msg) + "$"):
        Engine.open(d, hash_key=durable.key, flush=flush)  # type: ignore[arg-type]
    assert not (d / "events.log").exists()
    with pytest.raises(LogDamagedError, match="^" + re.escape(msg) + "$"):
        require_log(d, found[1])


def test_a_snapshot_saved_with_no_log_there_opens_without_one(durable: Durable, tmp_path: Path) -> None:
    e = Engine.from_world(durable.world, seed=0)
    feed(e, durable.lines[:30])
    e.save(tmp_path / "snap")
    found = read_header(tmp_path / "snap")
    assert found is not None and LOG_KEY not in found[1]
    again = Engine.open(tmp_path / "snap", hash_key=durable.key, flush="off")
    assert again.ops_ == 30 and again.recovery_ == LogRecovery(str(tmp_path / "snap" / "events.log"), 0, 0, 0, None,
                                                               missing=True)


def test_repair_then_open_gives_the_intact_prefix_and_the_rest_is_kept_aside(durable: Durable) -> None:
    from decisioner.recovery import repair

    i = 17
    data = bytearray(durable.bytes)
    data[durable.offsets[i] + 30] ^= 0x21
    d = durable.copy(bytes(data))
    with pytest.raises(LogDamagedError):
        Engine.open(d, hash_key=durable.key)
    out = repair(d)
    assert out["kind"] == "damaged" and out["kept_records"] == i and out["moved_intact_records"] == LOGGED - 1 - i
    moved = Path(out["moved_to"])
    assert moved.parent == d and moved.name.startswith("events.log.damaged-")
    assert (d / "events.log").read_bytes() == bytes(data[: durable.offsets[i]])
    assert moved.read_bytes() == bytes(data[durable.offsets[i] :])
    got, warned = open_engine(d, durable.key, "event")
    assert isinstance(got, Engine) and warned == []
    assert got.recovery_ == LogRecovery(str(d / "events.log"), i, durable.offsets[i], 0, None)
    assert_same(durable.state(i), engine_state(got))


def test_repairing_a_missing_log_starts_an_empty_one_and_opens_the_snapshot(durable: Durable) -> None:
    from decisioner.recovery import check_log, repair

    d = durable.copy()
    (d / "events.log").unlink()
    assert check_log(d)["kind"] == "missing"
    out: dict[str, Any] = repair(d)
    assert out["created"] is True and out["kind"] == "missing"
    got, warned = open_engine(d, durable.key, "event")
    assert isinstance(got, Engine) and warned == [] and got.ops_ == BEFORE
    assert_same(durable.state(0), engine_state(got))
