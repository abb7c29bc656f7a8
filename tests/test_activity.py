"""ActivityStore: recency and windowed counts against the reference's plain event lists,
merges, consent, erasure and snapshots through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import reference as ref
from decisioner.activity import ActivityStore
from decisioner.catalog import Catalog
from decisioner.config import ActivitySpec, load_config_dict
from decisioner.engine import Engine

DAY = 86_400_000
T0 = 1_700_000_000_000


def test_counts_and_recency_follow_the_reference_through_merges(seed: int) -> None:
    rng = np.random.default_rng(seed)
    spec = ActivitySpec(types=("purchase", "email_open"), bucket_days=2, buckets=5)
    store = ActivityStore(spec, capacity=2)
    store.ensure(40)
    events: list[list[tuple[str, int]]] = [[] for _ in range(40)]
    for _ in range(400):
        r = int(rng.integers(40))
        ty = ["purchase", "email_open", "view"][rng.integers(3)]
        t = T0 + int(rng.integers(0, 30 * DAY))
        store.record(r, ty, t)
        if ty != "view":
            events[r].append((ty, t))
        if rng.random() < 0.05:  # merge two profiles
            a, b = (int(x) for x in rng.choice(40, 2, replace=False))
            store.merge(a, b)
            events[a] += events[b]
            events[b] = []
    for r in range(40):
        for ty in spec.types:
            now = T0 + int(rng.integers(0, 32 * DAY))
            assert store.days_since_one(r, ty, now) == ref.days_since_ref(events[r], ty, now)
            for days in (1, 2, 3, 7, 10):
                want = ref.activity_count_ref(events[r], ty, now, days, 2, 5)
                assert store.count_one(r, ty, store.window_buckets(days), now) == want, (r, ty, days)
    many = store.count_many("purchase", 2, T0 + 20 * DAY, 40)
    assert many.tolist() == [ref.activity_count_ref(e, "purchase", T0 + 20 * DAY, 4, 2, 5) for e in events]
    assert store.nbytes_per_profile() == 2 * (8 + 2 * 5) + 4


def _engine() -> Engine:
    cfg = load_config_dict({"identity": {"hash_key": "ab" * 16}, "activity": {"types": ["purchase", "view"]},
                            "placements": [{"name": "home", "kind": "recommendation"}]})
    return Engine(cfg, Catalog([{"id": f"i{j}", "category": "c"} for j in range(3)]), seed=0)


def test_engine_counts_with_personalization_consent_only_and_forgets_on_erasure(tmp_path: Path) -> None:
    eng = _engine()
    eng.track({"type": "purchase", "time": T0, "ids": {"cookie": "a"}, "item": "i0"})
    eng.track({"type": "view", "time": T0 + DAY, "ids": {"cookie": "a"}, "item": "i1"})
    eng.track({"type": "purchase", "time": T0, "ids": {"cookie": "b"}, "item": "i0",
               "consent": {"personalization": False}})
    ra, rb = eng.profile_row({"cookie": "a"}), eng.profile_row({"cookie": "b"})
    act = eng.activity_
    assert act.days_since_one(ra, "purchase", T0 + 2 * DAY) == 2.0 and act.count_one(ra, "view", 1, T0 + DAY) == 1.0
    assert act.days_since_one(rb, "purchase", T0 + DAY) == float("inf")  # refused: not counted
    assert eng.export({"cookie": "a"})["activity"]["purchase"]["last"] == T0
    eng.track({"type": "identify", "time": T0 + 2 * DAY, "ids": {"cookie": "a", "email": "a@example.com"}})
    eng.track({"type": "purchase", "time": T0 + 3 * DAY, "ids": {"cookie": "c", "email": "a@example.com"},
               "item": "i2"})
    row = eng.profile_row({"cookie": "a"})
    assert act.count_one(row, "purchase", 7, T0 + 3 * DAY) == 2.0  # followed the merge
    eng.save(tmp_path / "snap")
    eng2 = Engine.open(tmp_path / "snap", hash_key="ab" * 16, flush="off")
    assert eng2.activity_.count_one(row, "purchase", 7, T0 + 3 * DAY) == 2.0  # snapshot round trip
    eng.forget(row=row)  # the whole person
    assert act.head_[row] == -1 and act.last_[row].tolist() == [0, 0]
