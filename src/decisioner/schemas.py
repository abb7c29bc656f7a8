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

import math
from typing import Annotated, Any, Final, Literal, Union

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
    "BehaviourEvent",
    "Outcome",
    "SlotChoice",
    "Reason",
    "Decision",
    "decode_event",
    "decode_events",
    "decode_outcome",
    "encode",
]

SCHEMA_VERSION: Final = 1

#: 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in epoch milliseconds: anything outside is
#: an absurd timestamp (seconds sent as milliseconds, year 1, year 9999 ...).
MIN_TIME_MS: Final = 946_684_800_000
MAX_TIME_MS: Final = 4_102_444_800_000

TimeMs = Annotated[int, Meta(ge=MIN_TIME_MS, le=MAX_TIME_MS)]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
IdValue = Annotated[str, Meta(min_length=1, max_length=256)]
Money = Annotated[float, Meta(ge=-1e12, le=1e12)]  # NaN and inf fail the bounds
AttrValue = Union[str, bool, int, float]


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
    consent: Annotated[dict[Name, bool], Meta(max_length=16)] | None = None

    def __post_init__(self) -> None:
        for name, v in self.attrs.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise SchemaError(f"Expected a finite number, got {v!r} - at `$.attrs.{name}`")
            if isinstance(v, str) and len(v) > 1024:
                raise SchemaError(
                    f"Expected `str` of length <= 1024, got {len(v)} characters - at `$.attrs.{name}`"
                )


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


BehaviourEvent = Union[
    View, Click, AdClick, EmailOpen, EmailClick, AddToCart, Purchase, Return, ServiceCall,
    CouponRedeem, Download, Identify,
]

_EVENT_CLASSES: Final[tuple[type[Event], ...]] = (
    View, Click, AdClick, EmailOpen, EmailClick, AddToCart, Purchase, Return, ServiceCall,
    CouponRedeem, Download, Identify,
)
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


class SlotChoice(Struct, frozen=True, kw_only=True):
    """The content chosen for one slot, with its score and the propensity of that choice."""

    content: str
    score: float
    propensity: float


class Reason(Struct, frozen=True, kw_only=True):
    """Why a decision came out as it did: an affinity, a rule or the policy."""

    kind: str
    detail: str
    weight: float = 0.0


class Decision(Struct, frozen=True, kw_only=True):
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


_event_decoder: Final = msgspec.json.Decoder(BehaviourEvent)
_events_decoder: Final = msgspec.json.Decoder(list[BehaviourEvent])
_outcome_decoder: Final = msgspec.json.Decoder(Outcome)
_encoder: Final = msgspec.json.Encoder()


def _schema_error(exc: Exception, what: str) -> SchemaError:
    msg = str(exc)
    if isinstance(exc, msgspec.ValidationError) or isinstance(exc, msgspec.DecodeError):
        return SchemaError(f"Invalid {what}: {msg}")
    return SchemaError(f"Invalid {what}: {msg}")


def decode_event(payload: Any, *, max_bytes: int = 65_536) -> BehaviourEvent:
    """Decode and validate one behaviour event.

    Parameters
    ----------
    payload
        A ``dict``, JSON ``bytes``/``str``, or an event Struct (returned as is).
    max_bytes
        Largest JSON payload accepted.

    Raises
    ------
    SchemaError
        With the field path when the payload is malformed, too large or out of range.
    """
    if isinstance(payload, Event):
        return payload  # type: ignore[return-value]
    try:
        if isinstance(payload, (bytes, bytearray, memoryview, str)):
            size = len(payload)
            if size > max_bytes:
                raise SchemaError(
                    f"Expected an event payload of at most {max_bytes} bytes, got {size} - at `$`"
                )
            decoded: BehaviourEvent = _event_decoder.decode(payload)
            return decoded
        if isinstance(payload, dict):
            converted: BehaviourEvent = msgspec.convert(payload, BehaviourEvent, strict=True)
            return converted
    except SchemaError:
        raise
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _schema_error(exc, "event") from None
    except UnicodeDecodeError as exc:
        raise SchemaError(f"Invalid event: expected UTF-8, got invalid byte at {exc.start} - at `$`") from None
    raise SchemaError(
        f"Expected a `dict`, JSON `bytes` or an event Struct, got `{type(payload).__name__}` - at `$`"
    )


def decode_events(data: bytes) -> list[BehaviourEvent]:
    """Decode a JSON array of events (no size limit: for trusted batch files)."""
    try:
        return _events_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _schema_error(exc, "events") from None


def decode_outcome(payload: Any) -> Outcome:
    """Decode and validate one outcome (``dict``, JSON bytes/str or :class:`Outcome`)."""
    if isinstance(payload, Outcome):
        return payload
    try:
        if isinstance(payload, (bytes, bytearray, memoryview, str)):
            if len(payload) > 65_536:
                raise SchemaError(
                    f"Expected an outcome payload of at most 65536 bytes, got {len(payload)} - at `$`"
                )
            return _outcome_decoder.decode(payload)
        if isinstance(payload, dict):
            return msgspec.convert(payload, Outcome, strict=True)
    except SchemaError:
        raise
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _schema_error(exc, "outcome") from None
    raise SchemaError(
        f"Expected a `dict`, JSON `bytes` or an `Outcome`, got `{type(payload).__name__}` - at `$`"
    )


def encode(obj: Any) -> bytes:
    """Encode a Struct (or plain data) as JSON bytes."""
    return _encoder.encode(obj)
