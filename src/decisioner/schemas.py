"""msgspec Structs for inbound behaviour events, outcomes and outbound decisions.

Timestamps are epoch milliseconds (``int``), always the event's own time, never the wall clock.
Inbound structs forbid unknown fields, are frozen and keyword-only. Decoding goes through
:func:`decode_event` / :func:`decode_outcome`, which accept a ``dict``, JSON ``bytes``/``str``
or an already-built Struct and raise :class:`~decisioner.errors.SchemaError` with the field
path on bad input.

Evolution rules (msgspec): new fields get defaults, field types never change, and
``SCHEMA_VERSION`` is bumped when in doubt.
"""

from __future__ import annotations

import codecs
import math
import numbers
import threading
from collections.abc import Iterator
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct

from .errors import SchemaError

__all__ = [
    "SCHEMA_VERSION",
    "MIN_TIME_MS",
    "MAX_TIME_MS",
    "EVENT_TYPES",
    "Event",
    "View",
    "Click",
    "AdClick",
    "EmailOpen",
    "EmailClick",
    "AddToCart",
    "Purchase",
    "Return",
    "ServiceCall",
    "CouponRedeem",
    "Download",
    "Identify",
    "Consent",
    "Opinion",
    "BehaviourEvent",
    "Outcome",
    "Result",
    "SlotChoice",
    "Reason",
    "Decision",
    "decode_event",
    "decode_events",
    "decode_event_lines",
    "decode_outcome",
    "encode",
    "to_builtins",
]

SCHEMA_VERSION: Final = 3

#: 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in epoch milliseconds: anything outside is
#: an absurd timestamp (seconds sent as milliseconds, year 1, year 9999 ...).
MIN_TIME_MS: Final = 946_684_800_000
MAX_TIME_MS: Final = 4_102_444_800_000

TimeMs = Annotated[int, Meta(ge=MIN_TIME_MS, le=MAX_TIME_MS)]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
IdValue = Annotated[str, Meta(min_length=1, max_length=256)]
Money = Annotated[float, Meta(ge=-1e12, le=1e12)]  # NaN and inf fail the bounds
#: an attribute value: text up to 1,024 characters, a bool, an int or a finite float (the value
#: limits are checked by ``Event._check_attrs``: msgspec's path for them would lose the name)
AttrValue = str | bool | int | float
#: set while msgspec decodes or converts: its own checks (the Meta limits) have run, so
#: ``__post_init__`` (the check of Structs built in Python) checks only what Meta cannot say, and
#: an event is validated once
_decoding = threading.local()


class Event(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    """Fields shared by every behaviour event.

    ``ids`` maps identifier type to value (``{"cookie": "c-1", "email": "ada@example.com"}``);
    the values are normalised and hashed at the edge and never stored raw.
    """

    time: TimeMs
    ids: Annotated[dict[Name, IdValue], Meta(min_length=1, max_length=32)]
    channel: Name = "web"
    device: Name | None = None
    item: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    value: Money | None = None
    attrs: Annotated[dict[Name, AttrValue], Meta(max_length=64)] = {}
    #: purpose (every channel) or ``purpose.channel`` -> allowed; the values are checked by
    #: ``Event._check_consent`` (msgspec's path for them would lose the name)
    consent: Annotated[dict[Name, bool | int | float | str | None], Meta(max_length=16)] | None = None
    #: the Global Privacy Control signal (``Sec-GPC: 1``): ``true`` opts out of sale/share
    gpc: bool | None = None
    #: an IAB TCF v2.2 consent string (the CMP's ``tcString``)
    tcf: Annotated[str, Meta(min_length=1, max_length=16_384)] | None = None

    def __post_init__(self) -> None:
        if getattr(_decoding, "on", False):
            if self.attrs:
                self._check_attrs()
            if self.consent:
                self._check_consent()
            return
        # Runs after msgspec's own checks when decoding, and is the only check when a Struct is
        # built in Python (constructors do not enforce Meta constraints): keep both paths equal.
        _check_time(self.time, "time")
        ids = self.ids
        if not isinstance(ids, dict) or not 1 <= len(ids) <= 32:
            n = len(ids) if isinstance(ids, dict) else type(ids).__name__
            raise SchemaError(f"Expected `object` of length 1 to 32, got {n} - at `$.ids`")
        for t, id_value in ids.items():
            _check_str(t, 128, "ids")
            _check_str(id_value, 256, f"ids.{t}")
        _check_str(self.channel, 128, "channel")
        if self.device is not None:
            _check_str(self.device, 128, "device")
        if self.item is not None:
            _check_str(self.item, 256, "item")
        if self.value is not None:
            _check_number(self.value, -1e12, 1e12, "value")
        if len(self.attrs) > 64:
            raise SchemaError(f"Expected `object` of length <= 64, got {len(self.attrs)} - at `$.attrs`")
        self._check_attrs()
        self._check_rest()

    def _check_attrs(self) -> None:
        for name, v in self.attrs.items():
            _check_str(name, 128, "attrs")
            if isinstance(v, float) and not math.isfinite(v):
                raise SchemaError(f"Expected a finite number, got {v!r} - at `$.attrs.{name}`")
            if isinstance(v, str) and len(v) > 1024:
                raise SchemaError(
                    f"Expected `str` of length <= 1024, got {len(v)} characters - at `$.attrs.{name}`"
                )
            if not isinstance(v, (str, numbers.Real)):
                raise SchemaError(
                    f"Expected `str | bool | int | float`, got `{type(v).__name__}` - at `$.attrs.{name}`"
                )

    def _check_consent(self) -> None:
        assert self.consent is not None
        for name, granted in self.consent.items():
            _check_str(name, 128, "consent")
            if not isinstance(granted, bool):
                raise SchemaError(f"Expected `bool`, got `{type(granted).__name__}` - at `$.consent.{name}`")

    def _check_rest(self) -> None:
        if self.consent is not None:
            if len(self.consent) > 16:
                raise SchemaError(f"Expected `object` of length <= 16, got {len(self.consent)} - at `$.consent`")
            self._check_consent()
        if self.gpc is not None and not isinstance(self.gpc, bool):
            raise SchemaError(f"Expected `bool`, got `{type(self.gpc).__name__}` - at `$.gpc`")
        if self.tcf is not None:
            _check_str(self.tcf, 16_384, "tcf")
        for name in _EXTRA_FIELDS.get(type(self), ()):
            v = getattr(self, name)
            if v is None:
                continue
            if name == "items":
                if not isinstance(v, list) or len(v) > 256:
                    raise SchemaError("Expected `array` of length <= 256 - at `$.items`")
                for j, it in enumerate(v):
                    _check_str(it, 256, f"items[{j}]")
            elif name == "sentiment":
                _check_number(v, -1.0, 1.0, "sentiment")
            elif name == "quantity":
                if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10_000:
                    raise SchemaError(f"Expected `int` in [1, 10000], got {v!r} - at `$.quantity`")
            else:
                _check_str(v, 128, name)


def _check_time(v: Any, where: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SchemaError(f"Expected `int`, got `{type(v).__name__}` - at `$.{where}`")
    if not MIN_TIME_MS <= v <= MAX_TIME_MS:
        raise SchemaError(
            f"Expected epoch milliseconds in [{MIN_TIME_MS}, {MAX_TIME_MS}] (2000-2100), got {v!r} - at `$.{where}`"
        )


def _check_str(v: Any, max_len: int, where: str) -> None:
    if not isinstance(v, str):
        raise SchemaError(f"Expected `str`, got `{type(v).__name__}` - at `$.{where}`")
    if not 1 <= len(v) <= max_len:
        raise SchemaError(f"Expected `str` of length 1 to {max_len}, got {len(v)} - at `$.{where}`")


def _check_number(v: Any, lo: float, hi: float, where: str) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SchemaError(f"Expected `float`, got `{type(v).__name__}` - at `$.{where}`")
    if not lo <= v <= hi:  # NaN fails both comparisons
        raise SchemaError(f"Expected a finite number in [{lo:g}, {hi:g}], got {v!r} - at `$.{where}`")


class View(Event, tag="view", frozen=True):
    """A page, product or content view.

    >>> decode_event(b'{"type": "view", "time": 1700000000000, "ids": {"cookie": "c1"}, "item": "sku-1"}').item
    'sku-1'
    """


class Click(Event, tag="click", frozen=True):
    """A click on content shown on site or in app."""


class AdClick(Event, tag="ad_click", frozen=True):
    """A click on a paid ad that landed the person on a property."""

    campaign: Name | None = None


class EmailOpen(Event, tag="email_open", frozen=True):
    """An email open (pixel)."""

    campaign: Name | None = None


class EmailClick(Event, tag="email_click", frozen=True):
    """A click in an email."""

    campaign: Name | None = None


class AddToCart(Event, tag="add_to_cart", frozen=True):
    """An item added to the cart."""

    quantity: Annotated[int, Meta(ge=1, le=10_000)] = 1


class Purchase(Event, tag="purchase", frozen=True):
    """A purchase of ``item`` or of each of ``items``; ``value`` is the order revenue."""

    items: Annotated[list[Annotated[str, Meta(min_length=1, max_length=256)]], Meta(max_length=256)] = []
    order_id: Name | None = None


class Return(Event, tag="return", frozen=True):
    """A store or online return of ``item``."""


class ServiceCall(Event, tag="service_call", frozen=True):
    """A contact with the service centre."""

    reason: Name | None = None


class CouponRedeem(Event, tag="coupon_redeem", frozen=True):
    """A coupon redemption."""

    coupon: Name | None = None


class Download(Event, tag="download", frozen=True):
    """A download (app, brochure, white paper)."""


class Identify(Event, tag="identify", frozen=True):
    """A login or sign-up: links every identifier it carries."""


class Consent(Event, tag="consent", frozen=True):
    """A consent change from a consent platform, a preference centre or the CRM: ``consent``,
    ``gpc`` and ``tcf`` say what changed (see :mod:`decisioner.consent`); no interest signal.

    >>> decode_event({"type": "consent", "time": 1700000000000, "ids": {"email": "a@b.co"},
    ...               "consent": {"marketing.email": False}, "gpc": True}).gpc
    True
    """


class Opinion(Event, tag="opinion", frozen=True):
    """An opinion on a ``topic``: an inbound message, a survey answer or an agent's note, with
    its ``sentiment`` in [-1, 1] (-1 against, 0 neutral, 1 for; scored upstream). The regional
    pulse (:mod:`decisioner.pulse`) aggregates them by region and topic; no interest signal.

    >>> decode_event({"type": "opinion", "time": 1700000000000, "ids": {"email": "a@b.co"},
    ...               "channel": "survey", "topic": "prices", "sentiment": -0.5}).sentiment
    -0.5
    """

    topic: Name
    sentiment: Annotated[float, Meta(ge=-1.0, le=1.0)]


BehaviourEvent = (
    View | Click | AdClick | EmailOpen | EmailClick | AddToCart | Purchase | Return | ServiceCall
    | CouponRedeem | Download | Identify | Consent | Opinion
)

_EVENT_CLASSES: Final[tuple[type[Event], ...]] = (
    View, Click, AdClick, EmailOpen, EmailClick, AddToCart, Purchase, Return, ServiceCall,
    CouponRedeem, Download, Identify, Consent, Opinion,
)
#: fields each event type adds to the shared ones (checked by Event.__post_init__)
_EXTRA_FIELDS: Final[dict[type, tuple[str, ...]]] = {
    c: tuple(f for f in c.__struct_fields__ if f not in Event.__struct_fields__) for c in _EVENT_CLASSES
}
#: each event class by its tag (``"view"`` -> :class:`View`)
_CLASS_BY_TAG: Final[dict[object, Any]] = {c.__struct_config__.tag: c for c in _EVENT_CLASSES}
#: Event type tags in a fixed order; the index is the event-type code used by kernels.
EVENT_TYPES: Final[tuple[str, ...]] = tuple(
    str(c.__struct_config__.tag) for c in _EVENT_CLASSES
)


class Outcome(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A later response to a decision, joined to it by ``decision_id``.

    >>> decode_outcome({"decision_id": "d-0-1", "kind": "click", "time": 1700000000000, "content": "sku-1"}).kind
    'click'
    """

    decision_id: Annotated[str, Meta(min_length=1, max_length=64)]
    kind: Literal["click", "conversion"]
    time: TimeMs
    content: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    value: Annotated[float, Meta(ge=0.0, le=1e12)] = 1.0

    def __post_init__(self) -> None:
        # the only check for an Outcome built in Python (see Event.__post_init__); decoded ones
        # were checked by msgspec against the same limits
        if getattr(_decoding, "on", False):
            return
        _check_str(self.decision_id, 64, "decision_id")
        if self.kind not in ("click", "conversion"):
            raise SchemaError(f"Expected `'click' | 'conversion'`, got {self.kind!r} - at `$.kind`")
        _check_time(self.time, "time")
        if self.content is not None:
            _check_str(self.content, 256, "content")
        _check_number(self.value, 0.0, 1e12, "value")


class Result(Struct, frozen=True):
    """Base of every public result (:class:`Decision`, its slots and reasons, reports): JSON-ready.

    A result encodes directly with msgspec (``msgspec.json.encode(decision)``, what
    :class:`decisioner.adapters.web.JSONResponse` does), and offers the three forms a user reaches
    for without knowing msgspec:

    - ``to_dict()``: plain ``dict``/``list``/``str``/number values, nested results included, for
      ``json.dumps(decision.to_dict())``, templates or a DataFrame row; the standard library's
      ``json.dumps(decision)`` cannot encode a class it does not know, so pass it
      ``default=decisioner.schemas.to_builtins`` when a result sits inside other data;
    - ``to_json()``: the JSON text (``str``) by msgspec's encoder (NaN and infinities become
      ``null``, as JSON has no spelling for them);
    - ``dict(result)``: the fields as ``(name, value)`` pairs, one level deep, as pydantic models
      iterate; frameworks that fall back on ``dict(obj)`` (FastAPI's ``jsonable_encoder``) thereby
      return a result from a route without conversion.

    >>> r = Reason(kind="affinity", detail="category=shoes", weight=0.5)
    >>> r.to_dict()
    {'kind': 'affinity', 'detail': 'category=shoes', 'weight': 0.5}
    >>> r.to_json()
    '{"kind":"affinity","detail":"category=shoes","weight":0.5}'
    >>> import json; json.dumps({"why": [r]}, default=to_builtins)
    '{"why": [{"kind": "affinity", "detail": "category=shoes", "weight": 0.5}]}'
    """

    def to_dict(self) -> dict[str, Any]:
        """The result as plain builtins (nested results too), ready for ``json.dumps``."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def to_json(self) -> str:
        """The result as JSON text."""
        return _encoder.encode(self).decode()

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for name in self.__struct_fields__:
            yield name, getattr(self, name)


def to_builtins(obj: Any) -> Any:
    """Any result (or data holding results) as plain builtins: the ``default`` hook of
    ``json.dumps`` (``json.dumps(data, default=to_builtins)``)."""
    return msgspec.to_builtins(obj)


class SlotChoice(Result, frozen=True, kw_only=True):
    """The content chosen for one slot, with its score and the propensity of that choice."""

    content: str
    score: float
    propensity: float


class Reason(Result, frozen=True, kw_only=True):
    """Why a decision came out as it did: an affinity, a rule or the policy."""

    kind: str
    detail: str
    weight: float = 0.0


class Decision(Result, frozen=True, kw_only=True):
    """What the engine chose for one placement, with everything needed to replay it."""

    decision_id: str
    placement: str
    time: int
    profile: int
    policy: str
    policy_version: int
    slots: list[SlotChoice]
    candidates: int
    personalized: bool
    reasons: list[Reason] = []
    latency_us: float = 0.0
    variant: str | None = None
    #: the stable person id (never reused; -1: anonymous), which every record of the decision carries
    person: int = -1


_event_decoder: Final = msgspec.json.Decoder(BehaviourEvent)
_events_decoder: Final = msgspec.json.Decoder(list[BehaviourEvent])
_outcome_decoder: Final = msgspec.json.Decoder(Outcome)
_encoder: Final = msgspec.json.Encoder()


def _schema_error(exc: Exception, what: str) -> SchemaError:
    return SchemaError(f"Invalid {what}: {exc}")


def _text_error(exc: UnicodeEncodeError, what: str) -> SchemaError:
    char = exc.object[exc.start : exc.start + 1]
    return SchemaError(f"Invalid {what}: expected UTF-8 text, got an unencodable character {char!r} - at `$`")


def _as_utf8(payload: bytes | bytearray | memoryview | str, what: str) -> bytes | bytearray | memoryview:
    """``str`` payloads as UTF-8 bytes, so size limits count bytes, not characters."""
    if not isinstance(payload, str):
        return payload
    try:
        return payload.encode()
    except UnicodeEncodeError as exc:  # lone surrogates have no UTF-8 form
        char = payload[exc.start]
        raise SchemaError(
            f"Invalid {what}: expected UTF-8 text, got an unencodable character {char!r} at position {exc.start}"
            " - at `$`"
        ) from None


def _check_utf8(payload: bytes | bytearray | memoryview, what: str) -> None:
    """Refuse invalid UTF-8 before msgspec sees it, so the message is ours (msgspec 0.23 reworded
    its own and dropped the position). Costs one decode of an already size-checked payload."""
    try:
        codecs.utf_8_decode(payload, "strict", True)
    except UnicodeDecodeError as exc:
        bad = bytes(exc.object[exc.start : exc.start + 1])
        raise SchemaError(
            f"Invalid {what}: expected UTF-8 text, got an invalid byte {bad!r} at position {exc.start} - at `$`"
        ) from None


def decode_event(payload: Any, *, max_bytes: int = 65_536) -> BehaviourEvent:
    """Decode and validate one behaviour event.

    Parameters
    ----------
    payload
        A ``dict``, JSON ``bytes``/``str``, or an event Struct (validated, returned as is).
    max_bytes
        Largest JSON payload accepted.

    Raises
    ------
    SchemaError
        With the field path when the payload is malformed, too large or out of range.
    """
    if isinstance(payload, Event):
        # already checked: __post_init__ runs when a Struct is built as well as when decoded
        return payload  # type: ignore[return-value]
    try:
        if isinstance(payload, (bytes, bytearray, memoryview, str)):
            text = isinstance(payload, str)
            payload = _as_utf8(payload, "event")
            size = len(payload)
            if size > max_bytes:
                raise SchemaError(
                    f"Expected an event payload of at most {max_bytes} bytes, got {size} - at `$`"
                )
            if not text:  # bytes encoded from a str are valid UTF-8 already
                _check_utf8(payload, "event")
            _decoding.on = True
            try:
                decoded: BehaviourEvent = _event_decoder.decode(payload)
            finally:
                _decoding.on = False
            return decoded
        if isinstance(payload, dict):
            # convert to the tagged class directly: msgspec converting to the union itself costs
            # about 15x more (measured), and an unknown tag still goes through the union's error
            tag = payload.get("type")
            target = _CLASS_BY_TAG.get(tag, BehaviourEvent) if isinstance(tag, str) else BehaviourEvent
            _decoding.on = True
            try:
                converted: BehaviourEvent = msgspec.convert(payload, target, strict=True)
            finally:
                _decoding.on = False
            return converted
    except SchemaError:
        raise
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _schema_error(exc, "event") from None
    except UnicodeEncodeError as exc:  # a text value without a UTF-8 form (lone surrogate)
        raise _text_error(exc, "event") from None
    raise SchemaError(
        f"Expected a `dict`, JSON `bytes` or an event Struct, got `{type(payload).__name__}` - at `$`"
    )


def decode_event_lines(lines: list[bytes], *, max_bytes: int = 65_536) -> list[BehaviourEvent | SchemaError]:
    """Decode many JSON events (one ``bytes`` each, as :func:`decode_event` would one by one):
    an event, or the :class:`SchemaError` :func:`decode_event` raises for that payload.

    The common case (every payload good) costs one size and UTF-8 check over all payloads and
    one msgspec call each; any failure decodes that chunk again one by one, so each error is
    the one a single call gives.

    Examples
    --------
    >>> out = decode_event_lines([b'{"type": "view", "time": 1700000000000, "ids": {"cookie": "c"}}', b"{"])
    >>> type(out[0]).__name__, type(out[1]).__name__
    ('View', 'SchemaError')
    """
    dec = _event_decoder.decode
    try:
        if any(type(ln) is not bytes or len(ln) > max_bytes for ln in lines):
            raise ValueError
        # a separator is ASCII, so the joined bytes are valid UTF-8 exactly when each payload is
        _check_utf8(b"\n".join(lines), "events")
        _decoding.on = True
        try:
            return [dec(ln) for ln in lines]
        finally:
            _decoding.on = False
    except (ValueError, msgspec.DecodeError):  # SchemaError and msgspec.ValidationError are ValueErrors
        pass
    out: list[BehaviourEvent | SchemaError] = []
    for ln in lines:
        try:
            out.append(decode_event(ln, max_bytes=max_bytes))
        except SchemaError as exc:
            # a fresh error with the same message: this one's traceback (and its context's) holds
            # this frame, which holds `out` (a reference cycle the collector would have to find)
            out.append(SchemaError(str(exc)))
    return out


def decode_events(data: bytes) -> list[BehaviourEvent]:
    """Decode a JSON array of events (no size limit: for trusted batch files)."""
    _check_utf8(data, "events")
    try:
        return _events_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _schema_error(exc, "events") from None


def decode_outcome(payload: Any) -> Outcome:
    """Decode and validate one outcome (``dict``, JSON bytes/str or :class:`Outcome`)."""
    if isinstance(payload, Outcome):
        return payload  # checked by __post_init__ when it was built
    try:
        if isinstance(payload, (bytes, bytearray, memoryview, str)):
            text = isinstance(payload, str)
            payload = _as_utf8(payload, "outcome")
            if len(payload) > 65_536:
                raise SchemaError(
                    f"Expected an outcome payload of at most 65536 bytes, got {len(payload)} - at `$`"
                )
            if not text:
                _check_utf8(payload, "outcome")
            _decoding.on = True
            try:
                return _outcome_decoder.decode(payload)
            finally:
                _decoding.on = False
        if isinstance(payload, dict):
            _decoding.on = True
            try:
                return msgspec.convert(payload, Outcome, strict=True)
            finally:
                _decoding.on = False
    except SchemaError:
        raise
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _schema_error(exc, "outcome") from None
    except UnicodeEncodeError as exc:  # a text value without a UTF-8 form (lone surrogate)
        raise _text_error(exc, "outcome") from None
    raise SchemaError(
        f"Expected a `dict`, JSON `bytes` or an `Outcome`, got `{type(payload).__name__}` - at `$`"
    )


def encode(obj: Any) -> bytes:
    """Encode a Struct (or plain data) as JSON bytes."""
    return _encoder.encode(obj)
