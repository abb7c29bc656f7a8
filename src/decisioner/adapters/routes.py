"""What the outbound adapters share with the delivery core: a :class:`Route` (how one kind of
message travels: the :class:`Request` for a batch, the :class:`Result` for each message), the
statuses retried, ``Retry-After`` read, and credentials taken from the configuration or the
environment (:func:`secret_from`), never from code.
"""

from __future__ import annotations

import email.utils
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

from ..errors import ConfigError
from .message import Message

__all__ = ["OK", "RETRY_STATUSES", "Request", "Result", "Route", "retry_after_seconds", "secret_from"]

#: HTTP statuses retried with backoff (the whole request); other non-2xx statuses are final
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def secret_from(value: str | bytes | None, env: str, *, what: str, where: str) -> str | bytes:
    """A credential from the configuration (``value``) or else the environment variable ``env``.

    The message of the error names the variable, never a value.

    Raises
    ------
    ConfigError
        If neither holds a non-empty value.
    """
    if value:
        return value
    got = os.environ.get(env, "")
    if got:
        return got
    raise ConfigError(
        f"Expected {what} in the environment variable `{env}` or the configuration, got neither - at `{where}`"
    )


class Request(msgspec.Struct, frozen=True):
    """One HTTP request a route builds for a batch (headers may hold credentials: never logged)."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes


class Result(msgspec.Struct, frozen=True):
    """The fate of one message after a response: delivered, to retry, or final failure."""

    kind: Literal["ok", "retry", "dead"]
    reason: str = ""


OK = Result("ok")


class Route(ABC):
    """How one kind of message travels: the request for a batch, the fate of each message.

    Subclasses set :attr:`name` and :attr:`max_batch` and implement :meth:`request`; they
    override :meth:`results` when a response reports on each message of a batch.
    """

    #: the route name that :attr:`Message.route` refers to
    name: str = ""
    #: messages per request, at most
    max_batch: int = 1

    @abstractmethod
    def request(self, batch: Sequence[Message], now_s: int) -> Request:
        """The request that carries ``batch`` (called again, with a fresh ``now_s``, per attempt)."""

    def results(
        self, batch: Sequence[Message], status: int, headers: Mapping[str, str], content: bytes
    ) -> list[Result]:
        """The fate of each message of ``batch`` after a response (default: 2xx delivers all,
        :data:`RETRY_STATUSES` retry all, any other status is final for all)."""
        if 200 <= status < 300:
            return [OK] * len(batch)
        kind: Literal["retry", "dead"] = "retry" if status in RETRY_STATUSES else "dead"
        return [Result(kind, f"HTTP {status}: {_snippet(content)}")] * len(batch)


def _snippet(content: bytes, n: int = 300) -> str:
    return content[:n].decode("utf-8", "replace").replace("\n", " ")


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header value asks to wait (delta-seconds or an HTTP date), or
    ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
