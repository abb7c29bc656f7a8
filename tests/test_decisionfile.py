"""The decision log file: what an engine writes (names, not indices; people as merged) and how a
file's format is told from its content."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.decisionfile import DECISION_KEYS, is_decision_log, read_records, write_decisions
from decisioner.errors import SchemaError
from decisioner.logformat import HEADER, LOG_MAGIC, LOG_VERSION

T0 = 1_700_000_000_000


def engine() -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": "ab" * 16},
        "placements": [{"name": "hero", "kind": "campaign", "experiences": [{"id": f"e{i}"} for i in range(3)]}],
        "experiments": [{"name": "x", "placement": "hero", "variants": [{"name": "control"}, {"name": "b"}]}],
        "holdout": {"fraction": 0.2},
    })
    return Engine(cfg, Catalog([{"id": "i", "category": "c"}], cfg.catalog), seed=1)


def test_an_engine_writes_names_and_merged_people(tmp_path: Path) -> None:
    eng = engine()
    a = eng.decide({"type": "view", "time": T0, "ids": {"cookie": "a"}}, placement="hero")
    b = eng.decide({"type": "view", "time": T0 + 1, "ids": {"cookie": "b"}}, placement="hero")
    for t in range(40):
        eng.decide({"type": "view", "time": T0 + 2 + t, "ids": {"cookie": f"p{t}"}}, placement="hero")
    eng.observe({"decision_id": a.decision_id, "kind": "conversion", "time": T0 + 5, "value": 12.5})
    assert a.person != b.person
    for cookie in ("a", "b"):  # one person logs in on two devices
        eng.track({"type": "identify", "time": T0 + 100, "ids": {"cookie": cookie, "email": "ada@example.com"}})
    path = tmp_path / "d.jsonl"
    info = write_decisions(eng, path)
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert info == {"path": str(path), "rows": 42, "decisions": 42, "dropped_rows": 0}
    assert all(tuple(r) == DECISION_KEYS for r in recs)
    assert recs[0]["person"] == recs[1]["person"] and recs[0]["reward"] == 12.5
    assert {r["placement"] for r in recs} == {"hero"} and {r["content"] for r in recs} <= {"e0", "e1", "e2"}
    assert {(r["experiment"], r["variant"]) for r in recs} == {("x", "control"), ("x", "b"), (None, "holdout")}
    assert read_records(path) == recs and is_decision_log(recs)


def test_formats_are_told_apart_by_content(tmp_path: Path) -> None:
    csv_path = tmp_path / "units.jsonl"  # CSV behind a JSON suffix
    csv_path.write_text("unit,variant,reward\nu1,a,1.5\nu2,b,x\n", encoding="utf-8")
    assert read_records(csv_path) == [{"unit": "u1", "variant": "a", "reward": 1.5},
                                      {"unit": "u2", "variant": "b", "reward": "x"}]
    jl = tmp_path / "units.csv"  # JSON Lines behind a CSV suffix
    jl.write_text('\n{"unit": 1, "variant": "a"}\n\n', encoding="utf-8")
    assert read_records(jl) == [{"unit": 1, "variant": "a"}] and not is_decision_log(read_records(jl))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(SchemaError, match="^" + re.escape(f"Expected a JSON object, got `list` - at line 2 of {str(bad)!r}") + "$"):
        read_records(bad)
    wal = tmp_path / "events.log"
    wal.write_bytes(HEADER.pack(LOG_MAGIC, LOG_VERSION))
    with pytest.raises(SchemaError, match="got a write-ahead event log - at "):
        read_records(wal)
