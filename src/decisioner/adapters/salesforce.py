"""Salesforce REST: update Contact/Lead fields, publish platform events, record reactions.

What is sent (REST API ``/services/data/<api_version>``, ``Authorization: Bearer <token>``):

* **field updates** of Contact, Lead or any sObject with a configured mapping: with
  ``composite=True`` (default) up to 200 records per ``PATCH /composite/sobjects`` request
  (``allOrNone: false``: each record succeeds or fails alone, reported per record); otherwise
  one ``PATCH /sobjects/<type>/<id>`` per update;
* **platform events** (``POST /sobjects/<Name>__e``, or up to 200 per ``POST /composite/sobjects``);
* **next-best-action reactions** (accepted / rejected / outcome) as a platform event or a record
  of a custom object (``reaction_target``), fields from ``reaction_fields``.

The access token comes from the configuration (a string, or a callable returning a fresh one
on every request) or the environment variable ``token_env``; it is never stored in messages.
With ``message_id_field`` set, every record carries its message id in that field, so a flow or
trigger can ignore a record it already processed (a retry after a lost response).

Examples
--------
>>> cfg = SalesforceConfig(instance_url="https://example.my.salesforce.com",
...                        fields={"Contact": {"tier": "Engagement_Tier__c", "segments": "Segments__c"}})
>>> sf = Salesforce(cfg, token="00D-example")
>>> m = sf.update("003000000000001AAA", {"tier": "gold", "segments": ["vip", "eu"], "email": "x"},
...               message_id="m1")
>>> m.body
b'{"attributes":{"type":"Contact"},"id":"003000000000001AAA","Engagement_Tier__c":"gold","Segments__c":"vip;eu"}'
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import msgspec

from ..errors import ConfigError
from ._mapping import API_NAME, REACTIONS, check_api_names, iso_time, map_values, reaction_message_id
from .message import Message, checked_id, make_message
from .routes import OK, Request, Result, Route, secret_from

__all__ = ["SalesforceConfig", "Salesforce", "REACTIONS", "DEFAULT_REACTION_FIELDS", "reaction_message_id"]

RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
API_VERSION = re.compile(r"v\d{2,3}\.\d")
#: reaction value -> field of the reaction event or object
DEFAULT_REACTION_FIELDS = {
    "record_id": "Record_Id__c",
    "decision_id": "Decision_Id__c",
    "action": "Action__c",
    "reaction": "Reaction__c",
    "value": "Value__c",
    "time": "Reacted_At__c",
}
#: per-record error codes worth another attempt
RETRY_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"})
MAX_COMPOSITE = 200


class SalesforceConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where and what the Salesforce adapter writes.

    Parameters
    ----------
    instance_url
        The org's https URL (``https://<domain>.my.salesforce.com``).
    api_version
        REST API version, ``vNN.N``.
    token_env
        Environment variable that holds the OAuth access token when none is configured.
    fields
        sObject type -> {decisioner key -> field API name}: the allow-list of what is written.
    composite
        Batch updates and inserts through ``/composite/sobjects`` (up to ``batch_size`` records).
    batch_size
        Records per composite request, 1 to 200.
    event
        Default platform event for :meth:`Salesforce.event`.
    reaction_target
        Platform event (``__e``) or custom object (``__c``) that records reactions.
    reaction_fields
        Reaction value (``record_id``, ``decision_id``, ``action``, ``reaction``, ``value``,
        ``time``) -> field API name; leave a value out to not send it.
    message_id_field
        A field that receives each record's message id (``None``: not sent).
    """

    instance_url: str
    api_version: str = "v61.0"
    token_env: str = "SALESFORCE_ACCESS_TOKEN"
    fields: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    composite: bool = True
    batch_size: int = MAX_COMPOSITE
    event: str = "Decisioner_Event__e"
    reaction_target: str = "Decisioner_Reaction__e"
    reaction_fields: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_REACTION_FIELDS))
    message_id_field: str | None = None

    def __post_init__(self) -> None:
        at = "$.salesforce"
        if not self.instance_url.startswith(("https://", "http://")):
            raise ConfigError(f"Expected an https:// instance URL, got {self.instance_url!r} - at `{at}.instance_url`")
        if API_VERSION.fullmatch(self.api_version) is None:
            raise ConfigError(f"Expected `api_version` like 'v61.0', got {self.api_version!r} - at `{at}.api_version`")
        if not 1 <= self.batch_size <= MAX_COMPOSITE:
            raise ConfigError(
                f"Expected `batch_size` in [1, {MAX_COMPOSITE}], got {self.batch_size!r} - at `{at}.batch_size`"
            )
        for sobject, mapping in self.fields.items():
            if API_NAME.fullmatch(sobject) is None:
                raise ConfigError(f"Expected an sObject API name, got {sobject!r} - at `{at}.fields`")
            check_api_names(mapping, f"{at}.fields.{sobject}")
        for name in ("event", "reaction_target"):
            if API_NAME.fullmatch(getattr(self, name)) is None:
                raise ConfigError(f"Expected an sObject API name, got {getattr(self, name)!r} - at `{at}.{name}`")
        unknown = sorted(set(self.reaction_fields) - set(DEFAULT_REACTION_FIELDS))
        if unknown:
            raise ConfigError(
                f"Expected reaction values among {sorted(DEFAULT_REACTION_FIELDS)}, got {unknown} - at "
                f"`{at}.reaction_fields`"
            )
        check_api_names(self.reaction_fields, f"{at}.reaction_fields")
        if self.message_id_field is not None and API_NAME.fullmatch(self.message_id_field) is None:
            raise ConfigError(f"Expected a field API name, got {self.message_id_field!r} - at `{at}.message_id_field`")

    @property
    def base(self) -> str:
        """``<instance_url>/services/data/<api_version>``."""
        return f"{self.instance_url.rstrip('/')}/services/data/{self.api_version}"


class _SalesforceRoute(Route):
    def __init__(self, owner: Salesforce, name: str, method: Literal["PATCH", "POST"]) -> None:
        self.owner = owner
        self.name = name
        self.method = method
        self.max_batch = owner.config.batch_size if owner.config.composite else 1

    def request(self, batch: Sequence[Message], now_s: int) -> Request:
        cfg = self.owner.config
        headers = {"authorization": f"Bearer {self.owner.token()}", "content-type": "application/json"}
        records = [msgspec.json.decode(m.body) for m in batch]
        if cfg.composite:
            body = msgspec.json.encode({"allOrNone": False, "records": records})
            return Request(self.method, f"{cfg.base}/composite/sobjects", headers, body)
        (rec,) = records
        sobject = rec.pop("attributes")["type"]
        if self.method == "PATCH":
            return Request("PATCH", f"{cfg.base}/sobjects/{sobject}/{rec.pop('id')}", headers, msgspec.json.encode(rec))
        return Request("POST", f"{cfg.base}/sobjects/{sobject}", headers, msgspec.json.encode(rec))

    def results(
        self, batch: Sequence[Message], status: int, headers: Mapping[str, str], content: bytes
    ) -> list[Result]:
        if status == 401 and callable(self.owner.token_source):
            return [Result("retry", "HTTP 401: token refused, fetching a fresh one")] * len(batch)
        if not (200 <= status < 300) or not self.owner.config.composite:
            return super().results(batch, status, headers, content)
        try:
            saves = msgspec.json.decode(content)
        except msgspec.DecodeError:
            return [Result("retry", f"HTTP {status}: unreadable composite response")] * len(batch)
        if not isinstance(saves, list) or len(saves) != len(batch):
            return [Result("retry", f"HTTP {status}: expected {len(batch)} save results")] * len(batch)
        out = []
        for save in saves:
            if isinstance(save, dict) and save.get("success") is True:
                out.append(OK)
                continue
            errors = save.get("errors") or [] if isinstance(save, dict) else []
            codes = [str(e.get("statusCode", "")) for e in errors if isinstance(e, dict)]
            text = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors if isinstance(e, dict))
            kind: Literal["retry", "dead"] = "retry" if codes and all(c in RETRY_CODES for c in codes) else "dead"
            out.append(Result(kind, text or "record not saved"))
        return out


class Salesforce:
    """Builds Salesforce messages; its :attr:`routes` send them through a
    :class:`~decisioner.adapters.delivery.Delivery`.

    Parameters
    ----------
    config
        Instance, mappings and targets.
    token
        The OAuth access token, or a callable returning a current one (called per request);
        ``None``: the environment variable ``config.token_env`` (read per request).

    Raises
    ------
    ConfigError
        If no token is configured and the environment variable is empty.
    """

    def __init__(self, config: SalesforceConfig, *, token: str | Callable[[], str] | None = None) -> None:
        self.config = config
        self.token_source = token
        self.token()  # fail at construction, not on the first request
        self.updates = _SalesforceRoute(self, "salesforce:update", "PATCH")
        self.inserts = _SalesforceRoute(self, "salesforce:insert", "POST")
        self.routes: list[Route] = [self.updates, self.inserts]

    def __repr__(self) -> str:
        return f"Salesforce(instance_url={self.config.instance_url!r}, token=***)"

    def token(self) -> str:
        """The current access token (never logged)."""
        src = self.token_source
        value = src() if callable(src) else secret_from(src, self.config.token_env, what="a Salesforce access token",
                                                         where="$.salesforce.token")
        return value if isinstance(value, str) else value.decode()

    def _with_id(self, record: dict[str, Any], mid: str) -> dict[str, Any]:
        if self.config.message_id_field:
            record[self.config.message_id_field] = mid
        return record

    def update(
        self, record_id: str, values: Mapping[str, Any], *, sobject: str = "Contact",
        message_id: str | None = None, created_ms: int | None = None,
    ) -> Message:
        """A field update of one record: the values the mapping of ``sobject`` names.

        Raises
        ------
        ConfigError
            If ``sobject`` has no mapping, the record id is malformed or nothing is mapped.
        """
        mapping = self.config.fields.get(sobject)
        if mapping is None:
            raise ConfigError(
                f"Expected an sObject with a field mapping {sorted(self.config.fields)}, got {sobject!r} - at "
                "`$.sobject`"
            )
        if not isinstance(record_id, str) or RECORD_ID.fullmatch(record_id) is None:
            raise ConfigError(f"Expected a 15 or 18 character Salesforce id, got {record_id!r} - at `$.record_id`")
        fields = map_values(values, mapping, f"$.values ({sobject})")
        mid = checked_id(message_id)
        record = self._with_id({"attributes": {"type": sobject}, "id": record_id, **fields}, mid)
        return make_message(self.updates.name, record, message_id=mid, key=f"{sobject}/{record_id}",
                            created_ms=created_ms)

    def event(
        self, fields: Mapping[str, Any], *, event: str | None = None,
        message_id: str | None = None, created_ms: int | None = None,
    ) -> Message:
        """A platform event (``event`` or the configured one) with these field values."""
        name = event or self.config.event
        if API_NAME.fullmatch(name) is None or not name.endswith("__e"):
            raise ConfigError(f"Expected a platform event API name ending in `__e`, got {name!r} - at `$.event`")
        check_api_names(dict(zip(fields, fields)), "$.fields")
        mid = checked_id(message_id)
        record = self._with_id({"attributes": {"type": name}, **fields}, mid)
        return make_message(self.inserts.name, record, message_id=mid, created_ms=created_ms)

    def reaction(
        self, record_id: str, *, decision_id: str, action: str, reaction: str, value: float | None = None,
        time_ms: int | None = None, message_id: str | None = None,
    ) -> Message:
        """An agent's reaction to a next-best action, as ``reaction_target`` (event or object).

        The default message id is derived from ``(decision_id, action, reaction)``, so reporting
        the same reaction twice sends it once.
        """
        if reaction not in REACTIONS:
            raise ConfigError(f"Expected `reaction` in {list(REACTIONS)}, got {reaction!r} - at `$.reaction`")
        if not isinstance(record_id, str) or RECORD_ID.fullmatch(record_id) is None:
            raise ConfigError(f"Expected a 15 or 18 character Salesforce id, got {record_id!r} - at `$.record_id`")
        if not decision_id or not action:
            raise ConfigError(
                f"Expected a non-empty `decision_id` and `action`, got {decision_id!r}, {action!r} - at `$`"
            )
        t = int(time.time() * 1000) if time_ms is None else int(time_ms)
        values = {"record_id": record_id, "decision_id": decision_id, "action": action, "reaction": reaction,
                  "value": value, "time": iso_time(t)}
        fields = {self.config.reaction_fields[k]: v for k, v in values.items() if k in self.config.reaction_fields}
        if message_id is None:
            message_id = reaction_message_id("sfr", decision_id, action, reaction)
        mid = checked_id(message_id)
        record = self._with_id({"attributes": {"type": self.config.reaction_target}, **fields}, mid)
        return make_message(self.inserts.name, record, message_id=mid, created_ms=t)

