"""``durability``: saves keep the previous snapshot and its log as a fallback; a damaged newest
snapshot opens the previous one and replays both logs (with a warning); leftovers of crashed
saves are removed by the directory's writer."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest

from decisioner import Engine
from decisioner.errors import DecisionerError, DecisionerWarning, SnapshotDamagedError
from statecheck import assert_same, engine_state
from test_stages import KEY, engine, feed


def _damage(snap: Path) -> None:
    data = bytearray((snap / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (snap / "arrays.npz").write_bytes(bytes(data))


def _durable_with_two_saves(d: Path) -> Engine:
    eng = engine()
    eng.durable(d)
    feed(eng, 30)
    eng.save(d)
    feed(eng, 30, start=30)
    eng.save(d)
    feed(eng, 25, start=60)  # in the log only
    return eng


def test_a_damaged_newest_snapshot_opens_the_previous_and_replays_both_logs(tmp_path: Path) -> None:
    d = tmp_path / "d"
    live = _durable_with_two_saves(d)
    live.detach_log()
    current, previous = (d / "CURRENT").read_text(), (d / "PREVIOUS").read_text()
    assert current != previous and (d / previous).is_dir()
    _damage(d / current)
    with pytest.warns(DecisionerWarning, match=re.escape(f"opened the previous snapshot {previous!r} and replayed the logs since")):
        back = Engine.open(d, hash_key=KEY)
    assert back.ops_ == live.ops_
    assert_same(engine_state(live), engine_state(back))
    assert feed(back, 20, start=85) == feed(live, 20, start=85)  # and it goes on identically


def test_both_snapshots_damaged_is_an_error_that_changes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _durable_with_two_saves(d).detach_log()
    for pointer in ("CURRENT", "PREVIOUS"):
        _damage(d / (d / pointer).read_text())
    before = {p.name: p.stat().st_size for p in d.rglob("*")}
    with pytest.raises(SnapshotDamagedError, match=re.escape("got a damaged 'arrays.npz' (checksum mismatch)")):
        Engine.open(d, hash_key=KEY)
    assert {p.name: p.stat().st_size for p in d.rglob("*")} == before  # nothing deleted


def test_idle_saves_keep_a_complete_fallback(tmp_path: Path) -> None:
    d = tmp_path / "d"
    live = _durable_with_two_saves(d)
    for _ in range(3):  # nothing new between them: each gets a new name, the fallback stays whole
        live.save(d)
    live.detach_log()
    snaps = sorted(p.name for p in d.iterdir() if p.name.startswith("snapshot-"))
    assert snaps == sorted({(d / "CURRENT").read_text(), (d / "PREVIOUS").read_text()})
    _damage(d / (d / "CURRENT").read_text())
    with pytest.warns(DecisionerWarning):
        back = Engine.open(d, hash_key=KEY)
    assert_same(engine_state(live), engine_state(back))


def test_the_writer_removes_leftovers_of_crashed_saves(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _durable_with_two_saves(d).detach_log()
    (d / ".tmp-snapshot-dead").mkdir()
    (d / ".tmp-snapshot-dead" / "arrays.npz").write_bytes(b"x" * 1000)
    (d / "snapshot-999999999999999-deadbeef").mkdir()  # renamed in, never published
    (d / "snapshot-000000000000001-0ld0ne00").mkdir()  # older and unnamed: maybe a lost fallback
    (d / "CURRENT.tmp").write_text("half")
    (d / "events.tmp").write_bytes(b"")
    for flush in ("off", "event"):
        back = Engine.open(d, hash_key=KEY, flush=flush)  # type: ignore[arg-type]
        back.detach_log()
        names = {p.name for p in d.iterdir()}
        assert not {".tmp-snapshot-dead", "snapshot-999999999999999-deadbeef", "CURRENT.tmp", "events.tmp"} & names
        assert "snapshot-000000000000001-0ld0ne00" in names  # opening deletes nothing that may hold data


@pytest.mark.parametrize("how", ["delete", "flip"])
def test_damage_to_any_file_is_never_a_wrong_state_nor_a_deletion(tmp_path: Path, how: str) -> None:
    """Each file of a durable directory (both snapshots' files, the pointers, both logs) deleted
    or with a byte flipped: the directory either opens to exactly the live state or refuses with
    a decisioner error; no file is deleted or cut by the attempt."""
    src = tmp_path / "src"
    live = _durable_with_two_saves(src)
    live.detach_log()
    want = engine_state(live)
    files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file() and p.name != "LOCK")
    assert len(files) >= 13
    for rel in files:
        d = tmp_path / f"{how}-{str(rel).replace('/', '_')}"
        shutil.copytree(src, d)
        target = d / rel
        if how == "delete":
            target.unlink()
        else:
            data = bytearray(target.read_bytes())
            if not data:
                continue
            data[len(data) // 2] ^= 0x5A
            target.write_bytes(bytes(data))
        before = {p.relative_to(d): p.read_bytes() for p in d.rglob("*") if p.is_file() and p.name != "LOCK"}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DecisionerWarning)
                back = Engine.open(d, hash_key=KEY, flush="off")
        except DecisionerError:
            pass
        else:
            assert_same(want, engine_state(back)), rel
        after = {p.relative_to(d): p.read_bytes() for p in d.rglob("*") if p.is_file() and p.name != "LOCK"}
        assert after == before, f"{how} {rel}: opening changed the files"
