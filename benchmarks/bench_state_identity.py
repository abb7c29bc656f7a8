"""Identity graph on Redis (loopback, one redis-server with AOF ``everysec``): memory per
identifier on the server beside the embedded graph's, lookups per second (one ``HMGET`` round
trip) and merges per second (one ``FCALL`` that merges two persons).

Sizes: ``DECISIONER_BENCH_REDIS_IDS`` identifiers loaded (default 200,000; 2,000 under
``--benchmark-disable``). The server is started here on a free port and stopped at the end
(``tests/redis_servers.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner.identity import IdentityGraph
from decisioner.state import RedisState
from decisioner.state.identity import RedisIdentity

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from redis_servers import RedisServer

SECRET = b"b" * 16
SMOKE_IDS = 2_000
CHUNK = 1_000


def _n_ids(smoke: bool) -> int:
    return SMOKE_IDS if smoke else int(os.environ.get("DECISIONER_BENCH_REDIS_IDS", "200000"))


def _events(n_ids: int) -> list[dict[str, str]]:
    """People of a cookie and an email, every fifth also with a device, whose next person
    carries that device too (a merge): about ``n_ids`` identifiers."""
    out = []
    for i in range(n_ids * 5 // 11):
        ev = {"cookie": f"ck-{i:09d}", "email": f"p{i}@mail.example.com"}
        if i % 5 == 3:
            ev["device"] = f"dev-{i}"
        if i % 5 == 4:
            ev["device"] = f"dev-{i - 1}"
        out.append(ev)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path_factory.mktemp("bench-redis"), appendfsync="everysec").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def loaded(server: RedisServer, smoke: bool) -> tuple[RedisIdentity, dict[str, Any]]:
    """The graph loaded with ``_n_ids`` identifiers, and the memory figures of both backends."""
    n = _n_ids(smoke)
    events = _events(n)
    st = RedisState.from_url(server.url, key_prefix="bench")
    ids = RedisIdentity(st, SECRET)
    ids.link_one({"cookie": "warm"})
    base = int(st.client.info("memory")["used_memory"])
    for i in range(0, len(events), CHUNK):
        ids.link_many(events[i : i + CHUNK])
    used = int(st.client.info("memory")["used_memory"]) - base
    m = ids.metrics()
    graph = IdentityGraph(SECRET)
    for ev in events:
        graph.link_one(ev)
    emb = graph.memory()
    red = ids.memory()
    figures = {
        "identifiers": m["identifiers"], "persons": m["profiles"],
        "redis_used_memory_bytes_per_identifier": round(used / m["identifiers"], 1),
        "redis_memory_usage_bytes_per_identifier": red["total_bytes_per_identifier"],
        "redis_core_bytes_per_identifier": red["core_bytes_per_identifier"],
        "embedded_total_bytes_per_identifier": emb["total_bytes_per_identifier"],
        "embedded_core_bytes_per_identifier": emb["core_bytes_per_identifier"],
    }
    return ids, figures


@pytest.mark.benchmark(group="state-identity")
def test_redis_memory_per_identifier(benchmark: Any, loaded: tuple[RedisIdentity, dict[str, Any]]) -> None:
    ids, figures = loaded
    benchmark.extra_info.update(figures)
    part = benchmark(ids.metrics)
    print("\nidentity memory per identifier (bytes):", figures)
    assert part["identifiers"] == figures["identifiers"] > 0
    # the server's hashes cost more than packed arrays, but stay within a small multiple
    assert figures["embedded_total_bytes_per_identifier"] < figures["redis_used_memory_bytes_per_identifier"] < 2000


@pytest.mark.benchmark(group="state-identity")
def test_redis_lookup(benchmark: Any, loaded: tuple[RedisIdentity, dict[str, Any]], smoke: bool) -> None:
    """One pre-hashed key resolved (one HMGET round trip on loopback)."""
    ids, _ = loaded
    keys, _ = ids.keys.keys_of({"cookie": "ck-000000007"})
    out = benchmark.pedantic(ids.resolve_keys, args=(keys,), rounds=1 if smoke else 2_000, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["lookups_per_s"] = round(1 / benchmark.stats.stats.median)
    assert int(out[0]) > 0


@pytest.mark.benchmark(group="state-identity")
def test_redis_lookup_batch(benchmark: Any, loaded: tuple[RedisIdentity, dict[str, Any]], smoke: bool) -> None:
    """100 pre-hashed keys in one HMGET."""
    ids, _ = loaded
    keys = np.concatenate([ids.keys.keys_of({"cookie": f"ck-{i:09d}"})[0] for i in range(100)], axis=1)
    out = benchmark.pedantic(ids.resolve_keys, args=(keys,), rounds=1 if smoke else 500, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["lookups_per_s"] = round(100 / benchmark.stats.stats.median)
    assert bool((out > 0).all())


@pytest.mark.benchmark(group="state-identity")
def test_redis_merge(benchmark: Any, loaded: tuple[RedisIdentity, dict[str, Any]], smoke: bool) -> None:
    """One event that merges two persons of two identifiers each (FCALL dcs1_idg_link)."""
    ids, _ = loaded
    counter = iter(range(10**9))

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        i = next(counter)
        ids.link_one({"cookie": f"m-{i}-a", "email": f"ma{i}@mail.example.com"})
        ids.link_one({"cookie": f"m-{i}-b", "email": f"mb{i}@mail.example.com"})
        return ({"cookie": f"m-{i}-a", "email": f"mb{i}@mail.example.com"},), {}

    res = benchmark.pedantic(ids.link_one, setup=setup, rounds=1 if smoke else 1_000, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["merges_per_s"] = round(1 / benchmark.stats.stats.median)
    assert len(res.absorbed) == 1
