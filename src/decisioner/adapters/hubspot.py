"""HubSpot: contact property batch updates and custom event occurrences (private app token).

What is sent (``Authorization: Bearer <private app token>``):

* **contact properties**: up to 100 contacts per ``POST /crm/v3/objects/contacts/batch/update``
  (``{"inputs": [{"id", "properties", "objectWriteTraceId"}]}``; the message id travels as
  ``objectWriteTraceId``), values from the configured mapping, lists joined with ``;``;
* **custom events** (including next-best-action reactions): up to 500 occurrences per
  ``POST /events/v3/send/batch`` (``{"inputs": [{"eventName", "objectId" | "email",
  "occurredAt", "properties", "uuid"}]}``); ``uuid`` is derived from the message id, so HubSpot
  itself drops a retried occurrence it already has.

Examples
--------
>>> hs = HubSpot(HubSpotConfig(contact_properties={"tier": "engagement_tier"}), token="pat-example")
>>> hs.contact_update("501", {"tier": "gold"}, message_id="m1").body
b'{"id":"501","properties":{"engagement_tier":"gold"},"objectWriteTraceId":"m1"}'
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from ..errors import ConfigError
from ._mapping import REACTIONS, check_api_names, iso_time, map_values, reaction_message_id
from .message import Message, checked_id, make_message
from .routes import OK, Request, Result, Route, secret_from

__all__ = ["HubSpotConfig", "HubSpot", "event_uuid"]

CONTACT_ID = re.compile(r"[0-9]{1,20}")
EVENT_NAME = re.compile(r"pe[0-9]+_[A-Za-z0-9_]{1,100}|[A-Za-z][A-Za-z0-9_]{0,100}")
MAX_BATCH_UPDATE = 100
MAX_BATCH_EVENTS = 500
_UUID_NS = uuid.UUID("6f1d4a52-9c1e-4b1f-8d7e-3f0b8f6d2c11")  # decisioner's namespace for event uuids


def event_uuid(message_id: str) -> str:
    """The ``uuid`` of an event occurrence: a UUIDv5 of its message id (stable across retries)."""
    return str(uuid.uuid5(_UUID_NS, message_id))


class HubSpotConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where and what the HubSpot adapter writes.

    Parameters
    ----------
    base_url
        The API root.
    token_env
        Environment variable that holds the private app token when none is configured.
    contact_properties
        Decisioner key -> contact property internal name: the allow-list of what is written.
    batch_size, events_batch_size
        Contacts per batch update (1 to 100), occurrences per event batch (1 to 500).
    reaction_event
        Fully qualified event name (``pe<HubID>_<name>``) that records next-best-action reactions.
    """

    base_url: str = "https://api.hubapi.com"
    token_env: str = "HUBSPOT_ACCESS_TOKEN"
    contact_properties: dict[str, str] = msgspec.field(default_factory=dict)
    batch_size: int = MAX_BATCH_UPDATE
    events_batch_size: int = MAX_BATCH_EVENTS
    reaction_event: str | None = None

    def __post_init__(self) -> None:
        at = "$.hubspot"
        if not self.base_url.startswith(("https://", "http://")):
            raise ConfigError(f"Expected an https:// base URL, got {self.base_url!r} - at `{at}.base_url`")
        if not 1 <= self.batch_size <= MAX_BATCH_UPDATE:
            raise ConfigError(
                f"Expected `batch_size` in [1, {MAX_BATCH_UPDATE}], got {self.batch_size!r} - at `{at}.batch_size`"
            )
        if not 1 <= self.events_batch_size <= MAX_BATCH_EVENTS:
            raise ConfigError(
                f"Expected `events_batch_size` in [1, {MAX_BATCH_EVENTS}], got {self.events_batch_size!r} "
                f"- at `{at}.events_batch_size`"
            )
        check_api_names(self.contact_properties, f"{at}.contact_properties")
        if self.reaction_event is not None and EVENT_NAME.fullmatch(self.reaction_event) is None:
            raise ConfigError(
                f"Expected an event name like 'pe123_nba_reaction', got {self.reaction_event!r} - at "
                f"`{at}.reaction_event`"
            )


class _Contacts(Route):
    def __init__(self, owner: HubSpot) -> None:
        self.owner = owner
        self.name = "hubspot:contacts"
        self.max_batch = owner.config.batch_size

    def request(self, batch: Sequence[Message], now_s: int) -> Request:
        inputs = b",".join(m.body for m in batch)
        return Request("POST", f"{self.owner.base}/crm/v3/objects/contacts/batch/update", self.owner.headers(),
                       b'{"inputs":[' + inputs + b"]}")

    def results(
        self, batch: Sequence[Message], status: int, headers: Mapping[str, str], content: bytes
    ) -> list[Result]:
        if status != 207:
            return super().results(batch, status, headers, content)
        # multi-status: the errors name the contact ids that failed; the others were updated
        try:
            errors = msgspec.json.decode(content).get("errors") or []
        except (msgspec.DecodeError, AttributeError):
            return [Result("retry", "HTTP 207: unreadable multi-status response")] * len(batch)
        failed: dict[str, Result] = {}
        for e in errors:
            if not isinstance(e, dict):
                continue
            kind: Literal["retry", "dead"] = "retry" if e.get("category") == "RATE_LIMITS" else "dead"
            ids = (e.get("context") or {}).get("ids") or []
            for i in ids:
                failed[str(i)] = Result(kind, f"{e.get('category')}: {e.get('message')}")
        return [failed.get(msgspec.json.decode(m.body)["id"], OK) for m in batch]


class _Events(Route):
    def __init__(self, owner: HubSpot) -> None:
        self.owner = owner
        self.name = "hubspot:events"
        self.max_batch = owner.config.events_batch_size

    def request(self, batch: Sequence[Message], now_s: int) -> Request:
        if len(batch) == 1:
            return Request("POST", f"{self.owner.base}/events/v3/send", self.owner.headers(), batch[0].body)
        inputs = b",".join(m.body for m in batch)
        return Request("POST", f"{self.owner.base}/events/v3/send/batch", self.owner.headers(),
                       b'{"inputs":[' + inputs + b"]}")


class HubSpot:
    """Builds HubSpot messages; its :attr:`routes` send them through a
    :class:`~decisioner.adapters.delivery.Delivery`.

    Parameters
    ----------
    config
        Base URL, property mapping, batch sizes.
    token
        The private app token; ``None``: the environment variable ``config.token_env`` (read per
        request).

    Raises
    ------
    ConfigError
        If no token is configured and the environment variable is empty.
    """

    def __init__(self, config: HubSpotConfig, *, token: str | None = None) -> None:
        self.config = config
        self._token = token
        self.headers()  # fail at construction, not on the first request
        self.base = config.base_url.rstrip("/")
        self.contacts = _Contacts(self)
        self.events = _Events(self)
        self.routes: list[Route] = [self.contacts, self.events]

    def __repr__(self) -> str:
        return f"HubSpot(base_url={self.config.base_url!r}, token=***)"

    def headers(self) -> dict[str, str]:
        """Request headers with the current token (never logged)."""
        tok = secret_from(self._token, self.config.token_env, what="a HubSpot private app token",
                          where="$.hubspot.token")
        text = tok if isinstance(tok, str) else tok.decode()
        return {"authorization": f"Bearer {text}", "content-type": "application/json"}

    def contact_update(
        self, contact_id: str, values: Mapping[str, Any], *, message_id: str | None = None,
        created_ms: int | None = None,
    ) -> Message:
        """A property update of one contact: the values the mapping names.

        Raises
        ------
        ConfigError
            If the contact id is not numeric or nothing is mapped.
        """
        if not isinstance(contact_id, str) or CONTACT_ID.fullmatch(contact_id) is None:
            raise ConfigError(f"Expected a numeric HubSpot contact id, got {contact_id!r} - at `$.contact_id`")
        props = map_values(values, self.config.contact_properties, "$.values")
        props = {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in props.items()}
        mid = checked_id(message_id)
        body = {"id": contact_id, "properties": props, "objectWriteTraceId": mid}
        return make_message(self.contacts.name, body, message_id=mid, key=contact_id, created_ms=created_ms)

    def event(
        self, event_name: str, *, contact_id: str | None = None, email: str | None = None,
        properties: Mapping[str, Any] | None = None, occurred_ms: int | None = None, message_id: str | None = None,
    ) -> Message:
        """A custom event occurrence for one contact (by ``contact_id`` or ``email``)."""
        if EVENT_NAME.fullmatch(event_name) is None:
            raise ConfigError(
                f"Expected an event name like 'pe123_nba_reaction', got {event_name!r} - at `$.event_name`"
            )
        if (contact_id is None) == (email is None):
            raise ConfigError(
                f"Expected exactly one of `contact_id` and `email`, got {contact_id!r} and {email!r} - at `$`"
            )
        if contact_id is not None and CONTACT_ID.fullmatch(contact_id) is None:
            raise ConfigError(f"Expected a numeric HubSpot contact id, got {contact_id!r} - at `$.contact_id`")
        check_api_names(dict(zip(properties or {}, properties or {})), "$.properties")
        mid = checked_id(message_id)
        t = int(time.time() * 1000) if occurred_ms is None else int(occurred_ms)
        body: dict[str, Any] = {"eventName": event_name}
        body.update({"objectId": contact_id} if contact_id is not None else {"email": email})
        body.update({"occurredAt": iso_time(t), "properties": dict(properties or {}), "uuid": event_uuid(mid)})
        return make_message(self.events.name, body, message_id=mid, created_ms=t)

    def reaction(
        self, contact_id: str, *, decision_id: str, action: str, reaction: str, value: float | None = None,
        time_ms: int | None = None, message_id: str | None = None,
    ) -> Message:
        """An agent's reaction to a next-best action as the ``reaction_event`` custom event
        (properties ``decision_id``, ``action``, ``reaction``, ``value``); the default message id
        is derived from ``(decision_id, action, reaction)``."""
        if self.config.reaction_event is None:
            raise ConfigError("Expected `reaction_event` configured, got None - at `$.hubspot.reaction_event`")
        if reaction not in REACTIONS:
            raise ConfigError(f"Expected `reaction` in {list(REACTIONS)}, got {reaction!r} - at `$.reaction`")
        if not decision_id or not action:
            raise ConfigError(
                f"Expected a non-empty `decision_id` and `action`, got {decision_id!r}, {action!r} - at `$`"
            )
        props: dict[str, Any] = {"decision_id": decision_id, "action": action, "reaction": reaction}
        if value is not None:
            props["value"] = value
        mid = message_id if message_id is not None else reaction_message_id("hsr", decision_id, action, reaction)
        return self.event(self.config.reaction_event, contact_id=contact_id, properties=props,
                          occurred_ms=time_ms, message_id=mid)
