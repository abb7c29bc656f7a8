"""Typed profile attributes: the configuration, each reconciliation rule (out-of-order events
and merges), provenance, batch loads, validation before anything changes, identifiers refused,
bounds, consent, erasure and export, snapshots and the event log, and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner.attributes import MAX_SOURCES, AttributeStore, identifier_kind
from decisioner.catalog import Catalog
from decisioner.checks import check_engine
from decisioner.cli import main
from decisioner.config import AttributeSpec, load_config_dict
from decisioner.errors import ConfigError, NotReadyError, SchemaError
from statecheck import assert_same, engine_state
from wording import Wrapped, full_match

T0 = 1_700_000_000_000
KEY = "3c" * 16

ATTRS: dict[str, Any] = {
    "region": {"type": "category"},
    "zip": {"type": "category", "rule": "first_seen"},
    "tier": {"type": "category", "rule": "source_priority", "sources": ["crm", "pos"], "from_events": False},
    "lang": {"type": "category", "rule": "most_frequent", "slots": 2},
    "ltv": {"type": "number", "rule": "sum"},
    "low": {"type": "number", "rule": "min"},
    "last_order": {"type": "timestamp", "rule": "max"},
}


def make_engine(attributes: dict[str, Any] | None = None, **extra: Any) -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": KEY},
        "placements": [{"name": "home", "kind": "recommendation", "slots": 2, "policy": {"kind": "greedy"}}],
        "attributes": ATTRS if attributes is None else attributes,
        **extra,
    })
    cat = Catalog([{"id": f"i{j}", "category": f"c{j % 3}"} for j in range(9)])
    return Engine(cfg, cat, seed=2)


def view(ids: dict[str, str], t: int, channel: str = "web", **attrs: Any) -> dict[str, Any]:
    return {"type": "view", "time": t, "ids": ids, "item": "i1", "channel": channel, "attrs": attrs}


def store(**specs: dict[str, Any]) -> AttributeStore:
    s = AttributeStore({n: AttributeSpec(**kw) for n, kw in specs.items()}, capacity=2)
    s.ensure(4)
    return s


def offer(s: AttributeStore, row: int, value: Any, source: str, t: int, name: str = "a") -> None:
    s.set(row, s.check({name: value}), source=source, time=t)


# ---------------------------------------------------------------- configuration


def test_rules_are_checked_against_types() -> None:
    for type_, rules in {"category": ("min", "max", "sum"), "number": ("most_frequent",),
                         "timestamp": ("most_frequent", "sum")}.items():
        for rule in rules:
            with pytest.raises(ConfigError, match=full_match(Wrapped("Invalid config", at="$.attributes[...]",
                                                                    mentions=(repr(rule), f"`{type_}`")))):
                load_config_dict({"attributes": {"a": {"type": type_, "rule": rule}}})
    with pytest.raises(ConfigError, match=re.escape(
        "expected a rule in ['most_recent', 'first_seen', 'source_priority', 'min', 'max'] for a `timestamp` "
        "attribute, got 'sum'"
    )):
        AttributeSpec(type="timestamp", rule="sum")


@pytest.mark.parametrize(("spec", "msg"), [
    ({"type": "number", "rule": "source_priority"}, "expected `sources` (priority order) for rule 'source_priority', got none"),
    ({"type": "number", "rule": "source_priority", "sources": ["a", "a"]}, "expected unique `sources`, got ['a', 'a']"),
    ({"type": "number", "sources": ["crm"]}, "expected `sources` only with rule 'source_priority', got rule 'most_recent'"),
    ({"type": "number", "max_values": 3}, "expected `max_values` only on a `category` attribute, got type 'number'"),
    ({"type": "category", "slots": 3}, "expected `slots` only with rule 'most_frequent', got rule 'most_recent'"),
])
def test_options_that_do_not_apply_are_refused(spec: dict[str, Any], msg: str) -> None:
    with pytest.raises(ConfigError, match=full_match(msg)):
        AttributeSpec(**spec)


def test_attribute_names_never_name_an_identifier_type() -> None:
    msg = ("Invalid config: expected an attribute name that is not an identifier type, got {!r} for `attributes` "
           "(attributes never hold identifiers)")
    with pytest.raises(ConfigError, match=full_match(msg.format("email"))):
        load_config_dict({"attributes": {"email": {"type": "category"}}})
    with pytest.raises(ConfigError, match=full_match(msg.format("loyalty_no"))):  # a configured identifier type
        load_config_dict({"identity": {"identifiers": [{"name": "loyalty_no", "unique": True}]},
                          "attributes": {"loyalty_no": {"type": "category"}}})
    with pytest.raises(ConfigError, match=full_match(
        "Invalid config: expected an attribute name of a letter then up to 63 letters, digits or underscores, "
        "got 'a/b' for `attributes`"
    )):
        load_config_dict({"attributes": {"a/b": {"type": "number"}}})
    assert load_config_dict({}).attributes == {}  # default: no attributes


# ---------------------------------------------------------------- rules, event time decides


def test_most_recent_keeps_the_newest_event_time_not_the_last_arrival() -> None:
    s = store(a={"type": "category"})
    offer(s, 0, "north", "web", T0 + 10)
    offer(s, 0, "south", "app", T0)  # older, arrives later: ignored
    assert s.get(0) == {"a": ("north", "web", T0 + 10)}
    offer(s, 0, "east", "app", T0 + 10)  # the same time: the later arrival wins
    assert s.get(0) == {"a": ("east", "app", T0 + 10)}


def test_first_seen_keeps_the_oldest_event_time() -> None:
    s = store(a={"type": "category", "rule": "first_seen"})
    offer(s, 0, "02139", "web", T0 + 10)
    offer(s, 0, "10001", "crm", T0 + 5)  # older, arrives later: it was first
    offer(s, 0, "94105", "web", T0 + 5)  # the same time: the held one stays
    offer(s, 0, "60601", "web", T0 + 20)
    assert s.get(0) == {"a": ("10001", "crm", T0 + 5)}


def test_source_priority_ranks_sources_then_times() -> None:
    s = store(a={"type": "category", "rule": "source_priority", "sources": ["crm", "pos"]})
    offer(s, 0, "bronze", "web", T0 + 50)  # unlisted: ranks after every listed source
    offer(s, 0, "silver", "pos", T0)
    assert s.get(0)["a"] == ("silver", "pos", T0)
    offer(s, 0, "gold", "crm", T0 - 100)  # higher priority wins even when older
    offer(s, 0, "platinum", "pos", T0 + 100)
    offer(s, 0, "bronze", "web", T0 + 100)
    assert s.get(0)["a"] == ("gold", "crm", T0 - 100)
    offer(s, 0, "diamond", "crm", T0 - 200)  # same priority, older: ignored
    offer(s, 0, "jade", "crm", T0 - 50)  # same priority, newer: kept
    assert s.get(0)["a"] == ("jade", "crm", T0 - 50)


@pytest.mark.parametrize("type_", ["number", "timestamp"])
def test_min_and_max_keep_the_extreme_and_when_it_was_first_reached(type_: str) -> None:
    lo, hi = store(a={"type": type_, "rule": "min"}), store(a={"type": type_, "rule": "max"})
    for t, v, src in [(T0 + 3, T0 + 30, "a"), (T0 + 1, T0 + 10, "b"), (T0 + 2, T0 + 50, "c"), (T0 + 0, T0 + 50, "d"),
                      (T0 + 4, T0 + 10, "e")]:
        for s in (lo, hi):
            offer(s, 0, v if type_ == "timestamp" else float(v - T0), src, t)
    conv = (lambda v: v) if type_ == "timestamp" else (lambda v: float(v - T0))
    assert lo.get(0) == {"a": (conv(T0 + 10), "b", T0 + 1)}
    assert hi.get(0) == {"a": (conv(T0 + 50), "d", T0)}  # reached at T0 + 2 too, but first at T0


def test_sum_adds_in_any_order_with_the_newest_provenance() -> None:
    a, b = store(a={"type": "number", "rule": "sum"}), store(a={"type": "number", "rule": "sum"})
    vals = [(40.0, "crm", T0 + 5), (2.5, "web", T0 + 9), (-1.0, "pos", T0 + 1)]
    for v, src, t in vals:
        offer(a, 0, v, src, t)
    for v, src, t in reversed(vals):
        offer(b, 0, v, src, t)
    assert a.get(0) == b.get(0) == {"a": (41.5, "web", T0 + 9)}


def test_most_frequent_counts_and_lets_a_lasting_change_in() -> None:
    s = store(a={"type": "category", "rule": "most_frequent", "slots": 2})
    for j, v in enumerate(["en", "en", "de", "en", "de"]):
        offer(s, 0, v, "web", T0 + j)
    assert s.get(0) == {"a": ("en", "web", T0 + 3)}
    # both slots are full: "fr" replaces the weaker "de" (count 2) and starts from 2 + 1
    offer(s, 0, "fr", "app", T0 + 10)
    assert [(c["value"], c["count"]) for c in s.export(0)["a"]["counts"]] == [("en", 3), ("fr", 3)]
    assert s.get(0)["a"] == ("fr", "app", T0 + 10)  # equal counts: the newest sighting
    offer(s, 0, "en", "web", T0 + 2)  # an old sighting still counts, but does not move the provenance back
    assert s.get(0)["a"] == ("en", "web", T0 + 3)


# ---------------------------------------------------------------- merges


def merged(spec: dict[str, Any], dst: list[tuple[Any, str, int]], src: list[tuple[Any, str, int]]) -> Any:
    s = store(a=spec)
    for v, so, t in dst:
        offer(s, 0, v, so, t)
    for v, so, t in src:
        offer(s, 1, v, so, t)
    s.merge(0, 1)
    assert s.get(1) == {}  # the absorbed row is cleared
    return s.get(0).get("a")


def test_merges_reconcile_by_each_rule() -> None:
    cat = {"type": "category"}
    assert merged(cat, [("n", "web", T0)], [("s", "app", T0 + 1)]) == ("s", "app", T0 + 1)
    assert merged(cat, [("n", "web", T0 + 1)], [("s", "app", T0)]) == ("n", "web", T0 + 1)
    assert merged(cat, [("n", "web", T0)], [("s", "app", T0)]) == ("n", "web", T0)  # tie: the survivor's
    assert merged(cat, [], [("s", "app", T0)]) == ("s", "app", T0)
    assert merged({"type": "category", "rule": "first_seen"}, [("n", "web", T0)], [("s", "app", T0 - 1)]) == (
        "s", "app", T0 - 1)
    sp = {"type": "category", "rule": "source_priority", "sources": ["crm", "pos"]}
    assert merged(sp, [("n", "pos", T0 + 9)], [("s", "crm", T0)]) == ("s", "crm", T0)
    assert merged(sp, [("n", "crm", T0 + 9)], [("s", "crm", T0)]) == ("n", "crm", T0 + 9)
    assert merged({"type": "number", "rule": "sum"}, [(2.0, "web", T0 + 3), (1.0, "web", T0)],
                  [(4.0, "crm", T0 + 1)]) == (7.0, "web", T0 + 3)
    assert merged({"type": "number", "rule": "min"}, [(2.0, "web", T0)], [(1.0, "crm", T0 + 1)]) == (1.0, "crm", T0 + 1)
    assert merged({"type": "timestamp", "rule": "max"}, [(T0 + 5, "web", T0)], [(T0 + 1, "crm", T0 + 1)]) == (
        T0 + 5, "web", T0)
    mf = {"type": "category", "rule": "most_frequent", "slots": 2}
    # dst: en x2, de x1; src: de x2, fr x1 -> de 3 (in), en 2, fr dropped by the slot bound
    assert merged(mf, [("en", "w", T0), ("en", "w", T0 + 1), ("de", "w", T0 + 2)],
                  [("de", "a", T0 + 3), ("de", "a", T0 + 4), ("fr", "a", T0 + 5)]) == ("de", "a", T0 + 4)


def test_an_identity_merge_reconciles_attributes_on_the_engine() -> None:
    eng = make_engine()
    eng.track(view({"cookie": "laptop"}, T0 + 10, region="north", ltv=5, zip="02139", lang="en", low=3.0))
    eng.track(view({"cookie": "phone"}, T0, channel="app", region="south", ltv=7, zip="10001", lang="en", low=9.0))
    eng.track(view({"cookie": "phone"}, T0 + 1, channel="app", lang="de", last_order=T0 - 5))
    assert eng.identity.n_profiles == 2
    eng.track({"type": "identify", "time": T0 + 20, "ids": {"cookie": "phone", "email": "ada@example.com"}})
    eng.track({"type": "identify", "time": T0 + 21, "ids": {"cookie": "laptop", "email": "ada@example.com"}})
    assert eng.identity.n_profiles == 1
    assert eng.attributes({"cookie": "laptop"}) == eng.attributes({"email": "ada@example.com"}) == {
        "region": ("north", "web", T0 + 10),  # newest
        "zip": ("10001", "app", T0),  # first seen
        "lang": ("en", "web", T0 + 10),  # counted twice
        "ltv": (12.0, "web", T0 + 10),
        "low": (3.0, "web", T0 + 10),
        "last_order": (T0 - 5, "app", T0 + 1),
    }


# ---------------------------------------------------------------- setting: events and batch loads


def test_events_set_declared_attributes_and_leave_the_rest_as_context() -> None:
    eng = make_engine()
    eng.track(view({"cookie": "c"}, T0, region="north", tier="gold", age=41))
    assert eng.attributes({"cookie": "c"}) == {"region": ("north", "web", T0)}  # tier: loads only; age: undeclared
    eng.set_attributes({"cookie": "c", "crm_id": "C-1"}, {"tier": "gold", "ltv": 120}, source="crm", time=T0 - 5)
    eng.set_attributes({"crm_id": "C-1"}, {"tier": "silver"}, source="pos", time=T0 + 5)  # lower priority
    assert eng.attributes({"cookie": "c"}) == {
        "region": ("north", "web", T0), "tier": ("gold", "crm", T0 - 5), "ltv": (120.0, "crm", T0 - 5),
    }
    assert eng.events_ == 3  # a load is applied as an identify event of the person


def test_a_load_creates_an_unknown_person_and_many_loads_are_checked_first() -> None:
    eng = make_engine()
    rows = eng.set_attributes_many([{"crm_id": "A"}, {"crm_id": "B"}], [{"region": "n"}, {"zip": 2139}],
                                   source="crm", time=[T0, T0 + 1])
    assert rows.dtype == np.int32 and eng.identity.n_profiles == 2
    assert eng.attributes({"crm_id": "B"}) == {"zip": ("2139", "crm", T0 + 1)}  # an int category kept as text
    before, ops = engine_state(eng), eng.ops_
    with pytest.raises(SchemaError, match=full_match(
        "Expected a `number` attribute value (finite, |x| <= 1e15), got 'lots' - at `$.attrs.ltv`"
    )):
        eng.set_attributes_many([{"crm_id": "C"}, {"crm_id": "D"}], [{"region": "s"}, {"ltv": "lots"}],
                                source="crm", time=T0)
    with pytest.raises(SchemaError, match=full_match(
        "Expected a declared attribute in ['region', 'zip', 'tier', 'lang', 'ltv', 'low', 'last_order'], got 'age' "
        "- at `$.attrs`"
    )):
        eng.set_attributes({"crm_id": "C"}, {"age": 3}, source="crm", time=T0)
    with pytest.raises(SchemaError, match=full_match("Expected `values` to be a list of 1 mappings (one per person), "
                                                     "got [{'a': 1}, {}]")):
        eng.set_attributes_many([{"crm_id": "C"}], [{"a": 1}, {}], source="crm", time=T0)
    with pytest.raises(SchemaError, match=full_match("Expected `values[0]` to be a non-empty mapping of attribute "
                                                     "to value, got {}")):
        eng.set_attributes({"crm_id": "C"}, {}, source="crm", time=T0)
    with pytest.raises(SchemaError, match=full_match("Expected `time` to be an int or a list of 1 ints, got `str` 'x'")):
        eng.set_attributes({"crm_id": "C"}, {"region": "s"}, source="crm", time="x")  # type: ignore[arg-type]
    assert_same(engine_state(eng), before)
    assert eng.ops_ == ops and eng.identity.n_profiles == 2 and eng.profile_row({"crm_id": "C"}) == -1


@pytest.mark.parametrize(("attrs", "msg"), [
    ({"ltv": True}, "Expected a `number` attribute value, got `bool` - at `$.attrs.ltv`"),
    ({"region": 2.5}, "Expected a `category` attribute value (str of length 1 to 1024), got `float` - at `$.attrs.region`"),
    ({"last_order": 1.5}, "Expected a `timestamp` attribute value (epoch ms, an int in 2000-2100), got 1.5 - at "
                          "`$.attrs.last_order`"),
    ({"last_order": 17}, "Expected a `timestamp` attribute value (epoch ms, an int in 2000-2100), got 17 - at "
                         "`$.attrs.last_order`"),
    ({"region": "Ada.L@Example.com"}, "Expected a value that is not an identifier (attributes never hold identifiers), "
                                      "got an email address - at `$.attrs.region`"),
    ({"zip": "+44 20 7946 0958"}, "Expected a value that is not an identifier (attributes never hold identifiers), "
                                  "got a phone number - at `$.attrs.zip`"),
    ({"lang": "(555) 123-4567"}, "Expected a value that is not an identifier (attributes never hold identifiers), "
                                 "got a phone number - at `$.attrs.lang`"),
])
def test_a_bad_attribute_in_an_event_changes_nothing(attrs: dict[str, Any], msg: str) -> None:
    eng = make_engine()
    eng.track(view({"cookie": "c"}, T0, region="north"))
    before, ops = engine_state(eng), eng.ops_
    for call in (lambda: eng.track(view({"cookie": "c"}, T0 + 1, **attrs)),
                 lambda: eng.decide(view({"cookie": "new"}, T0 + 1, **attrs), placement="home")):
        with pytest.raises(SchemaError, match=full_match(msg)):
            call()
    assert_same(engine_state(eng), before)
    assert eng.ops_ == ops and eng.attributes({"cookie": "c"}) == {"region": ("north", "web", T0)}


def test_an_identifier_as_source_is_refused_and_zip_codes_are_not_identifiers() -> None:
    eng = make_engine()
    with pytest.raises(SchemaError, match=full_match(
        "Expected a value that is not an identifier (attributes never hold identifiers), got an email address - at "
        "`$.channel`"
    )):
        eng.track(view({"cookie": "c"}, T0, channel="ada@example.com", region="north"))
    assert [identifier_kind(v) for v in ("02139", "02139-4307", "SW1A 1AA", "gold", "+1 555 0100", "5551234567")] == [
        None, None, None, None, "a phone number", "a phone number"]


def test_bounds_drop_values_deterministically() -> None:
    eng = make_engine({"region": {"type": "category", "max_values": 2}})
    for j, r in enumerate(["n", "s", "e", "n"]):
        eng.track(view({"cookie": f"c{j}"}, T0 + j, region=r))
    assert eng.attributes_.vocab_["region"] == ["n", "s"] and eng.attributes_.dropped_ == {"region": 1}
    assert eng.attributes({"cookie": "c2"}) == {} and eng.attributes({"cookie": "c3"}) == {"region": ("n", "web", T0 + 3)}
    s = store(a={"type": "number"})
    s.sources_ = [f"s{j}" for j in range(MAX_SOURCES)]
    s._source_codes = {n: j for j, n in enumerate(s.sources_)}
    offer(s, 0, 1.0, "one-too-many", T0)
    assert s.get(0) == {} and s.dropped_ == {"a": 1}


def test_without_consent_events_set_nothing_but_loads_do() -> None:
    eng = make_engine()
    ids = {"cookie": "c"}
    eng.track({**view(ids, T0, region="north"), "consent": {"personalization": False}})
    assert eng.attributes(ids) == {}
    eng.set_attributes(ids, {"region": "south"}, source="crm", time=T0 + 1)
    assert eng.attributes(ids) == {"region": ("south", "crm", T0 + 1)}


def test_no_attributes_declared_costs_nothing_and_reads_resolve_without_creating() -> None:
    eng = make_engine({})
    eng.track(view({"cookie": "c"}, T0, region="north"))
    assert not eng.attributes_.active and eng.attributes_.arrays_ == {}
    assert eng.attributes({"cookie": "c"}) == {} and eng.attributes({"cookie": "nobody"}) == {}
    assert eng.identity.n_profiles == 1 and eng.attributes_.nbytes_per_profile() == 0


# ---------------------------------------------------------------- erasure, eviction, export


def test_export_lists_attributes_with_provenance_and_erasure_removes_them() -> None:
    eng = make_engine()
    ids = {"email": "ada@example.com", "cookie": "c"}
    row = eng.track(view(ids, T0, region="north", lang="en"))
    eng.set_attributes(ids, {"tier": "gold"}, source="crm", time=T0 + 1)
    out = eng.export({"cookie": "c"})["attributes"]
    assert out == {
        "region": {"value": "north", "source": "web", "time": T0, "rule": "most_recent"},
        "tier": {"value": "gold", "source": "crm", "time": T0 + 1, "rule": "source_priority"},
        "lang": {"value": "en", "source": "web", "time": T0, "rule": "most_frequent",
                 "counts": [{"value": "en", "count": 1, "source": "web", "time": T0}]},
    }
    eng.forget(row=row)
    assert eng.attributes_.get(row) == {} and eng.attributes(ids) == {}
    assert all((a[row] == eng.attributes_._fill[k]).all() for k, a in eng.attributes_.arrays_.items())
    eng.set_attributes(ids, {"tier": "gold"}, source="crm", time=T0 + 2)  # erasure sticks for loads too
    assert eng.attributes(ids) == {} and eng.profile_row(ids) == -1


def test_evicted_and_anonymous_rows_hold_no_attributes() -> None:
    eng = make_engine(profiles={"max_profiles": 3, "evict_fraction": 0.34})
    for j in range(6):
        eng.track(view({"cookie": f"c{j}"}, T0 + j, region=f"r{j}"))
    assert eng.evicted_ > 0
    live = {int(r) for r in np.flatnonzero(eng.identity.rows_["root"][: eng.identity.n_rows] >= 0)}
    for r in range(eng.identity.n_rows):
        assert (eng.attributes_.get(r) != {}) == (r in live)
    eng.track(view({"cookie": "null"}, T0 + 9, region="x"))  # a blocked value: the anonymous scratch row
    assert all(eng.attributes_.get(r) == {} for r in range(eng.identity.n_rows) if r not in live)


# ---------------------------------------------------------------- durability


def test_snapshot_and_log_replay_give_identical_attributes_and_decisions(tmp_path: Path) -> None:
    eng = make_engine()
    eng.durable(tmp_path / "d")
    for j in range(30):
        ids = {"cookie": f"c{j % 7}"} if j % 5 else {"cookie": f"c{j % 7}", "email": f"p{j % 3}@example.com"}
        eng.decide(view(ids, T0 + (j * 7919) % 50, channel=("web", "app")[j % 2], region=f"r{j % 4}",
                        lang=("en", "de", "fr")[j % 3], ltv=j, low=float(j % 6), last_order=T0 + j),
                   placement="home")
        if j % 9 == 0:
            eng.set_attributes({"cookie": f"c{j % 7}"}, {"tier": ("gold", "silver")[j % 2], "zip": "02139"},
                               source=("crm", "pos")[j % 2], time=T0 + j)
    eng.forget({"cookie": "c3"})
    eng.detach_log()
    reopened = Engine.open(tmp_path / "d", hash_key=KEY, flush="off")
    assert eng.attributes_.to_state()[1] == reopened.attributes_.to_state()[1]
    assert_same(engine_state(eng), engine_state(reopened))
    check_engine(eng, [("home", view({"cookie": f"c{j % 7}"}, T0 + 60 + j, region="z", lang="fr")) for j in range(20)]
                 + [(None, view({"cookie": "c1", "email": "p2@example.com"}, T0 + 99, ltv=1.5))])


def test_a_state_for_other_declarations_is_refused() -> None:
    a, b = make_engine(), make_engine({"region": {"type": "category"}})
    with pytest.raises(NotReadyError, match=full_match(
        "expected attribute state for {'region': ['category', 'most_recent', 0]}, got "
        + repr(a.attributes_.to_state()[1]["attributes"]) + " - at `attributes`"
    )):
        b.attributes_.load_state(a.attributes_.to_state())


# ---------------------------------------------------------------- CLI


def test_cli_profile_shows_attributes_with_provenance(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = make_engine()
    eng.durable(tmp_path / "d")
    eng.track(view({"email": "ada@example.com"}, T0, region="north"))
    eng.set_attributes({"email": "ada@example.com"}, {"ltv": 12.5}, source="crm", time=T0 + 1)
    eng.detach_log()
    monkeypatch.setenv("ATTRS_TEST_KEY", KEY)
    argv = ["profile", "--dir", str(tmp_path / "d"), "--id", "email=Ada@example.com", "--hash-key-env", "ATTRS_TEST_KEY"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["found"] and out["events"] == 2
    assert out["attributes"] == {
        "region": {"value": "north", "source": "web", "time": T0, "rule": "most_recent"},
        "ltv": {"value": 12.5, "source": "crm", "time": T0 + 1, "rule": "sum"},
    }
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "region" in text and "north" in text and "crm" in text
    assert main([*argv[:-4], "--id", "email=nobody@example.com", "--hash-key-env", "ATTRS_TEST_KEY", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"found": False, "erased": {"email": False}}
    assert main([*argv[:-4], "--id", "email", "--json"]) == 2
    assert capsys.readouterr().err == "error: --id expects TYPE=VALUE, got 'email'\n"
