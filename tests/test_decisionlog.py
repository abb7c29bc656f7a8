"""DecisionLog: chunked columns, one row per slot, propensities always recorded; a bounded window
in memory whose oldest chunks are dropped or spilled, global handles, erasure and export across
spill files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from decisioner.decisionlog import ROW_BYTES, SPILL_FORMAT, DecisionLog, read_spill, read_spilled
from decisioner.errors import ConfigError, DecisionerWarning, NotReadyError, UnknownDecisionError

COLUMNS = ["seq", "time", "person", "placement", "slot", "content", "score", "propensity", "candidates", "reward",
           "experiment", "variant"]


def append(log: DecisionLog, seq: int, contents: list[int], placement: int = 0) -> int:
    k = len(contents)
    return log.append(
        seq=seq, time=1_700_000_000_000 + seq, person=seq % 3, placement=placement,
        contents=np.array(contents, np.int32), scores=np.linspace(1.0, 0.5, k),
        propensities=np.full(k, 0.5), candidates=10 + seq,
    )


def test_rows_per_slot_and_dtypes() -> None:
    log = DecisionLog()
    assert len(log) == 0 and log.column("seq").tolist() == []
    assert append(log, 0, [3, 4]) == 0
    assert append(log, 1, [7]) == 2
    assert append(log, 2, []) == 3  # a decision with no content adds no row
    assert len(log) == 3
    d = log.to_dict()
    assert list(d) == COLUMNS
    assert d["seq"].tolist() == [0, 0, 1] and d["slot"].tolist() == [0, 1, 0]
    assert d["content"].tolist() == [3, 4, 7] and d["candidates"].tolist() == [10, 10, 11]
    assert d["score"].tolist() == [1.0, 0.5, 1.0] and d["propensity"].tolist() == [0.5, 0.5, 0.5]
    assert d["reward"].tolist() == [0.0, 0.0, 0.0]
    assert [d[c].dtype for c in COLUMNS] == [np.int64, np.int64, np.int64, np.int16, np.int16, np.int32,
                                             np.float64, np.float64, np.int32, np.float64, np.int16, np.int16]
    assert d["experiment"].tolist() == [-1, -1, -1] and d["variant"].tolist() == [-1, -1, -1]


def test_growth_keeps_every_row_and_decisions_never_straddle_chunks() -> None:
    log = DecisionLog(chunk_rows=128)
    handles = [append(log, s, [s, s + 1, s + 2]) for s in range(300)]
    assert len(log) == 900
    assert log.column("content").tolist() == [s + j for s in range(300) for j in range(3)]
    assert log.column("seq").tolist() == [s for s in range(300) for _ in range(3)]
    for s, h in enumerate(handles):
        assert h // 128 == (h + 2) // 128  # all three rows in one chunk
        assert log.rows("content", h, 3).tolist() == [s, s + 1, s + 2]
        assert log.rows("seq", h, 3).tolist() == [s] * 3


def test_bad_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="^" + re.escape("`chunk_rows` must be >= 128, got 10") + "$"):
        DecisionLog(chunk_rows=10)
    log = DecisionLog(chunk_rows=128)
    with pytest.raises(ConfigError, match="^" + re.escape("expected at most 128 slots in a decision, got 129") + "$"):
        append(log, 0, list(range(129)))
    assert len(log) == 0


def test_reads_are_copies() -> None:
    log = DecisionLog()
    h = append(log, 0, [1, 2])
    log.column("propensity")[0] = 9.0
    log.to_dict()["propensity"][0] = 9.0
    log.rows("propensity", h, 2)[0] = 9.0
    assert log.column("propensity").tolist() == [0.5, 0.5]


def test_add_reward_by_handle() -> None:
    log = DecisionLog(chunk_rows=128)
    for s in range(50):
        append(log, s, [1, 2, 3])
    h = append(log, 50, [1, 2])  # lands in the second chunk
    assert h >= 128
    log.add_reward(h + 1, 1.0)
    log.add_reward(h + 1, 2.5)
    assert log.rows("reward", h, 2).tolist() == [0.0, 3.5]
    assert log.column("reward").sum() == 3.5 and log.column("reward")[-1] == 3.5


def test_save_npz(tmp_path: Path) -> None:
    log = DecisionLog()
    append(log, 0, [1, 0], placement=0)
    append(log, 1, [1], placement=1)
    log.add_reward(2, 1.0)
    npz = tmp_path / "t3_log.npz"
    log.save_npz(npz)
    with np.load(npz) as z:
        for name, col in log.to_dict().items():
            assert np.array_equal(z[name], col)


# ---------------------------------------------------------------- the window in memory


def full(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


def fill_log(log: DecisionLog, n: int, slots: int = 3) -> list[int]:
    return [append(log, s, list(range(s, s + slots))) for s in range(n)]


def test_the_window_drops_whole_oldest_chunks_and_handles_stay_global() -> None:
    log = DecisionLog(chunk_rows=128, max_rows=256)  # two chunks of 42 three-slot decisions
    handles = fill_log(log, 200)
    assert handles == sorted(set(handles))  # global and increasing: never reused
    assert len(log) <= 256 and log.metrics()["chunks"] == 2 and log.nbytes() == 2 * 128 * ROW_BYTES
    seqs = log.column("seq")
    assert seqs[0] == 42 * 3 and seqs[-1] == 199  # 3 chunks of 42 decisions dropped, in order
    assert len(log) + log.dropped_rows_ == 600 and log.spilled_rows_ == 0
    assert log.first_handle == 3 * 128 and log.end_handle == handles[-1] + 3
    kept = [h for h in handles if log.holds(h)]
    assert kept == handles[126:]
    for s, h in list(enumerate(handles))[126:]:
        assert log.rows("content", h, 3).tolist() == [s, s + 1, s + 2]


def test_a_dropped_handle_is_a_no_op_or_a_clear_error_and_never_touches_another_row() -> None:
    log = DecisionLog(chunk_rows=128, max_rows=128)
    old = append(log, 0, [1, 2])
    fill_log(log, 100)  # pushes the first chunk out
    assert not log.holds(old)
    before = log.to_dict()
    assert log.add_reward(old + 1, 5.0) is False
    assert all(np.array_equal(before[k], v) for k, v in log.to_dict().items())
    with pytest.raises(UnknownDecisionError, match=full(
            "Expected a decision in the decision log's window (handles from 256), got handle 0: its rows left memory "
            "(`decision_log.max_rows` = 128)")):
        log.rows("content", old, 2)
    assert log.rows("content", old, 0).tolist() == []  # a decision without slots reads nothing
    with pytest.raises(UnknownDecisionError, match=full(f"Expected a decision log handle below {log.end_handle}, "
                                                        f"got {log.end_handle}")):
        log.add_reward(log.end_handle, 1.0)
    h = append(log, 500, [7])
    assert log.add_reward(h, 2.0) is True and log.rows("reward", h, 1).tolist() == [2.0]


def test_a_decision_without_slots_adds_no_row_and_no_chunk() -> None:
    log = DecisionLog(chunk_rows=128, max_rows=128)
    assert append(log, 0, []) == 0 and log.metrics()["chunks"] == 0
    assert append(log, 1, [4]) == 0 and append(log, 2, []) == 1


def test_the_window_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=full("expected `max_rows` >= `chunk_rows` (256), got 128")):
        DecisionLog(chunk_rows=256, max_rows=128)
    with pytest.raises(ConfigError, match=full("expected a `spill_dir` with `on_full = \"spill\"`, got None")):
        DecisionLog(chunk_rows=128, max_rows=128, on_full="spill")
    with pytest.raises(ConfigError, match=full("expected `on_full` in ['drop', 'spill'], got 'keep'")):
        DecisionLog(chunk_rows=128, max_rows=128, on_full="keep")  # type: ignore[arg-type]


def test_spill_writes_the_oldest_chunks_and_memory_plus_spill_is_the_whole_log(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    log = DecisionLog(chunk_rows=128, max_rows=256, on_full="spill", spill_dir=spill)
    whole = DecisionLog(chunk_rows=128, max_rows=10**6)
    for s in range(200):
        for lg in (log, whole):
            append(lg, s, [s, s + 1, s + 2])
    log.add_reward(log.first_handle, 1.5)
    whole.add_reward(log.first_handle, 1.5)
    files = log.spill_files()
    assert [p.name for p in files] == [f"decisions-{c:012d}.npz" for c in range(3)]
    assert log.spilled_rows_ == log.dropped_rows_ == 3 * 126
    spilled = read_spilled(spill)
    for name, col in whole.to_dict().items():
        assert np.array_equal(np.concatenate([spilled[name], log.column(name)]), col), name
        assert spilled[name].dtype == col.dtype
    with np.load(files[1], allow_pickle=False) as z:  # the documented layout, no pickle
        assert sorted(z.files) == sorted([*COLUMNS, "spill_format", "chunk", "chunk_rows"])
        assert (int(z["spill_format"]), int(z["chunk"]), int(z["chunk_rows"])) == (SPILL_FORMAT, 1, 128)
        assert z["seq"][0] == 42
    assert not list(spill.glob(".*"))  # no temporary file left


def test_erasure_reaches_spilled_rows_and_export_reads_them(tmp_path: Path) -> None:
    log = DecisionLog(chunk_rows=128, max_rows=128, on_full="spill", spill_dir=tmp_path)
    fill_log(log, 200)  # person = seq % 3
    person = np.concatenate([read_spilled(tmp_path)["person"], log.column("person")])
    assert np.count_nonzero(person == 1) == 3 * 67
    found = log.rows_of({1}, ["seq", "person"])
    assert found["person"].tolist() == [1] * 201 and found["seq"].tolist() == sorted(found["seq"].tolist())
    assert log.erase({1}) == 201
    person = np.concatenate([read_spilled(tmp_path)["person"], log.column("person")])
    assert not (person == 1).any() and np.count_nonzero(person == -1) == 201
    assert log.rows_of({1}, ["seq"])["seq"].tolist() == []
    assert log.erase({1}) == 0


def test_erasure_reaches_files_left_by_an_earlier_spill_configuration(tmp_path: Path) -> None:
    fill_log(DecisionLog(chunk_rows=128, max_rows=128, on_full="spill", spill_dir=tmp_path), 100)
    log = DecisionLog(chunk_rows=128, max_rows=128, on_full="drop", spill_dir=tmp_path)
    assert log.erase({2}) == np.count_nonzero(read_spilled(tmp_path)["seq"] % 3 == 2) > 0
    assert not (read_spilled(tmp_path)["person"] == 2).any()


def test_a_failed_spill_drops_the_chunk_with_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"x")
    log = DecisionLog(chunk_rows=128, max_rows=128, on_full="spill", spill_dir=blocker)
    fill_log(log, 42)
    with pytest.warns(DecisionerWarning, match=re.escape(f"could not spill chunk 0 (126 rows) to {str(blocker)!r}")):
        append(log, 42, [1, 2, 3])
    assert log.spill_errors_ == 1 and log.dropped_rows_ == 126 and log.spilled_rows_ == 0 and len(log) == 3


def test_a_damaged_spill_file_is_refused_by_export_and_skipped_with_a_warning_by_erasure(tmp_path: Path) -> None:
    log = DecisionLog(chunk_rows=128, max_rows=128, on_full="spill", spill_dir=tmp_path)
    fill_log(log, 100)
    bad = log.spill_files()[0]
    bad.write_bytes(b"not a zip")
    ours = re.escape("expected a readable decision log spill file, got ") + ".+" + re.escape(f" - at {str(bad)!r}")
    with pytest.raises(ConfigError, match="^" + ours + "$"):  # numpy's words in the middle are not ours
        log.rows_of({1}, ["seq"])
    with pytest.warns(DecisionerWarning, match="could not erase 1 people from spill file"):
        n = log.erase({1})
    assert n > 0 and not (read_spill(log.spill_files()[1])["person"] == 1).any()


def test_the_window_round_trips_through_its_state(tmp_path: Path) -> None:
    log = DecisionLog(chunk_rows=128, max_rows=256, on_full="spill", spill_dir=tmp_path)
    handles = fill_log(log, 150)
    copy = DecisionLog(chunk_rows=128, max_rows=256, on_full="spill", spill_dir=tmp_path)
    copy.load_state(log.to_state())
    assert copy.metrics() == log.metrics()
    for lg in (log, copy):
        lg.add_reward(handles[-1] + 2, 3.0)
        assert lg.add_reward(handles[0], 1.0) is False
    later = [(append(log, s, [s, 1, 2]), append(copy, s, [s, 1, 2])) for s in range(150, 250)]
    assert all(a == b for a, b in later) and copy.metrics() == log.metrics()
    for name, col in log.to_dict().items():
        assert np.array_equal(copy.column(name), col), name
    with pytest.raises(NotReadyError, match=full("expected a decision log of 256 rows a chunk, got 128")):
        DecisionLog(chunk_rows=256, max_rows=256).load_state(log.to_state())
