"""Bounded memory on the engine: flat memory over ten times ``max_profiles`` of new people with
the configured windows, outcomes past the decision log's window, erasure and export across spill
files, snapshots and replay that keep the window, and tombstones counted with their bytes.

``pytest tests/test_memory.py -s -k flat`` prints the figures the README quotes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner._kernels import graph as K
from decisioner.bench import _rss_mb, build_engine, memory_report
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.decisionlog import read_spilled
from decisioner.errors import ConfigError, UnknownDecisionError
from decisioner.identity.store import TOMBSTONE_BYTES
from statecheck import assert_same, engine_state

T0 = 1_700_000_000_000
KEY = "3c" * 16
MAX_PROFILES = 2_000
#: the windows of the flat-memory run: 2,048 decision log rows in chunks of 256 (512 four-slot
#: decisions; exposures are bounded by the same number), 1,024 pending outcomes
WINDOWS: dict[str, Any] = {
    "decision_log": {"max_rows": 2_048, "chunk_rows": 256},
    "limits": {"max_pending_decisions": 1_024},
    "experiments": [{"name": "hx", "placement": "home", "variants": [{"name": "a"}, {"name": "b"}]}],
}


def full(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


def test_memory_is_flat_over_ten_times_max_profiles_of_new_people() -> None:
    st = build_engine(MAX_PROFILES, 500, seed=3, options=WINDOWS)
    eng = st.engine
    reports: dict[int, dict[str, Any]] = {}
    rss: dict[int, float] = {}
    for times in range(1, 11):
        for req in st.newcomers(MAX_PROFILES, seed=times):  # every one a new person, deciding
            eng.decide(req, placement="home")
        if times in (2, 10):
            reports[times], rss[times] = memory_report(eng), _rss_mb()
    assert eng.evicted_ == 10 * MAX_PROFILES and eng.identity.n_profiles <= MAX_PROFILES
    assert eng.decision_log.dropped_rows_ > 0 and len(eng.decision_log) <= 2_048
    assert len(eng.pending_) == 1_024 and eng.experiments_.exposures.dropped_ > 0
    at2, at10 = reports[2], reports[10]
    print(f"\n{'component':<18}{'bytes at 2x':>14}{'bytes at 10x':>14}")
    for name in at2["components"]:
        print(f"{name:<18}{at2['components'][name]:>14,}{at10['components'][name]:>14,}")
    print(f"{'total':<18}{at2['total_bytes']:>14,}{at10['total_bytes']:>14,}")
    print(f"{'rss (MiB)':<18}{rss[2]:>14.1f}{rss[10]:>14.1f}")
    for name, b in at10["components"].items():
        assert abs(b - at2["components"][name]) <= 0.1 * at2["components"][name], name
    assert abs(at10["total_bytes"] - at2["total_bytes"]) <= 0.1 * at2["total_bytes"]
    assert abs(rss[10] - rss[2]) <= 0.1 * rss[2]


# ---------------------------------------------------------------- an engine with a small window


def make_engine(tmp: Path, **log: Any) -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": KEY},
        "decision_log": {"max_rows": 256, "chunk_rows": 128, "on_full": "spill", "spill_dir": str(tmp / "spill"),
                         **log},
        "placements": [
            {"name": "home", "kind": "recommendation", "slots": 2, "policy": {"kind": "greedy"}},
            {"name": "hero", "kind": "campaign", "policy": {"kind": "thompson"},
             "experiences": [{"id": "x"}, {"id": "y"}]},
        ],
    })
    cat = Catalog([{"id": f"{c}-{j}", "category": c, "brand": "b", "colour": "red", "price": 10.0 + j}
                   for c in ("shoes", "bags", "hats") for j in range(4)])
    return Engine(cfg, cat, seed=3)


def view(i: int, t: int) -> dict[str, Any]:
    return {"type": "view", "time": T0 + t * 1000, "ids": {"cookie": f"ck-{i}"}, "item": "shoes-1"}


def run(eng: Engine, start: int, n: int) -> list[str]:
    ids = []
    for t in range(start, start + n):
        ids.append(eng.decide(view(t % 7, t), placement="hero" if t % 2 else "home").decision_id)
    return ids


def test_an_outcome_past_the_window_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, on_full="drop", spill_dir=None)
    first = eng.decide(view(0, 0), placement="hero")
    run(eng, 1, 400)
    assert not eng.decision_log.holds(eng.pending_.get(first.decision_id).handle)  # type: ignore[union-attr]
    before = engine_state(eng)
    with pytest.raises(UnknownDecisionError, match=full(
            "Expected a decision in the decision log's window (handles from "
            f"{eng.decision_log.first_handle}), got handle 0: its rows left memory (`decision_log.max_rows` = 256)")):
        eng.observe({"decision_id": first.decision_id, "kind": "click", "time": T0 + 500_000})
    assert_same(before, engine_state(eng))
    recent = run(eng, 401, 1)[-1]  # a hero decision in the window is rewarded as before
    eng.observe({"decision_id": recent, "kind": "click", "time": T0 + 500_000})
    assert eng.decision_log.column("reward")[-1] == 1.0


def test_erasure_and_export_cover_spilled_decisions(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    run(eng, 0, 700)
    spilled = read_spilled(tmp_path / "spill")
    me = eng.person_id({"cookie": "ck-3"})
    n_spilled = int(np.count_nonzero(spilled["person"] == me))
    n_memory = int(np.count_nonzero(eng.decision_log.column("person") == me))
    assert n_spilled > 0 and n_memory > 0
    exported = eng.export({"cookie": "ck-3"})
    assert len(exported["decisions"]) == n_spilled + n_memory
    seqs = [int(d["decision_id"].split("-")[1]) for d in exported["decisions"]]
    assert seqs == sorted(seqs) and seqs[0] < int(spilled["seq"][-1])
    eng.forget({"cookie": "ck-3"})
    assert not (read_spilled(tmp_path / "spill")["person"] == me).any()
    assert not (eng.decision_log.column("person") == me).any()
    assert len(read_spilled(tmp_path / "spill")["seq"]) == len(spilled["seq"])  # the rows stay, anonymous
    assert eng.export({"cookie": "ck-3"})["found"] is False


def test_a_snapshot_and_a_replay_keep_the_window(tmp_path: Path) -> None:
    live = make_engine(tmp_path)
    live.durable(tmp_path / "state")
    run(live, 0, 300)
    live.save(tmp_path / "state")
    run(live, 300, 300)
    live.forget({"cookie": "ck-2"})
    run(live, 600, 50)
    assert live.decision_log.first_handle > 0
    files = {p.name: p.read_bytes() for p in live.decision_log.spill_files()}
    live.detach_log()
    reopened = Engine.open(tmp_path / "state", hash_key=KEY, flush="off")  # snapshot + log since
    assert_same(engine_state(live), engine_state(reopened))
    replayed = make_engine(tmp_path)  # the same spill directory: it rewrites the same files
    replayed.replay_records(replayed.journal.recover(tmp_path / "state" / "events.prev.log"))
    replayed.replay_records(replayed.journal.recover(tmp_path / "state" / "events.log"))
    assert_same(engine_state(live), engine_state(replayed))
    assert {p.name: p.read_bytes() for p in replayed.decision_log.spill_files()} == files
    for e in (live, reopened, replayed):
        run(e, 650, 200)
    assert_same(engine_state(live), engine_state(reopened))
    assert_same(engine_state(live), engine_state(replayed))


def test_tombstones_are_counted_with_their_bytes(tmp_path: Path) -> None:
    eng = make_engine(tmp_path)
    run(eng, 0, 20)
    assert memory_report(eng)["tombstones"] == 0
    eng.forget({"cookie": "ck-1"})
    eng.forget({"email": "never-seen@example.com"})  # a tombstone for an identifier never seen
    rep = memory_report(eng)
    assert rep["tombstones"] == 2 == eng.identity.metrics()["tombstones"]
    assert K.NODE_DTYPE.itemsize == 26 and TOMBSTONE_BYTES == pytest.approx(26 + 4 + 8 * 4 / 3)  # as documented
    assert rep["tombstone_bytes"] == round(2 * TOMBSTONE_BYTES)
    run(eng, 20, 100)  # traffic never adds tombstones
    assert memory_report(eng)["tombstones"] == 2


@pytest.mark.parametrize(
    ("log", "msg"),
    [
        ({"max_rows": 1000, "chunk_rows": 4096},
         "Invalid config: expected `max_rows` >= `chunk_rows` (4096), got 1000 - at `$.decision_log`"),
        ({"on_full": "spill"},
         "Invalid config: expected a `spill_dir` with `on_full = \"spill\"`, got none - at `$.decision_log`"),
        ({"on_full": "spill", "spill_dir": ""},
         "Invalid config: expected a directory in `spill_dir`, got '' - at `$.decision_log`"),
    ],
)
def test_window_settings_are_checked(log: dict[str, Any], msg: str) -> None:
    with pytest.raises(ConfigError, match=full(msg)):
        load_config_dict({"decision_log": log})
