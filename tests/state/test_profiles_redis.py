"""Profile rows and counters on a real Redis: compare-and-set, the local cache, additive counters."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from decisioner import Engine
from decisioner.state import RedisState
from decisioner.state.counters import SharedCounters
from decisioner.state.profiles import RowStore
from decisioner.state.stream import DecisionStream, read_stream
from redis_servers import RedisCluster, RedisServer


@pytest.fixture(params=["standalone", "cluster"])
def state(request: pytest.FixtureRequest, key_prefix: str) -> Iterator[RedisState]:
    if request.param == "standalone":
        srv: RedisServer = request.getfixturevalue("redis_server")
        st = RedisState.from_url(srv.url, key_prefix=key_prefix)
    else:
        cl: RedisCluster = request.getfixturevalue("redis_cluster")
        st = RedisState.from_url(cl.url, key_prefix=key_prefix, cluster=True)
    yield st
    st.close()


def test_compare_and_set_refuses_a_stale_version_and_returns_the_stored_row(state: RedisState) -> None:
    a, b = RowStore(state), RowStore(state)
    assert a.fetch(7) == (0, b"", a.cached(7).at)
    assert a.write(7, 0, b"one") is None
    stale = b.write(7, 0, b"two")  # b computed from "nothing stored": refused, the stored row comes back
    assert stale is not None and (stale.version, stale.value) == (1, b"one")
    assert b.write(7, stale.version, b"two") is None
    assert a.read(7).value == b"two" and a.read(7).version == 2
    assert b.conflicts_ == 1 and not b.delete(7, 1) and b.delete(7, 2)
    assert a.fetch(7).version == 0


def test_concurrent_increments_by_compare_and_set_lose_nothing(state: RedisState) -> None:
    n_threads, per = 4, 50

    def work() -> None:
        rs = RowStore(state)
        for _ in range(per):
            c = rs.read(1)
            while True:
                got = rs.write(1, c.version, str(int(c.value or b"0") + 1).encode())
                if got is None:
                    break
                c = got

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert RowStore(state).fetch(1).value == str(n_threads * per).encode()


def test_cache_serves_within_its_staleness_bound(state: RedisState) -> None:
    a, b = RowStore(state, max_stale_ms=60_000), RowStore(state)
    assert a.write(3, 0, b"x") is None
    assert b.write(3, 1, b"y") is None
    assert a.read(3).value == b"x"  # within max_stale_ms: the cached value, by contract
    a.max_stale_ms = 0
    assert a.read(3).value == b"y"  # the version moved: fetched


def _events(world: str, n: int) -> list[dict]:
    return [json.loads(x) for x in Path(world, "events.jsonl").read_text().splitlines()[:n]]


def test_counters_of_two_workers_sum_to_those_of_one_engine(state: RedisState, small_world: str) -> None:
    # without consent changes, each event's counts do not depend on who else saw the person
    events = [{k: v for k, v in ev.items() if k not in ("consent", "gpc", "tcf")} for ev in _events(small_world, 1200)]
    one = Engine.from_world(small_world)
    w = [Engine.from_world(small_world, instance=f"w{i}") for i in range(2)]
    sc = [SharedCounters(e, state, flush_events=50) for e in w]
    for j, ev in enumerate(events):
        one.track(ev)
        k = j % 2
        w[k].track(ev)
        if sc[k].tick():
            sc[k].sync()
    for s in sc:
        s.sync()
    sc[0].sync()  # the first also sees the second's last increments
    at = events[-1]["time"]
    want = one.scorer.popularity_.acc_ * 2.0 ** (-(at - one.scorer.popularity_.t_ref_) / one.scorer.popularity_.half_life_ms)
    for e in w:
        p = e.scorer.popularity_
        got = p.acc_ * 2.0 ** (-(at - p.t_ref_) / p.half_life_ms)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(e.scorer.counters_.totals_ * 2.0 ** (-(at - e.scorer.counters_.t_ref_) / e.scorer.counters_.half_life_ms),
                                   one.scorer.counters_.totals_ * 2.0 ** (-(at - one.scorer.counters_.t_ref_) / one.scorer.counters_.half_life_ms), rtol=1e-9)
    assert want.sum() > 0


def test_decisions_go_to_a_stream(state: RedisState, small_world: str) -> None:
    e = Engine.from_world(small_world, instance="w9")
    ds = DecisionStream("redis", state=state)
    ev = {"type": "view", "time": 1_700_000_000_000, "ids": {"cookie": "c1"}, "item": e.catalog.ids[0]}
    d = e.decide(ev, placement=e.placements[0])
    ds.add(d)
    assert read_stream(state) == []
    assert ds.flush() == 1
    assert read_stream(state) == [d]
