"""State backend spec: where the engine's state lives (``[state]``).

``backend = "embedded"`` (the default) keeps every component's state in arrays inside the
process. ``backend = "redis"`` moves the state that several web workers share to a Redis
server or Redis Cluster (see :mod:`decisioner.state`).

Secrets never live in the configuration file unless put there on purpose: the URL and the
password are read from the environment variables named by ``url_env`` and ``password_env``
when the fields are absent (``DECISIONER_REDIS_URL`` and ``DECISIONER_REDIS_PASSWORD`` by
default). A password inside the URL (``redis://user:secret@host``) works too.

>>> StateSpec(backend="redis", url="redis://127.0.0.1:6379/0").key_prefix
'dcs'
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from msgspec import Meta, Struct

from ._spec import SPEC, check

__all__ = ["StateSpec", "REDIS_SCHEMES"]

#: URL schemes a Redis URL may have: plain TCP and TLS
REDIS_SCHEMES: Final = ("redis", "rediss")
_PREFIX: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class StateSpec(Struct, **SPEC):
    """Where shared state lives: ``embedded`` arrays in this process, or ``redis``.

    ``url`` is ``redis://[user[:password]@]host[:port][/db]`` (``rediss://`` for TLS); with
    ``cluster = true`` it names any node of a Redis Cluster (the client discovers the rest).
    ``key_prefix`` starts every key, so several deployments can share one server.
    ``ca_file``/``cert_file``/``key_file`` are the TLS files (a ``rediss://`` URL without
    ``ca_file`` verifies against the system's certificates). Timeouts are in seconds;
    ``retries`` is how many times a failed command is retried with exponential backoff
    (``backoff_base`` doubling up to ``backoff_cap``) before
    :class:`~decisioner.errors.StateUnavailable` is raised.
    """

    backend: Literal["embedded", "redis"] = "embedded"
    url: str | None = None
    url_env: str | None = "DECISIONER_REDIS_URL"
    key_prefix: str = "dcs"
    cluster: bool = False
    username: str | None = None
    password: str | None = None
    password_env: str | None = "DECISIONER_REDIS_PASSWORD"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    connect_timeout: Annotated[float, Meta(gt=0, le=60)] = 2.0
    command_timeout: Annotated[float, Meta(gt=0, le=60)] = 2.0
    retries: Annotated[int, Meta(ge=0, le=20)] = 3
    backoff_base: Annotated[float, Meta(ge=0, le=10)] = 0.05
    backoff_cap: Annotated[float, Meta(ge=0, le=60)] = 1.0

    def __post_init__(self) -> None:
        check(
            _PREFIX.fullmatch(self.key_prefix) is not None,
            f"expected `key_prefix` of 1-32 letters, digits, '_', '.' or '-', got {self.key_prefix!r} - at "
            "`state.key_prefix`",
        )
        if self.url is not None:
            _check_url(self.url, "`state.url`")
        check((self.cert_file is None) == (self.key_file is None),
              "expected `cert_file` and `key_file` together, got only one - at `state`")
        check(self.backoff_cap >= self.backoff_base,
              f"expected `backoff_cap` >= `backoff_base` ({self.backoff_base}), got {self.backoff_cap} - at `state`")

    def resolved_url(self) -> str:
        """The Redis URL: ``url``, else the environment variable ``url_env``.

        Raises
        ------
        ConfigError
            If neither gives one, or the environment's URL is malformed.
        """
        if self.url is not None:
            return self.url
        env = os.environ.get(self.url_env) if self.url_env else None
        check(env is not None and env != "",
              f"expected a Redis URL in `state.url` or the environment variable {self.url_env!r}, got none - at "
              "`state.url`")
        assert env is not None
        _check_url(env, f"environment variable {self.url_env!r}")
        return env

    def resolved_password(self) -> str | None:
        """The password: ``password``, else the environment variable ``password_env`` (None:
        none, or the one inside the URL)."""
        if self.password is not None:
            return self.password
        env = os.environ.get(self.password_env) if self.password_env else None
        return env or None


def _check_url(url: str, where: str) -> None:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    check(scheme in REDIS_SCHEMES,
          f"expected a URL starting with redis:// or rediss://, got {_redact(url)!r} - at {where}")
    try:
        parts = urlsplit(url)
        host, port, path = parts.hostname, parts.port, parts.path.strip("/")
    except ValueError:  # a port that is not a number, a malformed IPv6 host
        host, port, path = None, -1, ""
    check(bool(host) and port != -1, f"expected redis://host[:port][/db], got {_redact(url)!r} - at {where}")
    check(path == "" or path.isdigit(), f"expected a database number after the host, got {path!r} - at {where}")


def _redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (never put a secret into a message)."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
