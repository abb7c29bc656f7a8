"""Hostile input: every bad event (hand-written and hypothesis-generated) gets a ``decisioner``
error, leaves the state untouched, keeps memory bounded, and the engine goes on serving."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decisioner import (
    Catalog,
    DecisionerError,
    Engine,
    SchemaError,
    UnknownItemError,
    UnknownPlacementError,
    load_config_dict,
)
from decisioner.errors import ConfigError
from statecheck import assert_same, engine_state
from wording import Wrapped, full_match

T0 = 1_700_000_000_000
GOOD: dict[str, Any] = {"type": "view", "time": T0, "ids": {"cookie": "ck-1"}, "item": "i1"}


def make_engine(**limits: Any) -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": "5a" * 16},
        "limits": limits,
        "placements": [
            {"name": "home", "kind": "recommendation", "slots": 3},
            {"name": "hero", "kind": "campaign", "experiences": [{"id": "a"}, {"id": "b"}]},
        ],
    })
    cat = Catalog([{"id": f"i{j}", "category": f"c{j % 4}", "brand": f"b{j % 3}", "price": 10.0 + j, "inventory": 3} for j in range(40)])
    eng = Engine(cfg, cat, seed=0)
    for k in range(30):  # some state worth protecting
        eng.decide({"type": "view", "time": T0 + k, "ids": {"cookie": f"ck-{k % 6}"}, "item": f"i{k}"}, placement="home")
    return eng


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


@contextmanager
def unchanged(eng: Engine, max_alloc_bytes: int = 1 << 20) -> Iterator[None]:
    """The block must leave the engine's state as it was, allocate less than
    ``max_alloc_bytes`` at peak, and the engine must serve a good event afterwards."""
    before = engine_state(eng)
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert_same(before, engine_state(eng))
    assert peak < max_alloc_bytes, f"peak allocation {peak} bytes"
    probe = make_engine()  # a good event still works on the same kind of engine
    assert probe.decide(GOOD, placement="home").slots


def payload(**over: Any) -> dict[str, Any]:
    d = dict(GOOD)
    d.update(over)
    return {k: v for k, v in d.items() if v is not ...}


HAND_WRITTEN = [
    ("wrong type of time", payload(time="soon"), SchemaError, Wrapped("Invalid event", at="$.time")),
    ("wrong type of ids", payload(ids=["ck-1"]), SchemaError, Wrapped("Invalid event", at="$.ids")),
    ("missing ids", payload(ids=...), SchemaError, Wrapped("Invalid event", mentions=("ids",))),
    ("missing type", {k: v for k, v in GOOD.items() if k != "type"}, SchemaError, Wrapped("Invalid event", mentions=("type",))),
    # JSON has no NaN or infinity (an encoder writes null): those forms are the literals below
    ("NaN value", payload(value=float("nan")), SchemaError, (Wrapped("Invalid event", at="$.value"), None)),
    ("inf value", payload(value=float("inf")), SchemaError, (Wrapped("Invalid event", at="$.value"), None)),
    ("NaN attribute", payload(attrs={"x": float("nan")}), SchemaError, ("Invalid event: Expected a finite number, got nan - at `$.attrs.x`", None)),
    ("year 1", payload(time=-62_135_596_800_000), SchemaError, Wrapped("Invalid event", at="$.time", mentions=("946684800000",))),
    ("year 9999", payload(time=253_402_300_799_000), SchemaError, Wrapped("Invalid event", at="$.time", mentions=("4102444800000",))),
    ("seconds not ms", payload(time=1_700_000_000), SchemaError, Wrapped("Invalid event", at="$.time", mentions=("946684800000",))),
    ("unknown item", payload(item="i999"), UnknownItemError, "Expected an item id in the catalog, got 'i999' - at `$.item`"),
    ("10,000 identifiers", payload(ids={f"t{i}": "v" for i in range(10_000)}), SchemaError,
     (Wrapped("Invalid event", at="$.ids", mentions=("32",)),
      "Expected an event payload of at most 65536 bytes, got 118946 - at `$`")),
    ("over the identifier limit", payload(ids={f"t{i}": "v" for i in range(20)}), SchemaError,
     "Expected at most 16 identifiers, got 20 - at `$.ids`"),
    ("over the attribute limit", payload(attrs={f"a{i}": i for i in range(40)}), SchemaError,
     "Expected at most 32 attributes, got 40 - at `$.attrs`"),
    ("control character in id", payload(ids={"cookie": "ck\x07-1"}), SchemaError,
     "Expected an identifier without control characters, got 'ck\\x07-1' - at `$.ids.cookie`"),
    ("NUL in email", payload(ids={"email": "a\x00@b.c"}), SchemaError,
     "Expected an identifier without control characters, got 'a\\x00@b.c' - at `$.ids.email`"),
    ("nested attribute", payload(attrs={"x": {"y": [1, 2]}}), SchemaError,
     Wrapped("Invalid event", at="$.attrs[...]")),
    ("unknown field", payload(admin=True), SchemaError, Wrapped("Invalid event", mentions=("admin",))),
    ("unknown event type", payload(type="delete_all"), SchemaError, Wrapped("Invalid event", at="$.type", mentions=("delete_all",))),
    ("not an object", "view", SchemaError, Wrapped("Invalid event")),
]


CASES = [
    (case, form, bad, err, msg[0 if form == "dict" else 1] if isinstance(msg, tuple) else msg)
    for case, bad, err, msg in HAND_WRITTEN
    for form in ("dict", "json")
    if not isinstance(msg, tuple) or msg[0 if form == "dict" else 1] is not None
]


@pytest.mark.parametrize(("case", "form", "bad", "err", "msg"), CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_hand_written_bad_events(engine: Engine, case: str, form: str, bad: Any, err: type[Exception], msg: str | Wrapped) -> None:
    body = msgspec.json.encode(bad) if form == "json" or isinstance(bad, str) else bad
    with unchanged(engine):
        for call in (lambda: engine.decide(body, placement="home"), lambda: engine.track(body)):
            with pytest.raises(err, match=full_match(msg)):
                call()


@pytest.mark.parametrize(
    ("literal", "msg"),
    # byte 68 is where the value starts
    [(b"NaN", Wrapped("Invalid event")),
     (b"Infinity", Wrapped("Invalid event")),
     (b"1e999", Wrapped("Invalid event", at="$.value"))],
)
def test_json_non_finite_literals(engine: Engine, literal: bytes, msg: str | Wrapped) -> None:
    raw = b'{"type":"view","time":1700000000000,"ids":{"cookie":"ck-1"},"value":' + literal + b"}"
    assert raw.index(literal) == 68
    with unchanged(engine), pytest.raises(SchemaError, match=full_match(msg)):
        engine.track(raw)


def test_unknown_placement(engine: Engine) -> None:
    with unchanged(engine), pytest.raises(UnknownPlacementError, match=re.escape("Expected a configured placement in ['hero', 'home'], got 'admin' - at `placement`")):
        engine.decide(GOOD, placement="admin")


def test_ten_megabyte_payload_is_refused_before_parsing(engine: Engine) -> None:
    big = b'{"type":"view","time":1700000000000,"ids":{"cookie":"x"},"attrs":{"blob":"' + b"A" * (10 * 1024 * 1024) + b'"}}'
    msg = f"Expected an event payload of at most 65536 bytes, got {len(big)} - at `$`"
    with unchanged(engine, max_alloc_bytes=64 * 1024), pytest.raises(SchemaError, match=full_match(msg)):  # nothing proportional to the payload
        engine.decide(big, placement="home")


def test_deep_nesting(engine: Engine) -> None:
    # 200,000 levels: over the size limit; 30,000 levels: within it, refused by the schema
    # without recursing (msgspec's typed decoder stops at the first wrong type)
    deepest = b'{"type":"view","time":1700000000000,"ids":{"cookie":"x"},"attrs":{"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}}"
    with unchanged(engine), pytest.raises(SchemaError, match=full_match(f"Expected an event payload of at most 65536 bytes, got {len(deepest)} - at `$`")):
        engine.track(deepest)
    deep = b'{"type":"view","time":1700000000000,"ids":{"cookie":"x"},"attrs":{"x":' + b"[" * 30_000 + b"]" * 30_000 + b"}}"
    with unchanged(engine), pytest.raises(SchemaError, match=full_match(Wrapped("Invalid event", at="$.attrs[...]"))):
        engine.track(deep)


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd", b'{"type":"view","time":1700000000000,"ids":{"cookie":"\xc3\x28"}}', b"\xed\xa0\x80"])
def test_invalid_utf8(engine: Engine, raw: bytes) -> None:
    # ours, not msgspec's words; the byte and position are pinned in test_schemas
    with unchanged(engine), pytest.raises(SchemaError, match="^" + re.escape("Invalid event: expected UTF-8 text, got an invalid byte ")):
        engine.track(raw)


def test_limits_are_configurable_with_safe_defaults() -> None:
    eng = make_engine(max_identifiers=2, max_attributes=0, max_payload_bytes=512)
    with pytest.raises(SchemaError, match=re.escape("Expected at most 2 identifiers, got 3 - at `$.ids`")):
        eng.track(payload(ids={"cookie": "a", "email": "a@b.c", "user_id": "u"}))
    with pytest.raises(SchemaError, match=re.escape("Expected at most 0 attributes, got 1 - at `$.attrs`")):
        eng.track(payload(attrs={"a": 1}))
    with pytest.raises(ConfigError, match=full_match(Wrapped("Invalid config", at="$.limits.max_identifiers", mentions=("32",)))):
        load_config_dict({"limits": {"max_identifiers": 10_000}})


# ------------------------------------------------------------------------- generated

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
)
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
FIELDS = ["type", "time", "ids", "item", "value", "attrs", "consent", "channel", "device", "items", "quantity"]


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    ev: dict[str, Any] = dict(GOOD)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        key = draw(st.sampled_from(FIELDS))
        if action == "replace" or action == "add":
            ev[key] = draw(junk)
        else:
            ev.pop(key, None)
    return ev


@settings(max_examples=300)
@given(ev=mutated_events(), as_json=st.booleans())
def test_generated_events_never_crash_or_corrupt(ev: Any, as_json: bool) -> None:
    eng = GENERATED_ENGINE
    try:
        body = msgspec.json.encode(ev) if as_json else ev
    except (TypeError, OverflowError, ValueError):
        body = ev  # not JSON-encodable (NaN is fine; huge ints are not): send the dict
    before = engine_state(eng)
    try:
        eng.track(body)
    except DecisionerError:
        assert_same(before, engine_state(eng))


@settings(max_examples=200)
@given(raw=st.binary(max_size=300))
def test_generated_bytes_never_crash_or_corrupt(raw: bytes) -> None:
    eng = GENERATED_ENGINE
    before = engine_state(eng)
    try:
        eng.decide(raw, placement="home")
    except DecisionerError:
        assert_same(before, engine_state(eng))


GENERATED_ENGINE = make_engine()


def test_read_only_calls_and_rejected_events_register_no_identifier_type() -> None:
    """Regression (issue 10): one rejected ``recommend`` with 200 made-up identifier types
    filled the 127-type registry, and rejected events registered their types."""
    eng = make_engine()
    made_up = {f"made_up_{j}": "x" for j in range(200)}
    with unchanged(eng):
        eng.recommend({"cookie": "ck-1", **dict(list(made_up.items())[:50])}, placement="home", now=T0 + 99)
        with pytest.raises(SchemaError):
            eng.recommend(made_up, placement="home", now=T0 + 99)
        with pytest.raises(SchemaError):
            eng.track({"type": "view", "time": T0, "ids": {"loyalty": "L-1", "email": "nope"}, "item": "i1"})
        assert eng.profile_row({"loyalty": "L-1"}) == -1
    row = eng.track({"type": "view", "time": T0 + 100, "ids": {"loyalty": "L-1"}, "item": "i1"})
    assert eng.identity.types[-1] == "loyalty" and eng.profile_row({"loyalty": "L-1"}) == row
