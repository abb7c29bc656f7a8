"""DecisionLog: append-only chunked columns, one row per slot, propensities always recorded."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import numpy as np
import pytest

from decisioner.decisionlog import DecisionLog
from decisioner.errors import ConfigError

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


def test_save_npz_and_write_jsonl(tmp_path: Path) -> None:
    log = DecisionLog()
    append(log, 0, [1, 0], placement=0)
    append(log, 1, [1], placement=1)
    log.add_reward(2, 1.0)
    npz = tmp_path / "t3_log.npz"
    log.save_npz(npz)
    with np.load(npz) as z:
        for name, col in log.to_dict().items():
            assert np.array_equal(z[name], col)
    jl = tmp_path / "t3_log.jsonl"
    log.write_jsonl(jl, placements=["home", "hero"], contents=[["a", "b"], ["x", "y"]])
    rows = [msgspec.json.decode(line) for line in jl.read_bytes().splitlines()]
    assert [(r["placement"], r["content"], r["slot"], r["reward"]) for r in rows] == [
        ("home", "b", 0, 0.0), ("home", "a", 1, 0.0), ("hero", "y", 0, 1.0)]
    assert set(rows[0]) == set(COLUMNS)
