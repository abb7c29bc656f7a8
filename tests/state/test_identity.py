"""The identity graph on Redis against the embedded graph: the same partition of identifiers
into people, the same refusals, the same statuses, through links, erasure, readmission and
unmerge, on a generated world's identifier stream; then the small cases one by one."""

from __future__ import annotations

import re

import numpy as np
import pytest

from decisioner.config import IdentitySpec
from decisioner.errors import ConfigError, SchemaError, StateUnavailable
from decisioner.identity import IdentityGraph
from decisioner.state import RedisState
from decisioner.state.identity import RedisIdentity
from redis_servers import RedisCluster, RedisServer

from .parity import link_both as _link_both
from .parity import same_graph as _same_graph
from .parity import world_stream as _world_stream

KEY = b"k" * 16


@pytest.mark.parametrize("where", ["server", "cluster"])
def test_parity_with_the_embedded_graph_on_a_world_stream(
    where: str, redis_server: RedisServer, redis_cluster: RedisCluster, key_prefix: str,
) -> None:
    spec, key, events = _world_stream()
    url = redis_server.url if where == "server" else redis_cluster.url
    r = RedisIdentity(RedisState.from_url(url, key_prefix=key_prefix, cluster=where == "cluster"), key, spec=spec)
    g = IdentityGraph(key, spec=spec)
    g.add_listener(lambda survivor, absorbed: g.release_rows(absorbed))  # as the profile store does
    n = len(events) if where == "server" else 1500
    row_to_person: dict[int, int] = {}
    for ev in events[:n]:
        row, person = _link_both(g, r, ev)
        if row >= 0 and person >= 0:
            # one person per row at any time (rows are recycled after merges, so map forward)
            row_to_person[row] = person
    _same_graph(g, r)
    assert r.metrics()["refused"]["blocked"] > 0 and r.metrics()["merges"] > 0
    for ev in events[:n:40]:  # what a person's access export shows: the same on both
        row, person = g.resolve_one(ev["ids"]), r.resolve_one(ev["ids"])
        assert (row < 0) == (person < 0)
        if row >= 0:
            key = lambda d: sorted(d.items())  # noqa: E731
            assert sorted(map(key, r.identifiers_of(person))) == sorted(map(key, g.identifiers_of(row)))
            assert r.evidence_of(person) == g.evidence_of(row)
    # erase a few people's identifiers (bridges split what remains), then replay more events
    rng = np.random.default_rng(5)
    picked = [events[i]["ids"] for i in rng.choice(n, 25, replace=False)]
    for ids in picked:
        first = dict(list(ids.items())[:1])
        try:
            a = g.forget(first)
        except SchemaError:
            continue
        b = r.forget(first)
        assert (len(a.new_rows), len(a.erased)) == (len(b.new), len(b.erased))
    _same_graph(g, r)
    for ev in events[: n // 3]:  # the same events again: erased identifiers are suppressed now
        _link_both(g, r, ev)
    _same_graph(g, r)
    assert r.metrics()["suppressed_events"] > 0
    for ids in picked[:5]:  # explicit consent lifts a tombstone
        _link_both(g, r, {"ids": ids, "time": 1_700_000_000_000}, consent={"personalization": True})
    _same_graph(g, r)
    # unlink: do-not-link pairs keep the identifier apart from then on
    for ev in events[:400]:
        ids = ev["ids"]
        if len(ids) < 2:
            continue
        first = dict(list(ids.items())[:1])
        try:
            row = g.resolve_one(first)
        except SchemaError:
            continue
        if row < 0 or len(g.members(row)) < 3:
            continue
        a = g.unlink(first)
        b = r.unlink(first)
        assert len(a.new_rows) == len(b.new)
    _same_graph(g, r)
    assert r.metrics()["do_not_link_pairs"] > 0
    for ev in events[: n // 2]:
        _link_both(g, r, ev)
    _same_graph(g, r)
    assert r.metrics()["refused"]["do_not_link"] > 0
    r.clear()


def test_small_cases(redis_server: RedisServer, key_prefix: str) -> None:
    r = RedisIdentity(RedisState.from_url(redis_server.url, key_prefix=key_prefix), KEY)
    a = r.link_one({"cookie": "c1"})
    assert a.new and a.person == 1 and r.resolve_one({"cookie": "c1"}) == 1
    b = r.link_one({"cookie": "c2", "email": "ada@example.com"})
    assert b.person == 2
    c = r.link_one({"cookie": "c1", "email": "ADA@example.com "})
    assert c.absorbed in ((1,), (2,)) and not c.new
    survivor = c.person
    assert r.resolve_one({"cookie": "c1"}) == r.resolve_one({"cookie": "c2"}) == survivor
    def key(t: str, v: str) -> int:
        return int(r.keys.keys_of({t: v})[0][0, 0])

    assert sorted(r.members(survivor)) == sorted([key("cookie", "c1"), key("cookie", "c2"),
                                                  key("email", "ada@example.com")])
    assert r.members(c.absorbed[0]) == []  # retired, never reused
    d = r.link_one({"email": "null", "cookie": "c3"})
    assert d.refused and d.new and r.resolve_one({"email": "null"}) == -1
    assert r.link_one({"user_id": "u1", "cookie": "c1"}).person == survivor
    refused = r.link_one({"user_id": "u2", "cookie": "c1"})  # a second user id: unique type
    assert refused.refused and refused.person != survivor
    assert r.metrics()["refused"]["unique"] == 1
    # no raw identifier reaches the server
    names = [k for k in r.state.client.scan_iter(match=f"{{{key_prefix}:idg}}*")]
    dump = b"".join(f + v for n in names for f, v in r.state.execute("HGETALL", n).items())
    assert len(names) > 5 and len(dump) > 200 and b"ada@example.com" not in dump and b"example" not in dump
    with pytest.raises(SchemaError, match=re.escape("Expected at least one identifier, got none - at `$.ids`")):
        r.link_one({})
    with pytest.raises(SchemaError, match=re.escape("Expected an email address, got 'nope' - at `$.ids.email`")):
        r.link_one({"cookie": "c9", "email": "nope"})
    assert r.resolve_one({"cookie": "c9"}) == -1  # the rejected event changed nothing
    with pytest.raises(SchemaError, match=re.escape("Expected either `ids` or `person`, got neither - at `forget`")):
        r.forget()
    gone = r.forget(person=survivor)
    assert gone.erased == (survivor,) and r.resolve_one({"cookie": "c1"}) == -1
    assert r.link_one({"cookie": "c1"}).suppressed
    with pytest.raises(SchemaError, match=re.escape("expected a linked identifier, got one that is unknown, blocked")):
        r.unlink({"cookie": "c1"})
    r.clear()


def test_workers_with_other_rules_are_refused(redis_server: RedisServer, key_prefix: str) -> None:
    st = RedisState.from_url(redis_server.url, key_prefix=key_prefix)
    RedisIdentity(st, KEY).link_one({"cookie": "a"})
    other = RedisIdentity(st, KEY, spec=IdentitySpec(max_identifiers=5))
    with pytest.raises(ConfigError, match=re.escape("expected the identity rules this graph was made with (")):
        other.link_one({"cookie": "a"})
    assert other.fingerprint() != RedisIdentity(st, KEY).fingerprint()


def test_check_finds_a_broken_graph(redis_server: RedisServer, key_prefix: str) -> None:
    # the invariants the concurrent-merge test relies on do catch a lost or doubled identifier
    r = RedisIdentity(RedisState.from_url(redis_server.url, key_prefix=key_prefix), KEY)
    a = r.link_one({"cookie": "c1", "email": "a@example.com"}).person
    b = r.link_one({"cookie": "c2"}).person
    assert r.check() == []
    members = r.persons()[a][3]
    pa, pb = f"{r.state.idg_key('p')}:{a % r.buckets}", f"{r.state.idg_key('p')}:{b % r.buckets}"
    raw = r.state.execute("HGET", pa, a)
    r.state.execute("HSET", pa, a, raw[:-8])  # a member dropped from the person
    problems = r.check()
    assert any(f"live key {members[-1]:016x} of person {a} not in its member list" in p for p in problems)
    assert any(f"person {a}: size 2 but 1 members" in p for p in problems)
    r.state.execute("HSET", pb, b, raw)  # and listed twice
    assert any("in persons" in p for p in r.check())
    r.clear()


@pytest.mark.parametrize("where", ["server", "cluster"])
def test_link_many_pipelines_the_same_links(
    where: str, redis_server: RedisServer, redis_cluster: RedisCluster, key_prefix: str,
) -> None:
    spec, key, events = _world_stream()
    ok = []
    url = redis_server.url if where == "server" else redis_cluster.url
    r = RedisIdentity(RedisState.from_url(url, key_prefix=key_prefix, cluster=where == "cluster"), key, spec=spec)
    for ev in events[:800]:
        try:
            r.keys.keys_of(ev["ids"])
        except SchemaError:
            continue
        ok.append(ev)
    g = IdentityGraph(key, spec=spec)
    g.add_listener(lambda s, a: g.release_rows(a))
    expected = [g.link_one(ev["ids"], time=ev["time"]) for ev in ok]
    got = r.link_many([ev["ids"] for ev in ok], times=[ev["time"] for ev in ok])
    assert [(a.status, len(a.absorbed)) for a in expected] == [(b.status, len(b.absorbed)) for b in got]
    _same_graph(g, r)
    with pytest.raises(SchemaError, match=re.escape("Expected at least one identifier, got none - at `$[1].ids`")):
        r.link_many([{"cookie": "new-one"}, {}])
    assert r.resolve_one({"cookie": "new-one"}) == -1  # checked before anything was sent
    r.clear()


def test_bucket_count_is_fixed_by_the_graph(redis_server: RedisServer, key_prefix: str) -> None:
    st = RedisState.from_url(redis_server.url, key_prefix=key_prefix)
    first = RedisIdentity(st, KEY, buckets=16)
    p = first.link_one({"cookie": "a", "email": "a@example.com"}).person
    later = RedisIdentity(st, KEY, buckets=1024)  # another worker's wish: the graph keeps 16
    assert later.resolve_one({"email": "a@example.com"}) == p
    assert later.link_one({"cookie": "a", "cookie2": "b"}).person == p
    assert sorted(later.members(p)) == sorted(first.members(p)) and len(first.members(p)) == 3
    assert later.check() == [] and len(later.nodes()) == 3
    with pytest.raises(ConfigError, match=re.escape("expected `buckets` a power of two in [1, 65536], got 3")):
        RedisIdentity(st, KEY, buckets=3)
    first.clear()
    assert list(st.client.scan_iter(match=f"{{{key_prefix}:idg}}*")) == []


def test_a_graph_lost_on_the_server_is_an_error_not_a_fresh_start(redis_server: RedisServer, key_prefix: str) -> None:
    st = RedisState.from_url(redis_server.url, key_prefix=key_prefix)
    r = RedisIdentity(st, KEY)
    r.link_one({"cookie": "a"})
    for name in st.client.scan_iter(match=f"{{{key_prefix}:idg}}*"):
        st.execute("DEL", name)  # as a restart without persistence would leave it
    with pytest.raises(StateUnavailable, match=re.escape(
            "expected the identity graph on the server, got none (a server that restarted without persistence")):
        r.link_one({"cookie": "a"})
    assert r.resolve_one({"cookie": "a"}) == -1
