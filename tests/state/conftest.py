"""Fixtures of the shared-state tests: one standalone ``redis-server`` (AOF ``everysec``) and one
3-master Redis Cluster per session, on free loopback ports in the session's temporary
directory, stopped at the end; a fresh key prefix per test keeps tests apart on one server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from redis_servers import RedisCluster, RedisServer, have_redis

_prefixes = itertools.count()


def _need_redis() -> None:
    if not have_redis():
        pytest.fail("redis-server and redis-cli are needed: run `make system` (Debian package redis-server)")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A standalone redis-server with AOF on (``appendfsync everysec``: an fsync per write would
    make the suite wait on the disk; the crash tests start their own with ``always``)."""
    _need_redis()
    srv = RedisServer(tmp_path_factory.mktemp("redis"), appendfsync="everysec")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A 3-master Redis Cluster on loopback for the whole session."""
    _need_redis()
    cl = RedisCluster(tmp_path_factory.mktemp("cluster"), appendfsync="everysec")
    cl.start()
    try:
        yield cl
    finally:
        cl.stop()


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test of the session uses."""
    return f"t{next(_prefixes)}"
