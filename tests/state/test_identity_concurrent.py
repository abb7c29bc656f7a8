"""Many worker processes merging the same people at once on one Redis (standalone and a
3-master Cluster): no identifier lost, one survivor per person, every merge rule, tombstone and
do-not-link pair obeyed, every call counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from decisioner.state import RedisState
from decisioner.state.identity import RedisIdentity
from redis_servers import RedisCluster, RedisServer

KEY = b"h" * 16  # the workers' secret (tests/state/_hammer.py)
WORKERS = 6
HAMMER = Path(__file__).with_name("_hammer.py")


def _people(n: int = 30) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """``n`` people of four identifiers each, and events that link every pair of them, plus
    shared devices (a cookie seen with two people's user ids: the unique rule decides),
    placeholders, erased identifiers and do-not-link pairs (set up by the test)."""
    people = [{"cookie": f"ck-{i}-a", "email": f"p{i}@mail.example.com", "user_id": f"u{i}", "phone": ""}
              for i in range(n)]
    for i, p in enumerate(people):
        p["cookie2"] = f"ck-{i}-b"
        del p["phone"]
    events: list[dict[str, Any]] = []
    t = 1_700_000_000_000
    for i, p in enumerate(people):
        items = list(p.items())
        for a in range(len(items)):
            events.append({"ids": {items[a][0]: items[a][1]}, "time": t + i})
            for b in range(a + 1, len(items)):
                events.append({"ids": {items[a][0]: items[a][1], items[b][0]: items[b][1]}, "time": t + i})
    for k in range(0, n - 1, 3):  # shared tablet of people k and k + 1
        for j in (k, k + 1):
            events.append({"ids": {"cookie": f"tablet-{k}", "user_id": f"u{j}"}, "time": t})
    for k in range(0, n, 5):
        events.append({"ids": {"cookie": f"ck-{k}-a", "email": "null"}, "time": t})  # a placeholder
        events.append({"ids": {"cookie": f"ck-{k}-b", "email": f"gone{k}@mail.example.com"}, "time": t})
        events.append({"ids": {"cookie": f"dnl-{k}", "email": f"apart{k}@mail.example.com"}, "time": t})
    return people, events


def _hammer(url: str, prefix: str, cluster: bool, tmp: Path) -> tuple[RedisIdentity, list[dict[str, str]], int]:
    people, events = _people()
    st = RedisState.from_url(url, key_prefix=prefix, cluster=cluster)
    ids = RedisIdentity(st, KEY)
    n = len(people)
    for k in range(0, n, 5):
        ids.forget({"email": f"gone{k}@mail.example.com"})  # tombstones before any event
        ids.link_one({"cookie": f"dnl-{k}", "email": f"apart{k}@mail.example.com"})
        ids.unlink({"email": f"apart{k}@mail.example.com"})  # a do-not-link pair
    before = ids.metrics()["events"]
    path = tmp / "events.json"
    path.write_text(json.dumps(events))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(HAMMER), url, prefix, "1" if cluster else "0", str(path), str(w)],
                              env=env) for w in range(WORKERS)]
    try:
        deadline = time.monotonic() + 120
        while int(st.execute("GET", st.key("hammer", "ready")) or 0) < WORKERS:
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "workers did not start"
            time.sleep(0.02)
        st.execute("SET", st.key("hammer", "go"), "1")  # all at once
        codes = [p.wait(300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0] * WORKERS
    m = ids.metrics()
    # every call counted: each event linked or suppressed, by every worker
    assert m["events"] - before + m["suppressed_events"] == WORKERS * len(events)
    return ids, people, n


def _check(ids: RedisIdentity) -> None:
    people, _ = _people()
    assert ids.check() == []
    n = len(people)
    for i, p in enumerate(people):
        persons = {ids.resolve_one({t: v}) for t, v in p.items()}
        assert len(persons) == 1 and -1 not in persons, (i, persons)  # no identifier lost, one survivor
    owners = [ids.resolve_one({"user_id": f"u{i}"}) for i in range(n)]
    assert len(set(owners)) == n  # two user ids never merge (unique type)
    for k in range(0, n - 1, 3):
        tablet = ids.resolve_one({"cookie": f"tablet-{k}"})
        assert tablet in (owners[k], owners[k + 1])
    for k in range(0, n, 5):
        assert ids.resolve_one({"email": f"gone{k}@mail.example.com"}) == -1  # tombstone held
        assert ids.resolve_one({"cookie": f"dnl-{k}"}) != ids.resolve_one({"email": f"apart{k}@mail.example.com"})
    assert ids.resolve_one({"email": "null"}) == -1
    m = ids.metrics()
    assert m["profiles"] == n + sum(1 for k in range(0, n, 5)) * 2  # the people, and both ends of each pair
    assert m["refused"]["unique"] > 0 and m["refused"]["do_not_link"] > 0 and m["refused"]["blocked"] > 0
    assert m["suppressed_events"] > 0


@pytest.mark.slow
def test_concurrent_merges_on_a_standalone_server(redis_server: RedisServer, key_prefix: str, tmp_path: Path) -> None:
    ids, _, _ = _hammer(redis_server.url, key_prefix, False, tmp_path)
    _check(ids)
    ids.clear()


@pytest.mark.slow
def test_concurrent_merges_on_a_cluster(redis_cluster: RedisCluster, key_prefix: str, tmp_path: Path) -> None:
    ids, _, _ = _hammer(redis_cluster.url, key_prefix, True, tmp_path)
    _check(ids)
    ids.clear()
