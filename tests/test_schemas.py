"""Inbound event and outcome schemas: every type decodes; every malformed family is a
SchemaError whose full message names what was expected, what came and where."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from decisioner.errors import SchemaError
from decisioner.identity import normalise
from decisioner.schemas import (
    Outcome,
    EVENT_TYPES,
    MAX_TIME_MS,
    MIN_TIME_MS,
    AddToCart,
    Decision,
    Identify,
    Outcome,
    Purchase,
    Reason,
    SlotChoice,
    View,
    decode_event,
    decode_events,
    decode_outcome,
    encode,
)

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def ev(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "view", "time": T, "ids": {"cookie": "c-1"}}
    base.update(kw)
    return base


# ---------------------------------------------------------------- valid events

EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "view": {"item": "sku-1"},
    "click": {"item": "sku-1", "device": "ios"},
    "ad_click": {"campaign": "summer"},
    "email_open": {"campaign": "news-1", "channel": "email"},
    "email_click": {"campaign": "news-1", "item": "sku-2"},
    "add_to_cart": {"item": "sku-1", "quantity": 3},
    "purchase": {"items": ["sku-1", "sku-2"], "order_id": "o-1", "value": 99.5},
    "return": {"item": "sku-1", "value": 10},
    "service_call": {"reason": "billing"},
    "coupon_redeem": {"coupon": "SAVE10"},
    "download": {"item": "brochure"},
    "identify": {"ids": {"cookie": "c-1", "email": "ada@example.com"}},
}


def test_event_types_are_fixed_and_ordered() -> None:
    # the index is the event-type code used by kernels: append only
    assert EVENT_TYPES == (
        "view", "click", "ad_click", "email_open", "email_click", "add_to_cart", "purchase",
        "return", "service_call", "coupon_redeem", "download", "identify",
    )
    assert set(EXTRA_FIELDS) == set(EVENT_TYPES)


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_every_event_type_decodes_from_dict_json_bytes_and_str(etype: str) -> None:
    payload = ev(type=etype, attrs={"page": "home", "n": 2, "ok": True, "x": 1.5}, consent={"marketing": False})
    payload.update(EXTRA_FIELDS[etype])
    from_dict = decode_event(payload)
    from_bytes = decode_event(msgspec.json.encode(payload))
    from_str = decode_event(msgspec.json.encode(payload).decode())
    assert from_dict == from_bytes == from_str
    assert type(from_dict).__struct_config__.tag == etype
    assert from_dict.time == T
    for k, v in EXTRA_FIELDS[etype].items():
        got = getattr(from_dict, k)
        assert (list(got) if isinstance(got, list) else got) == v
    # a decoded Struct passes through unchanged, and encoding round trips
    assert decode_event(from_dict) is from_dict
    assert decode_event(encode(from_dict)) == from_dict


def test_defaults() -> None:
    e = decode_event(ev())
    assert isinstance(e, View)
    assert (e.channel, e.device, e.item, e.value, e.attrs, e.consent) == ("web", None, None, None, {}, None)
    assert decode_event(ev(type="add_to_cart")) == AddToCart(time=T, ids={"cookie": "c-1"}, quantity=1)
    assert decode_event(ev(type="purchase")).items == []  # type: ignore[union-attr]
    assert isinstance(decode_event(ev(type="identify")), Identify)


def test_int_value_becomes_float() -> None:
    assert decode_event(ev(value=5)).value == 5.0


def test_timestamp_bounds_are_inclusive() -> None:
    assert decode_event(ev(time=MIN_TIME_MS)).time == MIN_TIME_MS
    assert decode_event(ev(time=MAX_TIME_MS)).time == MAX_TIME_MS


def test_decode_events_batch() -> None:
    data = msgspec.json.encode([ev(), ev(type="purchase", items=["a"]), ev(type="identify")])
    out = decode_events(data)
    assert [type(e).__name__ for e in out] == ["View", "Purchase", "Identify"]
    assert isinstance(out[1], Purchase) and out[1].items == ["a"]


# ---------------------------------------------------------------- malformed events

BAD_EVENTS: list[tuple[str, Any, str]] = [
    ("wrong type", ev(time="yesterday"), "Invalid event: Expected `int`, got `str` - at `$.time`"),
    ("bool time", ev(time=True), "Invalid event: Expected `int`, got `bool` - at `$.time`"),
    ("float time", ev(time=1.7e12), "Invalid event: Expected `int`, got `float` - at `$.time`"),
    ("wrong ids type", ev(ids=["c-1"]), "Invalid event: Expected `object`, got `array` - at `$.ids`"),
    ("missing time", {"type": "view", "ids": {"cookie": "c-1"}}, "Invalid event: Object missing required field `time`"),
    ("missing ids", {"type": "view", "time": T}, "Invalid event: Object missing required field `ids`"),
    ("missing type", {"time": T, "ids": {"cookie": "c-1"}}, "Invalid event: Object missing required field `type`"),
    ("unknown field", ev(colour="red"), "Invalid event: Object contains unknown field `colour`"),
    ("field of another type", ev(quantity=2), "Invalid event: Object contains unknown field `quantity`"),
    ("unknown event type", ev(type="teleport"), "Invalid event: Invalid value 'teleport' - at `$.type`"),
    ("NaN value", ev(value=float("nan")), "Invalid event: Expected `float` >= -1000000000000.0 - at `$.value`"),
    ("inf value", ev(value=float("inf")), "Invalid event: Expected `float` <= 1000000000000.0 - at `$.value`"),
    ("-inf value", ev(value=float("-inf")), "Invalid event: Expected `float` >= -1000000000000.0 - at `$.value`"),
    ("NaN attr", ev(attrs={"score": float("nan")}), "Invalid event: Expected a finite number, got nan - at `$.attrs.score`"),
    ("inf attr", ev(attrs={"score": float("inf")}), "Invalid event: Expected a finite number, got inf - at `$.attrs.score`"),
    ("long attr", ev(attrs={"note": "x" * 1025}), "Invalid event: Expected `str` of length <= 1024, got 1025 characters - at `$.attrs.note`"),
    ("year 1", ev(time=-62_135_596_800_000), "Invalid event: Expected `int` >= 946684800000 - at `$.time`"),
    ("year 9999", ev(time=253_402_300_799_000), "Invalid event: Expected `int` <= 4102444800000 - at `$.time`"),
    ("seconds not ms", ev(time=1_700_000_000), "Invalid event: Expected `int` >= 946684800000 - at `$.time`"),
    ("too many identifiers", ev(ids={f"t{i}": "v" for i in range(33)}), "Invalid event: Expected `object` of length <= 32 - at `$.ids`"),
    ("no identifiers", ev(ids={}), "Invalid event: Expected `object` of length >= 1 - at `$.ids`"),
    ("empty identifier", ev(ids={"cookie": ""}), "Invalid event: Expected `str` of length >= 1 - at `$.ids[...]`"),
    ("too many attrs", ev(attrs={f"a{i}": 1 for i in range(65)}), "Invalid event: Expected `object` of length <= 64 - at `$.attrs`"),
    ("zero quantity", ev(type="add_to_cart", quantity=0), "Invalid event: Expected `int` >= 1 - at `$.quantity`"),
    ("item list of non-str", ev(type="purchase", items=[1]), "Invalid event: Expected `str`, got `int` - at `$.items[0]`"),
    ("not a mapping", 42, "Expected a `dict`, JSON `bytes` or an event Struct, got `int` - at `$`"),
    ("list", [ev()], "Expected a `dict`, JSON `bytes` or an event Struct, got `list` - at `$`"),
]


@pytest.mark.parametrize(("payload", "msg"), [(p, m) for _, p, m in BAD_EVENTS], ids=[n for n, _, _ in BAD_EVENTS])
def test_malformed_event_dict(payload: Any, msg: str) -> None:
    with pytest.raises(SchemaError, match=f"^{re.escape(msg)}$"):
        decode_event(payload)


@pytest.mark.parametrize(
    ("raw", "msg"),
    [
        (b'{"type":"view","time":1700000000000,"ids":{"cookie":"c"},"value":NaN}',
         "Invalid event: JSON is malformed: invalid character (byte 65)"),
        (b'{"type":"view","time":1700000000000,"ids":{"cookie":"c"},"value":1e999}',
         "Invalid event: Number out of range - at `$.value`"),
        (b'{"type":"view","time":1700000000000,"ids":{"cookie":"c"},"attrs":{"x":1e999}}',
         "Invalid event: Number out of range - at `$.attrs[...]`"),
        (b'{"type":"view","time":1700000000,"ids":{"cookie":"c"}}',
         "Invalid event: Expected `int` >= 946684800000 - at `$.time`"),
        (b'{"type":"view","time":1700000000000}', "Invalid event: Object missing required field `ids`"),
        (b'{"type":"view",', "Invalid event: Input data was truncated"),
        (b"[]", "Invalid event: Expected `object`, got `array`"),
        (b'{"type":"view","time":1700000000000,"ids":{"cookie":"\xff"}}',
         "Invalid event: expected UTF-8, got invalid byte at 0 - at `$`"),
    ],
    ids=["NaN literal", "inf literal", "inf attr literal", "seconds", "missing", "truncated", "array", "invalid utf8"],
)
def test_malformed_event_json(raw: bytes, msg: str) -> None:
    with pytest.raises(SchemaError, match=f"^{re.escape(msg)}$"):
        decode_event(raw)


def test_lone_surrogate_in_str_payload_is_a_schema_error() -> None:
    # regression: a str holding a lone surrogate raised a bare UnicodeEncodeError
    raw = '{"type":"view","time":1700000000000,"ids":{"cookie":"\ud800"}}'
    msg = "Invalid event: expected UTF-8 text, got an unencodable character at 53 - at `$`"
    with pytest.raises(SchemaError, match=f"^{re.escape(msg)}$"):
        decode_event(raw)


@pytest.mark.parametrize(
    ("build", "msg"),
    [
        (lambda: View(time=1_700_000_000, ids={"cookie": "c"}),
         "Expected epoch milliseconds in [946684800000, 4102444800000] (2000-2100), got 1700000000 - at `$.time`"),
        (lambda: View(time=T, ids={"cookie": "c"}, value=float("nan")),
         "Expected a finite number in [-1e+12, 1e+12], got nan - at `$.value`"),
        (lambda: View(time=T, ids={}), "Expected `object` of length 1 to 32, got 0 - at `$.ids`"),
        (lambda: AddToCart(time=T, ids={"cookie": "c"}, quantity=0), "Expected `int` in [1, 10000], got 0 - at `$.quantity`"),
        (lambda: View(time=T, ids={"cookie": "c"}, attrs={"o": object()}),  # type: ignore[dict-item]
         "Expected `str | bool | int | float`, got `object` - at `$.attrs.o`"),
        (lambda: Outcome(decision_id="d-1", kind="click", time=T, value=float("inf")),
         "Expected a finite number in [0, 1e+12], got inf - at `$.value`"),
    ],
    ids=["seconds", "nan", "no ids", "quantity", "object attr", "outcome inf"],
)
def test_built_structs_are_validated_too(build: Any, msg: str) -> None:
    # regression: Structs built in Python skipped every constraint (msgspec constructors do not
    # check them), so an absurd time or a NaN value reached the engine's state. __post_init__
    # runs on construction as well as on decoding, so a bad Struct cannot even be built.
    with pytest.raises(SchemaError, match=f"^{re.escape(msg)}$"):
        build()


def test_built_structs_with_numpy_scalars_pass_unchanged() -> None:
    import numpy as np

    e = View(time=T, ids={"cookie": np.str_("c")}, value=np.float64(2.0), attrs={"n": np.int64(3)})
    assert decode_event(e) is e


def test_oversized_payload() -> None:
    raw = msgspec.json.encode(ev(attrs={"note": "x" * 1000}))
    with pytest.raises(SchemaError, match=re.escape(f"Expected an event payload of at most 512 bytes, got {len(raw)} - at `$`")):
        decode_event(raw, max_bytes=512)
    assert decode_event(raw, max_bytes=len(raw)).attrs["note"] == "x" * 1000
    with pytest.raises(SchemaError, match=re.escape("Expected an event payload of at most 65536 bytes, got 70000 - at `$`")):
        decode_event(b" " * 70_000)


def test_oversized_str_payload_counts_bytes_not_characters() -> None:
    # regression: the limit counted characters, so 3-byte characters passed at 3x the limit
    raw = msgspec.json.encode(ev(attrs={"note": "\u20ac" * 320})).decode()
    n_bytes = len(raw.encode())
    assert len(raw) <= 1024 < n_bytes
    with pytest.raises(SchemaError, match=re.escape(f"Expected an event payload of at most 1024 bytes, got {n_bytes} - at `$`")):
        decode_event(raw, max_bytes=1024)


def test_control_characters_in_ids_are_rejected_by_normalise() -> None:
    # the schema accepts any non-empty str; the identity edge rejects control characters
    e = decode_event(ev(ids={"cookie": "c\x00-1"}))
    with pytest.raises(SchemaError, match=re.escape("Expected an identifier without control characters, got 'c\\x00-1' - at `$.ids.cookie`")):
        normalise("cookie", e.ids["cookie"])


def test_decode_events_errors() -> None:
    with pytest.raises(SchemaError, match=re.escape("Invalid events: Expected `int` >= 946684800000 - at `$[1].time`")):
        decode_events(msgspec.json.encode([ev(), ev(time=5)]))
    with pytest.raises(SchemaError, match=re.escape("Invalid events: expected UTF-8, got invalid byte at 0 - at `$`")):
        decode_events(b'[{"type":"view","time":1700000000000,"ids":{"cookie":"\xff"}}]')


# ---------------------------------------------------------------- outcomes and decisions

def test_outcome_decodes() -> None:
    o = decode_outcome({"decision_id": "d-0", "kind": "conversion", "time": T, "content": "sku-1", "value": 12.5})
    assert o == Outcome(decision_id="d-0", kind="conversion", time=T, content="sku-1", value=12.5)
    assert decode_outcome(encode(o)) == o
    assert decode_outcome(encode(o).decode()) == o
    assert decode_outcome(o) is o
    with pytest.raises(SchemaError, match="^" + re.escape("Expected a finite number in [0, 1e+12], got nan - at `$.value`") + "$"):
        Outcome(decision_id="d-0", kind="conversion", time=T, value=float("nan"))  # built, not decoded
    assert decode_outcome({"decision_id": "d-0", "kind": "click", "time": T}).value == 1.0


@pytest.mark.parametrize(
    ("payload", "msg"),
    [
        ({"decision_id": "d-0", "kind": "view", "time": T}, "Invalid outcome: Invalid enum value 'view' - at `$.kind`"),
        ({"decision_id": "d-0", "kind": "click"}, "Invalid outcome: Object missing required field `time`"),
        ({"decision_id": "", "kind": "click", "time": T}, "Invalid outcome: Expected `str` of length >= 1 - at `$.decision_id`"),
        ({"decision_id": "d-0", "kind": "click", "time": T, "value": -1.0}, "Invalid outcome: Expected `float` >= 0.0 - at `$.value`"),
        ({"decision_id": "d-0", "kind": "click", "time": T, "value": float("nan")}, "Invalid outcome: Expected `float` >= 0.0 - at `$.value`"),
        ({"decision_id": "d-0", "kind": "click", "time": 5}, "Invalid outcome: Expected `int` >= 946684800000 - at `$.time`"),
        ({"decision_id": "d-0", "kind": "click", "time": T, "extra": 1}, "Invalid outcome: Object contains unknown field `extra`"),
        (b'{"decision_id":"\xff","kind":"click","time":1700000000000}', "Invalid outcome: expected UTF-8, got invalid byte at 0 - at `$`"),
        ('{"decision_id":"\ud800","kind":"click","time":1700000000000}', "Invalid outcome: expected UTF-8 text, got an unencodable character at 16 - at `$`"),
        (b" " * 65_537, "Expected an outcome payload of at most 65536 bytes, got 65537 - at `$`"),
        (3.5, "Expected a `dict`, JSON `bytes` or an `Outcome`, got `float` - at `$`"),
    ],
    ids=["kind", "missing", "empty id", "negative value", "nan value", "absurd time", "unknown field",
         "invalid utf8", "surrogate", "oversized", "not a mapping"],
)
def test_malformed_outcome(payload: Any, msg: str) -> None:
    with pytest.raises(SchemaError, match=f"^{re.escape(msg)}$"):
        decode_outcome(payload)


def test_decision_encodes() -> None:
    d = Decision(
        decision_id="d-1", placement="home", time=T, profile=3, policy="greedy", policy_version=1,
        slots=[SlotChoice(content="a", score=0.5, propensity=1.0)], candidates=10, personalized=True,
        reasons=[Reason(kind="affinity", detail="category=shoes", weight=0.7)], latency_us=12.0,
    )
    back = msgspec.json.decode(encode(d), type=Decision)
    assert back == d
    assert msgspec.json.decode(encode(d))["slots"] == [{"content": "a", "score": 0.5, "propensity": 1.0}]


def test_events_are_frozen() -> None:
    e = decode_event(ev())
    with pytest.raises(AttributeError):
        e.time = 0  # type: ignore[misc]
