"""The connection to the shared state on Redis: one client (standalone or Cluster), retries with
backoff and reconnection, the error every failure becomes, the key names, and the function
library.

**Failures.** A command that cannot reach the server (refused, reset, timed out, the server
loading its data after a restart, a Cluster slot without a master) is retried ``retries`` times
with exponential backoff (``backoff_base`` doubling up to ``backoff_cap``, with jitter), each
retry on a fresh connection, so a worker reconnects by itself once the server is back. When
every retry fails the call raises :class:`~decisioner.errors.StateUnavailable` naming the URL
(its password redacted) and the cause; nothing is served from a state that may have diverged.
A retried write may run twice when the first attempt reached the server and only its reply
was lost; the identity functions are safe to repeat for that reason (the event is then seen
twice, as a duplicate event: its identifiers are already linked, so only the counters and
last-seen times move).

**Key names** (persisted; part of the on-server format). Every key starts with a hash tag, the
part in braces that Redis Cluster hashes to pick the slot:

* ``{<prefix>:idg}:<part>`` -- the identity graph, all in one slot (see
  :mod:`decisioner.state.identity` for why and what that limits);
* ``{<prefix>:p:<person_id>}:<part>`` -- everything about one person (profile row, counters
  of that person), so one person's keys share a slot and one function can update them
  atomically;
* ``{<prefix>:<name>}:<part>`` -- other shared structures (:meth:`RedisState.key`).

**Functions.** The server-side code (:mod:`decisioner.state.functions`) is loaded with
``FUNCTION LOAD REPLACE`` under a versioned library name on every master; a call that finds
the function missing (a server that restarted without persistence, a new Cluster node) loads
it again and retries once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from ..config.state import StateSpec, _redact
from ..errors import ConfigError, MissingDependencyError, SchemaError, StateUnavailable
from .functions import LIBRARY, LIBRARY_NAME

__all__ = ["RedisState", "redis_module"]

T = TypeVar("T")

#: error codes the function library raises (first word of the reply) and the error each becomes
_OUR_ERRORS: Final = {"DCSCONFIG": ConfigError, "DCSSCHEMA": SchemaError, "DCSGONE": StateUnavailable}


def redis_module() -> Any:
    """The ``redis`` package (redis-py), imported on first use.

    Raises
    ------
    MissingDependencyError
        If it is not installed.
    """
    try:
        import redis
    except ImportError:
        raise MissingDependencyError(
            'Expected redis-py for the Redis state backend, got no `redis` module - install it with '
            'pip install "decisioner[redis]"'
        ) from None
    return redis


class RedisState:
    """A connection to the Redis that holds the shared state.

    Parameters
    ----------
    spec
        The ``[state]`` configuration (``backend`` must be ``"redis"``).

    Raises
    ------
    ConfigError
        If the spec is not a Redis backend or gives no URL.

    Examples
    --------
    >>> from decisioner.config import StateSpec
    >>> st = RedisState(StateSpec(backend="redis", url="redis://127.0.0.1:6379", key_prefix="shop"))
    >>> st.idg_key("n"), st.person_key(42, "row")
    ('{shop:idg}:n', '{shop:p:42}:row')
    """

    def __init__(self, spec: StateSpec) -> None:
        if spec.backend != "redis":
            raise ConfigError(f"expected `state.backend = \"redis\"`, got {spec.backend!r} - at `state.backend`")
        self.spec = spec
        self.url = spec.resolved_url()
        self.prefix = spec.key_prefix
        self.cluster = spec.cluster
        self._client: Any = None
        self._lock = threading.Lock()
        self._loaded = False

    @classmethod
    def from_url(cls, url: str, *, key_prefix: str = "dcs", cluster: bool = False, **options: Any) -> RedisState:
        """A connection from a URL (other :class:`~decisioner.config.StateSpec` fields as keywords)."""
        return cls(StateSpec(backend="redis", url=url, key_prefix=key_prefix, cluster=cluster, **options))

    def __repr__(self) -> str:
        return f"RedisState({_redact(self.url)!r}, key_prefix={self.prefix!r}, cluster={self.cluster})"

    # ------------------------------------------------------------------ key names
    def idg_key(self, part: str) -> str:
        """A key of the identity graph: ``{<prefix>:idg}:<part>`` (one slot)."""
        return f"{{{self.prefix}:idg}}:{part}"

    def person_tag(self, person_id: int) -> str:
        """The hash tag of one person: ``{<prefix>:p:<person_id>}``."""
        return f"{{{self.prefix}:p:{int(person_id)}}}"

    def person_key(self, person_id: int, part: str) -> str:
        """A key about one person: ``{<prefix>:p:<person_id>}:<part>`` (one slot per person)."""
        return f"{{{self.prefix}:p:{int(person_id)}}}:{part}"

    def key(self, name: str, part: str) -> str:
        """A key of another shared structure: ``{<prefix>:<name>}:<part>``."""
        return f"{{{self.prefix}:{name}}}:{part}"

    # ------------------------------------------------------------------ client
    @property
    def client(self) -> Any:
        """The redis-py client (``redis.Redis`` or ``redis.cluster.RedisCluster``), made on first
        use (a Cluster client contacts the cluster as it is made)."""
        c = self._client
        if c is None:
            with self._lock:
                if self._client is None:
                    self._client = self.run(self._make_client, "connect")
                c = self._client
        return c

    def _make_client(self) -> Any:
        redis = redis_module()
        from redis.backoff import ExponentialWithJitterBackoff
        from redis.retry import Retry

        spec = self.spec
        retry = Retry(ExponentialWithJitterBackoff(cap=spec.backoff_cap, base=spec.backoff_base), spec.retries)
        kw: dict[str, Any] = dict(
            socket_connect_timeout=spec.connect_timeout, socket_timeout=spec.command_timeout, retry=retry,
            health_check_interval=30,
        )
        password = spec.resolved_password()
        if password is not None:
            kw["password"] = password
        if spec.username is not None:
            kw["username"] = spec.username
        if self.url.startswith("rediss://"):
            if spec.ca_file is not None:
                kw["ssl_ca_certs"] = spec.ca_file
            if spec.cert_file is not None:
                kw["ssl_certfile"] = spec.cert_file
                kw["ssl_keyfile"] = spec.key_file
        if self.cluster:
            from redis.cluster import RedisCluster

            kw.pop("health_check_interval")
            return RedisCluster.from_url(self.url, **kw)
        kw["retry_on_error"] = [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
        return redis.Redis.from_url(self.url, **kw)

    def close(self) -> None:
        """Close the client's connections (a later call connects again)."""
        with self._lock:
            c, self._client = self._client, None
        if c is not None:
            c.close()

    # ------------------------------------------------------------------ calls
    def run(self, fn: Callable[[], T], what: str) -> T:
        """Run ``fn`` (redis-py calls), turning every failure to reach the server into
        :class:`~decisioner.errors.StateUnavailable` and the library's own refusals into
        decisioner errors.

        Raises
        ------
        StateUnavailable
            If the server cannot be reached after the retries (or refuses for lack of memory,
            a read-only replica, a failed save).
        """
        redis = redis_module()
        ex = redis.exceptions
        try:
            return fn()
        except ex.ResponseError as exc:
            text = str(exc)
            code = text.split(" ", 1)[0]
            if code in _OUR_ERRORS:
                err: type[Exception] = _OUR_ERRORS[code]
                raise err(text.split(" ", 1)[1] if " " in text else text) from None
            raise self._unavailable(what, exc) from None
        except (ex.RedisError, OSError) as exc:
            raise self._unavailable(what, exc) from None

    def _unavailable(self, what: str, exc: BaseException) -> StateUnavailable:
        detail = str(exc).split("\n", 1)[0][:200] or type(exc).__name__
        return StateUnavailable(
            f"Expected a reachable Redis at {_redact(self.url)!r} ({what}), got {type(exc).__name__}: {detail} "
            f"after {self.spec.retries} retries - at `state.url`"
        )

    def execute(self, *args: Any) -> Any:
        """One Redis command (``execute("HGET", key, field)``) through :meth:`run`."""
        return self.run(lambda: self.client.execute_command(*args), str(args[0]))

    def ping(self) -> float:
        """Round trip of one PING in seconds.

        Raises
        ------
        StateUnavailable
            If the server cannot be reached.
        """
        t0 = time.perf_counter()
        self.run(lambda: self.client.ping(), "PING")
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ functions
    def load_functions(self) -> str:
        """Load the function library (``FUNCTION LOAD REPLACE``) on every master; returns its
        name. Loading the same version again is harmless."""
        code = LIBRARY

        def load() -> Any:
            c = self.client
            if self.cluster:
                return c.execute_command("FUNCTION", "LOAD", "REPLACE", code, target_nodes=c.PRIMARIES)
            return c.execute_command("FUNCTION", "LOAD", "REPLACE", code)

        self.run(load, "FUNCTION LOAD")
        self._loaded = True
        return LIBRARY_NAME

    def fcall(self, name: str, keys: Sequence[str], args: Sequence[Any], *, readonly: bool = False) -> Any:
        """Call function ``name`` of the library (loaded first when needed) with ``keys`` and
        ``args``; read-only functions go with ``FCALL_RO``.

        Raises
        ------
        StateUnavailable
            If the server cannot be reached.
        ConfigError, SchemaError
            If the function refuses the call (nothing changed on the server then).
        """
        if not self._loaded:
            self.load_functions()
        cmd = "FCALL_RO" if readonly else "FCALL"
        redis = redis_module()

        def call() -> Any:
            try:
                return self.client.execute_command(cmd, name, len(keys), *keys, *args)
            except redis.exceptions.ResponseError as exc:
                if "function not found" not in str(exc).lower():
                    raise
            self.load_functions()  # a server that lost its functions: load and try once more
            return self.client.execute_command(cmd, name, len(keys), *keys, *args)

        return self.run(call, name)
