"""Several worker processes over one Redis give the state one embedded engine gives.

Each run deals the events round robin over worker processes (one person's events land on several
workers) and compares the canonical state digest (identity partition, interests, attributes,
consent, event counts, popularity and placement counts) with the embedded engine's replay of the
same events. Staleness is allowed for explicitly: the digest is taken after every worker's final
sync (counters and logs are synced in batches, see decisioner.state.counters).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from decisioner import Engine
from decisioner.cli import main
from decisioner.state import RedisState
from decisioner.state.digest import people_of_engine
from decisioner.state.shared import SharedEngine
from decisioner.state.workers import replay_workers
from redis_servers import RedisCluster, RedisServer


def _write(world: str, out: Path, n: int, keep: set[str] | None = None) -> Path:
    lines = [ln for ln in Path(world, "events.jsonl").read_text().splitlines() if ln.strip()]
    if keep is not None:
        lines = [ln for ln in lines if set(json.loads(ln)["ids"].values()) & keep]
    out.write_text("\n".join(lines[:n]) + "\n")
    return out


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["replay", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_digest_is_equal_across_backends_and_worker_counts(
    small_world: str, redis_server: RedisServer, key_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = str(_write(small_world, tmp_path / "ev.jsonl", 500))
    embedded = _cli(capsys, events, "--world", small_world)
    one = _cli(capsys, events, "--world", small_world, "--state", redis_server.url, "--key-prefix", key_prefix)
    three = _cli(capsys, events, "--world", small_world, "--state", redis_server.url, "--workers", "3",
                 "--key-prefix", key_prefix + "w3")
    assert one["state_digest"] == embedded["state_digest"]
    assert three["state_digest"] == embedded["state_digest"]
    assert three["workers"] == 3 and [w["worker"] for w in three["per_worker"]] == [0, 1, 2]
    assert sum(w["events"] for w in three["per_worker"]) == 500 == three["events"]
    assert three["decisions"] == embedded["decisions"] and three["rejected"] == embedded["rejected"]
    for w in three["per_worker"]:
        assert w["latency_us"]["count"] == w["decisions"] and w["events_per_s"] > 0
    assert sum(w["waits"] for w in three["per_worker"]) > 0, "some person's events crossed workers"


def test_cluster_workers_give_the_embedded_state(small_world: str, redis_cluster: RedisCluster, key_prefix: str,
                                                 tmp_path: Path) -> None:
    events = _write(small_world, tmp_path / "ev.jsonl", 400)
    from decisioner.cli_state import embedded_digest
    from decisioner.replay import replay

    eng = Engine.from_world(small_world)
    want = embedded_digest(eng, str(events), replay(events, eng))
    got = replay_workers(events, small_world, url=redis_cluster.url, cluster=True, workers=2, key_prefix=key_prefix)
    assert got["state_digest"] == want


def test_racing_workers_lose_no_update_of_one_person(small_world: str, redis_server: RedisServer, key_prefix: str,
                                                     tmp_path: Path) -> None:
    # the events of a few busy people only, dealt without waiting: their rows are written by
    # several workers at once, and compare-and-set must keep every update
    lines = [json.loads(ln) for ln in Path(small_world, "events.jsonl").read_text().splitlines() if ln.strip()]
    busy = Counter(v for ev in lines for v in ev["ids"].values()).most_common(4)
    events = _write(small_world, tmp_path / "ev.jsonl", 300, keep={v for v, _ in busy})
    eng = Engine.from_world(small_world)
    for ln in events.read_text().splitlines():
        eng.track(json.loads(ln))
    got = replay_workers(events, small_world, url=redis_server.url, workers=3, order="free", key_prefix=key_prefix,
                         log="off")
    assert got["rejected"] == 0
    state = RedisState.from_url(redis_server.url, key_prefix=key_prefix)
    try:
        reader = SharedEngine.connect(Engine.from_world(small_world), state, log="off")
        persons = {pid for pid, st in reader.identity.identity.nodes().values() if st == 0}  # type: ignore[attr-defined]
        events_held = 0
        for pid in persons:
            row = reader._local_row(pid)
            reader._current(row, pid)
            events_held += int(reader.engine.profiles.events_[row])
        want = sum(int(eng.profiles.events_[r]) for r in people_of_engine(eng))
        assert events_held == want > 100
        assert sum(w["retries"] for w in got["per_worker"]) > 0, "the workers did race on the same rows"
    finally:
        state.close()
