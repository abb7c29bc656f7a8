"""Faults of the Redis identity graph: a crashed server restarts from its AOF with every
acknowledged link; a server that is down gives StateUnavailable (nothing half-done, nothing
silently served); the same client reconnects when the server is back; the result equals the
embedded graph fed the same accepted events."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from decisioner.errors import StateUnavailable
from decisioner.identity import IdentityGraph
from decisioner.state import RedisState
from decisioner.state.identity import RedisIdentity
from redis_servers import RedisCluster, RedisServer, resp

from .parity import link_both, same_graph, world_stream


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_crash_and_restart_lose_nothing_acknowledged(fsync: str, tmp_path: Path) -> None:
    # SIGKILL of redis-server: with AOF `always` every acknowledged write is on disk; with
    # `everysec` it is in the kernel (written before the reply), lost only if the machine dies
    spec, key, events = world_stream()
    with RedisServer(tmp_path / "r", appendfsync=fsync) as srv:  # type: ignore[arg-type]
        r = RedisIdentity(RedisState.from_url(srv.url, retries=2, backoff_base=0.05), key, spec=spec)
        g = IdentityGraph(key, spec=spec)
        g.add_listener(lambda s, a: g.release_rows(a))
        events = events[:1600] if fsync == "always" else events  # an fsync per link: the disk is the limit
        half = len(events) // 2
        for ev in events[:half]:
            link_both(g, r, ev)
        before = r.partition()
        srv.restart(crash=True)
        assert r.partition() == before
        same_graph(g, r)
        for ev in events[half:]:  # the same client goes on after the restart
            link_both(g, r, ev)
        same_graph(g, r)


def test_server_down_raises_state_unavailable_and_the_client_reconnects(tmp_path: Path) -> None:
    spec, key, events = world_stream()
    with RedisServer(tmp_path / "r", appendfsync="everysec") as srv:
        r = RedisIdentity(RedisState.from_url(srv.url, retries=1, backoff_base=0.01), key, spec=spec)
        g = IdentityGraph(key, spec=spec)
        g.add_listener(lambda s, a: g.release_rows(a))
        for ev in events[:300]:
            link_both(g, r, ev)
        srv.kill()
        for ev in events[300:305]:  # refused loudly, never answered from a stale copy
            with pytest.raises(StateUnavailable, match=re.escape(
                    f"Expected a reachable Redis at {srv.url!r} (dcs1_idg_link), got ConnectionError")):
                r.link_one(ev["ids"], time=ev["time"])
            with pytest.raises(StateUnavailable, match=re.escape(f"Expected a reachable Redis at {srv.url!r} (HGET)")):
                r.resolve_one(ev["ids"])
        srv.restart()
        for ev in events[300:1500]:  # the refused events are sent again by their caller: same result
            link_both(g, r, ev)
        same_graph(g, r)


def test_cluster_master_of_the_graph_crashes_and_comes_back(tmp_path: Path) -> None:
    spec, key, events = world_stream()
    with RedisCluster(tmp_path / "c", appendfsync="always") as cl:
        st = RedisState.from_url(cl.url, cluster=True, retries=1, backoff_base=0.01)
        r = RedisIdentity(st, key, spec=spec)
        g = IdentityGraph(key, spec=spec)
        g.add_listener(lambda s, a: g.release_rows(a))
        for ev in events[:400]:
            link_both(g, r, ev)
        slot = st.client.keyslot(st.idg_key("c"))
        owner = next(n for n in cl.nodes if _serves(n.port, slot))
        owner.kill()
        with pytest.raises(StateUnavailable, match=re.escape("Expected a reachable Redis at")):
            r.link_one(events[400]["ids"], time=events[400]["time"])
        owner.restart()
        cl.wait_ok()
        for ev in events[400:900]:  # the same client, the same master back with its AOF
            link_both(g, r, ev)
        same_graph(g, r)
        st.close()


def _serves(port: int, slot: int) -> bool:
    """Whether the node on ``port`` owns ``slot`` (from CLUSTER NODES: its own line, 'myself')."""
    text = resp(port, "CLUSTER", "NODES").decode()
    mine = next(line for line in text.splitlines() if "myself" in line)
    for part in mine.split()[8:]:
        lo, _, hi = part.partition("-")
        if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
            return True
    return False
