"""Two workers in one process, one person's events alternating between them: every write of the
second finds its cached row one version behind, fails its compare-and-set, loads the stored row
and applies the event again. The retried events must count once (popularity, item counts,
consent history, events, logged decisions) and the state must equal one embedded engine's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from decisioner import Engine
from decisioner.cli_state import embedded_digest
from decisioner.state import RedisState
from decisioner.state.digest import canonical, digest, people_of_engine
from decisioner.state.shared import SharedEngine
from decisioner.state.stream import read_consent, read_stream
from decisioner.state.workers import _decide_on, _last_time, shared_canonical
from redis_servers import RedisServer


def test_alternating_workers_retry_and_count_each_event_once(small_world: str, redis_server: RedisServer,
                                                             key_prefix: str, tmp_path: Path) -> None:
    lines = [ln for ln in Path(small_world, "events.jsonl").read_text().splitlines() if ln.strip()][:400]
    for j in range(5, len(lines), 20):  # consent changes: they gate popularity and logging, and are history
        ev = json.loads(lines[j])
        ev["consent"] = {"analytics": (j // 20) % 2 == 0, "personalization": (j // 40) % 2 == 0}
        lines[j] = json.dumps(ev)
    path = tmp_path / "ev.jsonl"
    path.write_text("\n".join(lines) + "\n")
    eng = Engine.from_world(small_world)
    on = _decide_on(eng)
    by = dict.fromkeys(eng.placements, 0)
    n_logged = 0  # decisions the embedded engine logs (analytics consent)
    for ln in lines:
        ev = json.loads(ln)
        if ev["type"] in on:
            rows = len(eng.decision_log)
            eng.decide(ev, placement=on[ev["type"]])
            by[on[ev["type"]]] += 1
            n_logged += len(eng.decision_log) > rows
        else:
            eng.track(ev)
    want = embedded_digest(eng, str(path), {"decisions_by_placement": by})
    state = RedisState.from_url(redis_server.url, key_prefix=key_prefix)
    try:
        w = [SharedEngine.connect(Engine.from_world(small_world, instance=f"w{i}"), state, identity_cache_ms=0)
             for i in range(2)]
        for j, ln in enumerate(lines):
            ev = json.loads(ln)
            pl = on.get(ev["type"])
            if pl is not None:
                w[j % 2].decide(ev, placement=pl)
            else:
                w[j % 2].track(ev)
        for x in w:
            x.sync()
        # a track on a stale cache fails its compare-and-set and is applied again (a decide
        # checks the version first, so it decides on the fresh row)
        assert w[0].retries_ + w[1].retries_ > 10, "the alternation made the caches stale"
        got = shared_canonical(small_world, state, at=_last_time([ln.encode() for ln in lines]))
        assert digest(got) == want
        events = sum(x.engine.tracker.events_ for x in w)
        assert events == len(lines)
        history = read_consent(state)
        assert len(history) == eng.consent.n_history_ > 0
        assert sorted(h["time"] for h in history) == sorted(eng.consent.history_["time"][: eng.consent.n_history_])
        assert len(read_stream(state)) == n_logged
        # w[0] synced before w[1]'s last increments: its local totals are one sync behind, Redis's are whole
        n_dec = sum(1 for ln in lines if json.loads(ln)["type"] in on)
        assert w[0].counters.decisions_.sum() < n_dec == w[0].counters.totals()["decisions"].sum()
        w[0].sync()
        assert np.isclose(w[0].counters.decisions_.sum(), n_dec)
    finally:
        state.close()


@pytest.mark.parametrize("call", ["track", "decide"])
def test_a_cached_person_merged_away_elsewhere_lands_on_the_survivor(
    call: str, small_world: str, redis_server: RedisServer, key_prefix: str
) -> None:
    t = 1_700_000_000_000
    item = Engine.from_world(small_world).catalog.ids[3]
    events = [
        {"type": "view", "time": t, "ids": {"cookie": "c1"}, "item": item},  # A: person P1, cached
        {"type": "view", "time": t + 1000, "ids": {"email": "e1@mail.example.com", "user_id": "u1"}, "item": item},
        # B: merges P1 into the larger P2 (P1's row becomes a tombstone, folded into P2's)
        {"type": "view", "time": t + 2000, "ids": {"cookie": "c1", "email": "e1@mail.example.com"}, "item": item},
        {"type": "view", "time": t + 3000, "ids": {"cookie": "c1"}, "item": item},  # A again: its cache says P1
    ]
    eng = Engine.from_world(small_world)
    for ev in events:
        eng.track(ev) if call == "track" or ev is not events[-1] else eng.decide(ev, placement="home_recs")
    want = canonical(eng, people_of_engine(eng), at=t + 3000)["people"]
    state = RedisState.from_url(redis_server.url, key_prefix=key_prefix)
    try:
        a, b = (SharedEngine.connect(Engine.from_world(small_world, instance=n), state, identity_cache_ms=60_000)
                for n in ("a", "b"))
        p1 = a.track(events[0])
        p2 = b.track(events[1])
        assert b.track(events[2]) == p2 != p1
        if call == "track":
            assert a.track(events[3]) == p2
        else:
            assert a.decide(events[3], placement="home_recs").person == p2
        assert a.link_hits_ == 1, "A resolved the last event from its cache first (to the retired P1)"
        got = shared_canonical(small_world, state, at=t + 3000)["people"]
    finally:
        state.close()
    assert got == want and len(got) == 1


def test_a_worker_connects_from_the_state_section(small_world: str, redis_server: RedisServer, key_prefix: str) -> None:
    import msgspec

    from decisioner.config import StateSpec
    from decisioner.errors import ConfigError

    eng = Engine.from_world(small_world)
    with pytest.raises(ConfigError, match=re.escape('expected `state.backend = "redis"`, got ' + repr("embedded"))):
        SharedEngine.connect(eng)
    cfg = msgspec.structs.replace(eng.config, state=StateSpec(backend="redis", url=redis_server.url,
                                                              key_prefix=key_prefix))
    w = SharedEngine.connect(Engine(cfg, eng.catalog, instance="s"))
    try:
        assert w.track({"type": "view", "time": 1_700_000_000_000, "ids": {"cookie": "s1"},
                        "item": eng.catalog.ids[0]}) >= 1
        assert w.state.prefix == key_prefix
    finally:
        w.state.close()
