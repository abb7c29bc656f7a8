"""The Redis connection: configuration, key names, errors when the server is away, reconnection."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from decisioner.config import StateSpec, load_config_dict
from decisioner.errors import ConfigError, MissingDependencyError, StateUnavailable
from decisioner.state import RedisState
from decisioner.state.functions import LIBRARY_NAME
from redis_servers import RedisCluster, RedisServer, free_port


def test_state_section_defaults_to_embedded_and_validates_redis_urls() -> None:
    assert load_config_dict({}).state.backend == "embedded"
    cfg = load_config_dict({"state": {"backend": "redis", "url": "rediss://u:pw@h:6380/2", "cluster": True}})
    assert cfg.state.cluster and cfg.state.url == "rediss://u:pw@h:6380/2"
    with pytest.raises(ConfigError, match=re.escape(
            "expected a URL starting with redis:// or rediss://, got 'http://u:***@h' - at `state.url`")):
        StateSpec(backend="redis", url="http://u:secret@h")
    with pytest.raises(ConfigError, match=re.escape("expected redis://host[:port][/db], got 'redis://h:x' - at")):
        StateSpec(backend="redis", url="redis://h:x")
    with pytest.raises(ConfigError, match=re.escape("expected `key_prefix` of 1-32 letters")):
        StateSpec(key_prefix="a b")
    with pytest.raises(ConfigError, match=re.escape("expected `cert_file` and `key_file` together")):
        StateSpec(cert_file="c.pem")


def test_url_and_password_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DECISIONER_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("DECISIONER_REDIS_PASSWORD", "pw")
    spec = StateSpec(backend="redis")
    assert spec.resolved_url() == "redis://127.0.0.1:1/0" and spec.resolved_password() == "pw"
    monkeypatch.delenv("DECISIONER_REDIS_URL")
    with pytest.raises(ConfigError, match=re.escape(
            "expected a Redis URL in `state.url` or the environment variable 'DECISIONER_REDIS_URL', got none")):
        RedisState(spec)
    with pytest.raises(ConfigError, match=re.escape("expected `state.backend = \"redis\"`, got 'embedded'")):
        RedisState(StateSpec(url="redis://h"))


def test_key_names_share_one_hash_tag_per_person() -> None:
    st = RedisState.from_url("redis://127.0.0.1:1", key_prefix="shop")
    assert st.person_key(7, "row") == "{shop:p:7}:row" and st.person_tag(7) == "{shop:p:7}"
    assert st.idg_key("n") == "{shop:idg}:n" and st.key("log", "s") == "{shop:log}:s"
    assert "shop" in repr(st)


def test_unreachable_server_raises_state_unavailable_with_a_clear_message() -> None:
    port = free_port()
    st = RedisState.from_url(f"redis://:hunter2@127.0.0.1:{port}", retries=1, backoff_base=0.01)
    with pytest.raises(StateUnavailable, match=re.escape(
            f"Expected a reachable Redis at 'redis://:***@127.0.0.1:{port}' (PING), got ConnectionError")) as err:
        st.ping()
    assert "hunter2" not in str(err.value)
    assert isinstance(err.value, ConnectionError)


def test_functions_load_and_answer(redis_server: RedisServer, key_prefix: str) -> None:
    st = RedisState.from_url(redis_server.url, key_prefix=key_prefix)
    assert st.load_functions() == LIBRARY_NAME
    assert st.fcall("dcs1_version", [], [], readonly=True) == 1
    st.execute("FUNCTION", "DELETE", LIBRARY_NAME)  # a server that lost its functions
    assert st.fcall("dcs1_version", [], []) == 1
    st.close()


def test_client_reconnects_after_a_restart(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "r", appendfsync="always") as srv:
        st = RedisState.from_url(srv.url, retries=1, backoff_base=0.01)
        st.execute("SET", "a", "1")
        srv.kill()
        with pytest.raises(StateUnavailable, match=re.escape(f"Expected a reachable Redis at {srv.url!r} (GET)")):
            st.execute("GET", "a")
        srv.restart()
        assert st.execute("GET", "a") == b"1"  # the same client, a new connection
        st.close()


def test_cluster_client_routes_by_hash_tag(redis_cluster: RedisCluster, key_prefix: str) -> None:
    st = RedisState.from_url(redis_cluster.url, key_prefix=key_prefix, cluster=True)
    st.load_functions()
    for pid in range(20):
        st.execute("SET", st.person_key(pid, "row"), str(pid))
    assert [st.execute("GET", st.person_key(p, "row")) for p in range(20)] == [str(p).encode() for p in range(20)]
    slots = {st.client.keyslot(st.person_key(p, x)) for p in (5,) for x in ("row", "cnt", "x")}
    assert len(slots) == 1
    assert st.fcall("dcs1_version", [st.idg_key("n")], [], readonly=True) == 1
    st.close()


def test_password_from_the_environment_and_a_wrong_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with RedisServer(tmp_path / "r", appendfsync="no", extra=["--requirepass", "s3cret-pw"]) as srv:
        monkeypatch.setenv("DECISIONER_REDIS_PASSWORD", "s3cret-pw")
        st = RedisState(StateSpec(backend="redis", url=srv.url))
        assert st.ping() > 0
        monkeypatch.setenv("DECISIONER_REDIS_PASSWORD", "wrong-pw")
        bad = RedisState(StateSpec(backend="redis", url=srv.url, retries=0))
        with pytest.raises(StateUnavailable, match=re.escape(f"Expected a reachable Redis at {srv.url!r} (PING), got ")):
            bad.ping()
        st.close()


def test_tls_with_a_ca_file(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "r", appendfsync="no", tls=True) as srv:
        assert srv.url.startswith("rediss://") and srv.tls_ca is not None
        st = RedisState.from_url(srv.url, ca_file=str(srv.tls_ca))
        st.execute("SET", "k", "v")
        assert st.execute("GET", "k") == b"v"
        plain = RedisState.from_url(srv.url, retries=0)  # the system's CAs do not know this one
        with pytest.raises(StateUnavailable, match=re.escape(f"Expected a reachable Redis at {srv.url!r} (GET), got ")):
            plain.execute("GET", "k")
        st.close()


def test_missing_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed: import fails
    with pytest.raises(MissingDependencyError, match=re.escape(
            'Expected redis-py for the Redis state backend, got no `redis` module - install it with '
            'pip install "decisioner[redis]"')):
        RedisState.from_url("redis://127.0.0.1:1").ping()
