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
from wording import Wrapped, full_match

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
    "consent": {"gpc": True, "channel": "cmp"},
    "opinion": {"topic": "prices", "sentiment": -0.25, "channel": "survey"},
}


def test_event_types_are_fixed_and_ordered() -> None:
    # the index is the event-type code used by kernels: append only
    assert EVENT_TYPES == (
        "view", "click", "ad_click", "email_open", "email_click", "add_to_cart", "purchase",
        "return", "service_call", "coupon_redeem", "download", "identify", "consent", "opinion",
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

BAD_EVENTS: list[tuple[str, Any, str | Wrapped]] = [
    ("wrong type", ev(time="yesterday"), Wrapped("Invalid event", at="$.time")),
    ("bool time", ev(time=True), Wrapped("Invalid event", at="$.time")),
    ("float time", ev(time=1.7e12), Wrapped("Invalid event", at="$.time")),
    ("wrong ids type", ev(ids=["c-1"]), Wrapped("Invalid event", at="$.ids")),
    ("missing time", {"type": "view", "ids": {"cookie": "c-1"}}, Wrapped("Invalid event", mentions=("time",))),
    ("missing ids", {"type": "view", "time": T}, Wrapped("Invalid event", mentions=("ids",))),
    ("missing type", {"time": T, "ids": {"cookie": "c-1"}}, Wrapped("Invalid event", mentions=("type",))),
    ("unknown field", ev(colour="red"), Wrapped("Invalid event", mentions=("colour",))),
    ("field of another type", ev(quantity=2), Wrapped("Invalid event", mentions=("quantity",))),
    ("unknown event type", ev(type="teleport"), Wrapped("Invalid event", at="$.type", mentions=("teleport",))),
    ("NaN value", ev(value=float("nan")), Wrapped("Invalid event", at="$.value")),
    ("inf value", ev(value=float("inf")), Wrapped("Invalid event", at="$.value")),
    ("-inf value", ev(value=float("-inf")), Wrapped("Invalid event", at="$.value")),
    ("NaN attr", ev(attrs={"score": float("nan")}), "Invalid event: Expected a finite number, got nan - at `$.attrs.score`"),
    ("inf attr", ev(attrs={"score": float("inf")}), "Invalid event: Expected a finite number, got inf - at `$.attrs.score`"),
    ("long attr", ev(attrs={"note": "x" * 1025}), "Invalid event: Expected `str` of length <= 1024, got 1025 characters - at `$.attrs.note`"),
    ("year 1", ev(time=-62_135_596_800_000), Wrapped("Invalid event", at="$.time", mentions=("946684800000",))),
    ("year 9999", ev(time=253_402_300_799_000), Wrapped("Invalid event", at="$.time", mentions=("4102444800000",))),
    ("seconds not ms", ev(time=1_700_000_000), Wrapped("Invalid event", at="$.time", mentions=("946684800000",))),
    ("too many identifiers", ev(ids={f"t{i}": "v" for i in range(33)}), Wrapped("Invalid event", at="$.ids", mentions=("32",))),
    ("no identifiers", ev(ids={}), Wrapped("Invalid event", at="$.ids")),
    ("empty identifier", ev(ids={"cookie": ""}), Wrapped("Invalid event", at="$.ids[...]")),
    ("too many attrs", ev(attrs={f"a{i}": 1 for i in range(65)}), Wrapped("Invalid event", at="$.attrs", mentions=("64",))),
    ("zero quantity", ev(type="add_to_cart", quantity=0), Wrapped("Invalid event", at="$.quantity")),
    ("item list of non-str", ev(type="purchase", items=[1]), Wrapped("Invalid event", at="$.items[0]")),
    ("not a mapping", 42, "Expected a `dict`, JSON `bytes` or an event Struct, got `int` - at `$`"),
    ("list", [ev()], "Expected a `dict`, JSON `bytes` or an event Struct, got `list` - at `$`"),
]


@pytest.mark.parametrize(("payload", "msg"), [(p, m) for _, p, m in BAD_EVENTS], ids=[n for n, _, _ in BAD_EVENTS])
def test_malformed_event_dict(payload: Any, msg: str | Wrapped) -> None:
    with pytest.raises(SchemaError, match=full_match(msg)):
        decode_event(payload)


@pytest.mark.parametrize(
    ("raw", "msg"),
    [
        (b'{"type":"view","time":1700000000000,"ids":{"cookie":"c"},"value":NaN}',
         Wrapped("Invalid event")),
        (b'{"type":"view","time":1700000000000,"ids":{"cookie":"c"},"value":1e999}',
         Wrapped("Invalid event", at="$.value")),
        (b'{"type":"view","time":1700000000000,"ids":{"cookie":"c"},"attrs":{"x":1e999}}',
         Wrapped("Invalid event", at="$.attrs[...]")),
        (b'{"type":"view","time":1700000000,"ids":{"cookie":"c"}}',
         Wrapped("Invalid event", at="$.time", mentions=("946684800000",))),
        (b'{"type":"view","time":1700000000000}', Wrapped("Invalid event", mentions=("ids",))),
        (b'{"type":"view",', Wrapped("Invalid event")),
        (b"[]", Wrapped("Invalid event")),
        (b'{"type":"view","time":1700000000000,"ids":{"cookie":"\xff"}}',
         "Invalid event: expected UTF-8 text, got an invalid byte b'\\xff' at position 53 - at `$`"),
    ],
    ids=["NaN literal", "inf literal", "inf attr literal", "seconds", "missing", "truncated", "array", "invalid utf8"],
)
def test_malformed_event_json(raw: bytes, msg: str | Wrapped) -> None:
    with pytest.raises(SchemaError, match=full_match(msg)):
        decode_event(raw)


def test_lone_surrogate_in_str_payload_is_a_schema_error() -> None:
    # regression: a str holding a lone surrogate raised a bare UnicodeEncodeError
    raw = '{"type":"view","time":1700000000000,"ids":{"cookie":"\ud800"}}'
    msg = "Invalid event: expected UTF-8 text, got an unencodable character '\\ud800' at position 53 - at `$`"
    with pytest.raises(SchemaError, match=f"^{re.escape(msg)}$"):
        decode_event(raw)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
@pytest.mark.parametrize(
    ("raw", "pos", "byte"),
    [(b'{"type":"view","time":1700000000000,"ids":{"cookie":"\xe2\x82"}}', 53, "b'\\xe2'"),  # cut euro sign
     (b'{"type":"view","time":1700000000000,"ids":{"cookie":"\xc0\xaf"}}', 53, "b'\\xc0'"),  # overlong "/"
     (b'{"type":"view","time":1700000000000,"ids":{"cookie":"ok"},"item":"\xed\xa0\x80"}', 66, "b'\\xed'")],  # surrogate
    ids=["truncated", "overlong", "encoded surrogate"],
)
def test_invalid_utf8_is_refused_in_our_words(wrap: Any, raw: bytes, pos: int, byte: str) -> None:
    # regression: the message was msgspec's, and msgspec 0.23 reworded it and dropped the
    # position; decisioner checks UTF-8 itself now, for every bytes-like payload
    msg = f"Invalid event: expected UTF-8 text, got an invalid byte {byte} at position {pos} - at `$`"
    with pytest.raises(SchemaError, match=full_match(msg)):
        decode_event(wrap(raw))
    with pytest.raises(SchemaError, match=full_match(msg.replace("event", "events").replace(str(pos), str(pos + 1)))):
        decode_events(b"[" + raw + b"]")


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
    with pytest.raises(SchemaError, match=full_match(Wrapped("Invalid events", at="$[1].time", mentions=("946684800000",)))):
        decode_events(msgspec.json.encode([ev(), ev(time=5)]))
    with pytest.raises(SchemaError, match=full_match("Invalid events: expected UTF-8 text, got an invalid byte b'\\xff' at position 54 - at `$`")):
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
        ({"decision_id": "d-0", "kind": "view", "time": T}, Wrapped("Invalid outcome", at="$.kind", mentions=("view",))),
        ({"decision_id": "d-0", "kind": "click"}, Wrapped("Invalid outcome", mentions=("time",))),
        ({"decision_id": "", "kind": "click", "time": T}, Wrapped("Invalid outcome", at="$.decision_id")),
        ({"decision_id": "d-0", "kind": "click", "time": T, "value": -1.0}, Wrapped("Invalid outcome", at="$.value")),
        ({"decision_id": "d-0", "kind": "click", "time": T, "value": float("nan")}, Wrapped("Invalid outcome", at="$.value")),
        ({"decision_id": "d-0", "kind": "click", "time": 5}, Wrapped("Invalid outcome", at="$.time", mentions=("946684800000",))),
        ({"decision_id": "d-0", "kind": "click", "time": T, "extra": 1}, Wrapped("Invalid outcome", mentions=("extra",))),
        (b'{"decision_id":"\xff","kind":"click","time":1700000000000}', "Invalid outcome: expected UTF-8 text, got an invalid byte b'\\xff' at position 16 - at `$`"),
        ('{"decision_id":"\ud800","kind":"click","time":1700000000000}', "Invalid outcome: expected UTF-8 text, got an unencodable character '\\ud800' at position 16 - at `$`"),
        (b" " * 65_537, "Expected an outcome payload of at most 65536 bytes, got 65537 - at `$`"),
        (3.5, "Expected a `dict`, JSON `bytes` or an `Outcome`, got `float` - at `$`"),
    ],
    ids=["kind", "missing", "empty id", "negative value", "nan value", "absurd time", "unknown field",
         "invalid utf8", "surrogate", "oversized", "not a mapping"],
)
def test_malformed_outcome(payload: Any, msg: str | Wrapped) -> None:
    with pytest.raises(SchemaError, match=full_match(msg)):
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
