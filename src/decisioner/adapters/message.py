"""An outbound message: what the delivery core queues, persists, sends and acknowledges."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import msgspec

from ..errors import ConfigError

__all__ = ["Message", "make_message", "new_message_id", "checked_id", "MESSAGE_ID"]

#: message ids: ASCII letters, digits and ``_ - :``; no ``.`` (the Standard Webhooks signed
#: content joins id, timestamp and body with dots) and no spaces (HTTP header values)
MESSAGE_ID = re.compile(r"[A-Za-z0-9_\-:]{1,200}")

_json = msgspec.json.Encoder()


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One payload on its way to one route.

    Parameters
    ----------
    id
        The idempotency key: the same id is delivered once (the sender drops a second put of it;
        receivers deduplicate retries by it, e.g. the ``webhook-id`` header).
    route
        The name of the :class:`~decisioner.adapters.delivery.Route` that sends it.
    key
        Messages with the same non-empty key (one CRM record) never share a batch request.
    created_ms
        When it was made (epoch milliseconds).
    body
        The payload, JSON-encoded once when the message is made, so every retry and every replay
        after a restart sends the very same bytes.
    """

    id: str
    route: str
    key: str = ""
    created_ms: int
    body: bytes


def new_message_id() -> str:
    """A fresh random message id (``msg_`` and 32 hex digits)."""
    return "msg_" + uuid.uuid4().hex


def checked_id(message_id: str | None, where: str = "$") -> str:
    """``message_id`` if well formed, a fresh one if ``None``.

    Raises
    ------
    ConfigError
        If the id is malformed.
    """
    mid = new_message_id() if message_id is None else message_id
    if not isinstance(mid, str) or MESSAGE_ID.fullmatch(mid) is None:
        raise ConfigError(
            f"Expected `message_id` of 1 to 200 characters from A-Z a-z 0-9 _ - :, got {mid!r} - at "
            f"`{where}.message_id`"
        )
    return mid


def make_message(route: str, payload: Any, *, message_id: str | None = None, key: str = "",
                 created_ms: int | None = None, where: str = "$") -> Message:
    """Validate ``message_id`` and encode ``payload`` as JSON into a :class:`Message`.

    Raises
    ------
    ConfigError
        If the id is malformed or the payload is not JSON-encodable.
    """
    mid = checked_id(message_id, where)
    try:
        body = _json.encode(payload)
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(
            f"Expected a JSON-encodable payload, got a {type(payload).__name__} that is not ({e}) "
            f"- at `{where}.payload`"
        ) from None
    created = int(time.time() * 1000) if created_ms is None else int(created_ms)
    return Message(id=mid, route=route, key=key, created_ms=created, body=body)
