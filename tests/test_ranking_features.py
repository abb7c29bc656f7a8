"""Ranking features over a real engine: the schema, point-in-time correctness in a replay,
snapshots, merges and erasure of the per-person state the features add."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from decisioner.engine import Engine
from decisioner.errors import NotReadyError, SchemaError
from decisioner.profiles import ProfileStore
from decisioner.ranking.features import FEATURE_NAMES, SCHEMA_VERSION, Featurizer, schema

N_EVENTS = 6000


@pytest.fixture(scope="module")
def events(small_world: str) -> list[dict]:
    lines = Path(small_world, "events.jsonl").read_text().splitlines()[:N_EVENTS]
    return [json.loads(x) for x in lines]


def _item_events(events: list[dict]) -> list[int]:
    return [k for k, e in enumerate(events) if e["type"] in ("add_to_cart", "purchase") and "item" in e]


def _features(engine: Engine, ev: dict) -> np.ndarray:
    fz = Featurizer.of(engine)
    row = engine.profile_row(ev["ids"])
    items = np.arange(0, engine.catalog.n_items, 7, dtype=np.int64)
    return fz.features(row, ev["time"], items, channel=ev.get("channel", "web"), device=ev.get("device"))


def test_schema_is_versioned_and_names_are_unique() -> None:
    assert schema() == {"version": SCHEMA_VERSION, "names": list(FEATURE_NAMES)}
    assert SCHEMA_VERSION == 1 and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == 29
    assert FEATURE_NAMES[:2] == ("affinity_score", "affinity")


def test_features_are_point_in_time(small_world: str, events: list[dict]) -> None:
    """A feature computed during a replay, before the event applies, equals the one an engine
    that saw only the earlier events computes."""
    engine = Engine.from_world(small_world, seed=0)
    picks = _item_events(events)[5::60][:6]
    during = {}
    for k, ev in enumerate(events[: picks[-1] + 1]):
        if k in picks:
            during[k] = _features(engine, ev)
        engine.track(ev)
    for k in picks:
        fresh = Engine.from_world(small_world, seed=0)
        for ev in events[:k]:
            fresh.track(ev)
        np.testing.assert_array_equal(_features(fresh, events[k]), during[k])
    # and the event itself changes them (its item is now recent): the check can fail
    assert not np.array_equal(_features(engine, events[picks[-1]]), during[picks[-1]], equal_nan=True)


def test_snapshot_round_trip_gives_identical_next_features(small_world: str, events: list[dict],
                                                           tmp_path: Path) -> None:
    engine = Engine.from_world(small_world, seed=0)
    for ev in events[:3000]:
        engine.track(ev)
    assert (engine.profiles.recent_item_ >= 0).any() and engine.scorer.counters_.counts_.any()
    engine.save(tmp_path / "snap")
    back = Engine.open(tmp_path / "snap", flush="off", hash_key=engine.config.identity.hash_key)
    for ev in events[3000:3400]:
        np.testing.assert_array_equal(_features(back, ev), _features(engine, ev))
        engine.track(ev)
        back.track(ev)


def test_state_written_before_recent_items_loads_with_none() -> None:
    st = ProfileStore(slots=2, capacity=2)
    st.add_recent(1, 5, 100)
    arrays, meta = st.to_state()
    old = {k: v for k, v in arrays.items() if not k.startswith("recent")}
    meta = {k: v for k, v in meta.items() if k != "recent_slots"}
    fresh = ProfileStore(slots=2, capacity=1)
    fresh.load_state((old, meta))
    assert fresh.recent_item_.shape == (2, 8) and (fresh.recent_item_ == -1).all() and not fresh.recent_t_.any()
    with pytest.raises(NotReadyError, match=re.escape(
        "expected profile state with 2 slots, 8 purchases, 4 recent items and 8 touchpoints, got 2, 8, 8 and 8 - at "
        "`profiles`"
    )):
        ProfileStore(slots=2, recent_slots=4).load_state(st.to_state())


def test_recent_items_ring_and_merge() -> None:
    st = ProfileStore(slots=2, capacity=2, recent_slots=3)
    for item, t in ((1, 10), (2, 20), (1, 5), (3, 30), (4, 40)):  # 1 keeps its later time, then is replaced
        st.add_recent(0, item, t)
    assert st.recent(0) == [(4, 40), (3, 30), (2, 20)]
    st.add_recent(0, 9, 1)  # older than everything held: nothing replaced
    assert st.recent(0) == [(4, 40), (3, 30), (2, 20)]
    st.add_recent(1, 7, 35)
    st.add_recent(1, 3, 50)
    st.merge(0, 1, np.ones(1))
    assert st.recent(0) == [(3, 50), (4, 40), (7, 35)] and st.recent(1) == []


def test_erasure_and_export_cover_recent_items(small_world: str, events: list[dict]) -> None:
    engine = Engine.from_world(small_world, seed=0)
    for ev in events[:3000]:
        engine.track(ev)
    ev = events[_item_events(events[:3000])[-1]]
    row = engine.profile_row(ev["ids"])
    exported = engine.export(ev["ids"])
    assert ev["item"] in [i for i, _ in exported["recent_items"]]
    engine.forget(row=row)
    assert (engine.profiles.recent_item_[row] == -1).all() and not engine.profiles.recent_t_[row].any()


def test_rows_past_the_store_and_bad_context(small_world: str) -> None:
    engine = Engine.from_world(small_world, seed=0)
    fz = Featurizer.of(engine)
    x = fz.features(engine.profiles.n_rows + 10, 1_700_000_000_000, np.array([0, 1]))
    assert np.isnan(x[:, FEATURE_NAMES.index("affinity")]).all()
    assert np.isfinite(x[:, FEATURE_NAMES.index("affinity_score")]).all()
    with pytest.raises(SchemaError, match=re.escape("Expected `channel` to be a str or an int >= 0, got -1 - at "
                                                    "`context`")):
        fz.context(-1, None, 0)
