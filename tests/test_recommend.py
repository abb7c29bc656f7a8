"""Engine.recommend / recommend_many: read-only (nothing changes), the batch equals single
calls, personalised for known people with consent."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np

from decisioner import Engine
from statecheck import assert_same, engine_state


def test_recommend_many_equals_recommend_and_changes_nothing(small_world: str) -> None:
    lines = (Path(small_world) / "events.jsonl").read_bytes().splitlines()[:3000]
    e = Engine.from_world(small_world, seed=0)
    for ln in lines:
        e.track(ln)
    evs = [msgspec.json.decode(ln) for ln in lines[-300:]]
    ids = [ev["ids"] for ev in evs] + [{"cookie": "never-seen"}]
    now = evs[-1]["time"]
    before = engine_state(e)
    single = [e.recommend(i, placement="home_recs", now=now) for i in ids]
    batch = e.recommend_many(ids, placement="home_recs", now=now)
    assert_same(before, engine_state(e))
    assert [d.slots for d in batch] == [d.slots for d in single]
    assert [d.personalized for d in batch] == [d.personalized for d in single]
    assert not batch[-1].personalized and batch[-1].profile == -1
    assert sum(d.personalized for d in batch) > 250
    camp = e.recommend_many(ids[:5], placement="email_hero", now=[now] * 5)
    assert all(len(d.slots) == 1 for d in camp)
    assert np.all([d.decision_id == "" for d in batch])
