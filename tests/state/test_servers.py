"""The test servers themselves: they start, answer, survive a crash with AOF on, and stop."""

from __future__ import annotations

from pathlib import Path

from redis_servers import RedisCluster, RedisServer, resp


def test_server_starts_answers_and_keeps_acknowledged_writes_across_a_crash(tmp_path: Path) -> None:
    srv = RedisServer(tmp_path / "one", appendfsync="always").start()
    try:
        assert resp(srv.port, "SET", "k", "v") == b"+OK\r\n"
        srv.restart(crash=True)  # SIGKILL: no shutdown save, only the AOF
        assert resp(srv.port, "GET", "k") == b"$1\r\nv\r\n"
    finally:
        srv.stop()
    assert srv.proc is None


def test_cluster_fixture_has_three_masters_covering_every_slot(redis_cluster: RedisCluster) -> None:
    info = resp(redis_cluster.nodes[0].port, "CLUSTER", "INFO").decode()
    assert "cluster_state:ok" in info
    assert "cluster_slots_assigned:16384" in info
    assert "cluster_known_nodes:3" in info
    assert "cluster_size:3" in info
