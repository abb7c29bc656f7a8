"""The segment language: parsing (hostile input too), compiling against the stores, and the
compiled predicate against the slow reference on random profiles and random expressions."""

from __future__ import annotations

import re

import numpy as np
import pytest

import reference as ref
from decisioner.activity import ActivityStore
from decisioner.attributes import AttributeStore
from decisioner.catalog import Catalog
from decisioner.config import ActivitySpec, AttributeSpec, ConsentSpec, ProfileSpec, load_config_dict
from decisioner.consent import CHANNELS, PURPOSES
from decisioner.consent.store import ConsentStore
from decisioner.errors import ConfigError, SchemaError
from decisioner.profiles import ProfileStore, half_lives
from decisioner.segments import parser as P
from decisioner.segments.compile import Sources, compile_segment

DAY = 86_400_000
T0 = 1_700_000_000_000
REGIONS = ["north", "south", "east", "west"]
ZIPS = ["10001", "10025", "10101", "20002", "94110"]
CATS = ["running", "tennis", "golf"]


def _catalog() -> Catalog:
    return Catalog([{"id": f"i{j}", "category": CATS[j % 3], "brand": f"b{j % 2}"} for j in range(6)])


def _stores(n: int, seed: int) -> tuple[Sources, list[ref.SegmentProfileRef], dict[str, object]]:
    """``n`` random profiles in real stores, and the same profiles as plain Python."""
    rng = np.random.default_rng(seed)
    cat = _catalog()
    hl = half_lives(ProfileSpec(half_life_days=3.0, facet_half_life_days={"brand": 1.0}), cat)
    attrs = AttributeStore({"region": AttributeSpec(type="category"), "zip": AttributeSpec(type="category"),
                            "ltv": AttributeSpec(type="number")}, capacity=n)
    act = ActivityStore(ActivitySpec(types=("purchase", "email_open"), buckets=8), capacity=n)
    consent = ConsentStore(ConsentSpec(), capacity=n)
    prof = ProfileStore(slots=4, capacity=n)
    for s in (attrs, act, consent, prof):
        s.ensure(n)
    consent.clear(np.arange(n))
    profiles = []
    for r in range(n):
        values: dict[str, object] = {}
        if rng.random() < 0.8:
            values["region"] = REGIONS[rng.integers(4)]
        if rng.random() < 0.8:
            values["zip"] = ZIPS[rng.integers(5)]
        if rng.random() < 0.8:
            values["ltv"] = float(rng.integers(0, 8))
        if values:
            attrs.set(r, attrs.check(values), source="crm", time=T0)
        bits = int(rng.integers(0, 1 << 35))
        if rng.random() < 0.3:
            bits = (1 << 35) - 1
        consent.allow_[r] = np.uint64(bits)
        events = []
        for _ in range(int(rng.integers(0, 6))):
            ty = ["purchase", "email_open", "view"][rng.integers(3)]
            t = T0 - int(rng.integers(0, 20 * DAY))
            act.record(r, ty, t)
            if ty in act.type_index:
                events.append((ty, t))
        for _ in range(int(rng.integers(0, 5))):
            fv = np.array([rng.integers(cat.n_fv)], np.int32)
            prof.update(r, fv, np.array([float(rng.random() * 3)]), T0 - int(rng.integers(0, 5 * DAY)), hl)
        profiles.append(ref.SegmentProfileRef(
            {k: values.get(k) for k in ("region", "zip", "ltv")}, bits, events,
            prof.fid_[r].tolist(), prof.score_[r].tolist(), int(prof.t_[r]),
        ))
    segs = {"vip": 'ltv >= 5 and days_since("purchase") <= 10', "north": 'region == "north" or segment("vip")'}
    src = Sources(attrs, act, consent, prof, cat, hl, segs)
    ctx: dict[str, object] = {
        "segments": segs, "purposes": list(PURPOSES), "channels": list(CHANNELS), "n_channels": len(CHANNELS),
        "bucket_days": 1, "buckets": 8, "fv_names": cat.fv_names, "facet_names": cat.facet_names,
        "fv_facet": cat.fv_facet.tolist(), "half_lives": hl.tolist(),
    }
    return src, profiles, ctx


def _leaf(rng: np.random.Generator) -> str:
    k = int(rng.integers(13))
    r, z = REGIONS[rng.integers(4)], ZIPS[rng.integers(5)]
    x = int(rng.integers(0, 9))
    return [
        f'region == "{r}"', f'region != "{r}"', f'region in ["{r}", "{REGIONS[rng.integers(4)]}"]',
        f'zip startswith "{z[: rng.integers(1, 4)]}"', f"ltv > {x}", f"ltv <= {x - 0.5}", f"ltv in [{x}, {x + 1}]",
        f'days_since("purchase") <= {rng.integers(0, 25)}', f'count("email_open", days={rng.integers(1, 9)}) >= {x % 3}',
        f'affinity("category", "{CATS[rng.integers(3)]}") >= {rng.choice([0.0, 0.25, 0.5, 0.9])}',
        'consent("marketing")', f'consent("{PURPOSES[rng.integers(5)]}", "{CHANNELS[rng.integers(7)]}")',
        'segment("north")',
    ][k]


def _expr(rng: np.random.Generator, depth: int = 0) -> str:
    if depth >= 3 or rng.random() < 0.35:
        return _leaf(rng)
    k = int(rng.integers(3))
    if k == 2:
        return f"not ({_expr(rng, depth + 1)})"
    return f"({_expr(rng, depth + 1)}) {['and', 'or'][k]} ({_expr(rng, depth + 1)})"


def test_compiled_segments_equal_the_reference_on_random_profiles_and_expressions(seed: int) -> None:
    src, profiles, ctx = _stores(80, seed)
    rng = np.random.default_rng(seed + 1)
    n = len(profiles)
    mixed = 0
    for _ in range(150):
        expr = _expr(rng)
        now = T0 + int(rng.integers(-2 * DAY, 3 * DAY))
        seg = compile_segment(expr, src)
        bulk = seg.evaluate_many(now, n).tolist()
        want = [int(ref.evaluate_segment_ref(P.parse(expr), p, now=now, ctx=ctx)) for p in profiles]
        assert bulk == want, expr
        one = [int(seg.test(r, now)) for r in range(n)]  # the per-decision path agrees with bulk
        assert one == bulk, expr
        mixed += 0 < sum(bulk) < n
    assert mixed >= 75  # most expressions split the profiles: the comparison is not between empty sets


def test_a_vocabulary_that_grows_after_compiling_is_seen() -> None:
    src, _, _ = _stores(4, 1)
    seg = compile_segment('region == "arctic" or zip startswith "999"', src)
    assert not seg.evaluate_many(T0, 4).any()
    src.attributes.set(2, src.attributes.check({"region": "arctic"}), source="crm", time=T0 + 1)
    src.attributes.set(3, src.attributes.check({"zip": "99950"}), source="crm", time=T0 + 1)
    assert seg.evaluate_many(T0, 4).tolist() == [0, 0, 1, 1] and seg.test(2, T0) and seg.test(3, T0)


# ---------------------------------------------------------------------------------------- errors

def _msg(expected: str, got: str, pos: int) -> str:
    return re.escape(f"Expected {expected}, got {got} - at position {pos} of the segment")


@pytest.mark.parametrize(("text", "message"), [
    ("ltv >= ", _msg("a value after '>='", "end of input", 7)),
    ("ltv = 3", _msg("'==' to compare", "'='", 4)),
    ("(ltv > 3", _msg("')' to close the '(' at position 0", "end of input", 8)),
    ('region in ["a", "b"', _msg("']' to close the list", "end of input", 19)),
    ("ltv > 3 ltv", _msg("'and', 'or' or end of input", "'ltv'", 8)),
    ("a.b == 1", _msg("an operator or a parenthesis (there is no attribute access)", "'.'", 1)),
    ("x.__class__", _msg("an operator or a parenthesis (there is no attribute access)", "'.'", 1)),
    ("__import__('os')", _msg("a name without '__' (no dunder names)", "'__import__'", 0)),
    ("ltv > 1e999", _msg("a finite number", "'1e999'", 6)),
    ("ltv > " + "9" * 40, _msg("a number of at most 32 characters", "40 characters", 6)),
    ('region == "' + "x" * 300 + '"', _msg("a string of at most 256 characters", "a longer one", 10)),
    ("(" * 40 + "ltv > 1" + ")" * 40, _msg("nesting at most 32 deep", "deeper nesting", 32)),
    ("not " * 40 + "ltv > 1", _msg("nesting at most 32 deep", "deeper nesting", 128)),
    ("ltv > 1 and $", _msg("a name, a value, an operator or a parenthesis", "'$'", 12)),
    ("", _msg("a segment", "end of input", 0)),
    ("region == 'a\\n'", _msg("an escape \\\\, \\\" or \\'", "'\\\\n'", 12)),
])
def test_malformed_and_hostile_expressions_name_the_position(text: str, message: str) -> None:
    with pytest.raises(SchemaError, match=f"^{message}$"):
        P.parse(text)


def test_ten_thousand_deep_nesting_and_a_megabyte_are_refused_before_parsing() -> None:
    for text in ("(" * 10_000 + "x" + ")" * 10_000, "not " * 2000 + "x", 'region == "' + "x" * 1_000_000 + '"'):
        with pytest.raises(SchemaError, match=r"^Expected a segment of at most 4096 characters, got \d+ - at `segment`$"):
            P.parse(text)
    deep = "(" * 2000 + "x" + ")" * 2000  # under the length bound: the depth counter stops it
    with pytest.raises(SchemaError, match=_msg("nesting at most 32 deep", "deeper nesting", 32)):
        P.parse(deep)
    with pytest.raises(SchemaError, match=r"^Expected a segment expression \(a string\), got bytes - at `segment`$"):
        P.parse(b"ltv > 1")


@pytest.mark.parametrize(("text", "message"), [
    ("system('ls')", _msg("a function in ['affinity', 'consent', 'days_since', 'count', 'segment']", "'system'()", 0)),
    ("open('x') == 1", _msg("a function in ['affinity', 'consent', 'days_since', 'count', 'segment']", "'open'()", 0)),
    ('tier == "engaged"', _msg("a known column", "unknown function/column tier: no engagement tiers configured", 0)),
    ("colour == 'red'", _msg("a declared attribute in ['ltv', 'region', 'zip'] or a function in "
                             "['affinity', 'consent', 'days_since', 'count', 'segment']", "'colour'", 0)),
    ("ltv == 'x'", _msg("a number to compare ltv with", "a string", 4)),
    ("region > 'a'", _msg("'==', '!=', 'in' or 'startswith' and a string for region", "'>' 'a'", 7)),
    ("ltv", _msg("a comparison after ltv (it is a number column)", "none", 0)),
    ("consent('marketing') == 1", _msg("consent() on its own (it is true or false)", "'=='", 21)),
    ("consent('love')", _msg(f"a purpose in {list(PURPOSES)!r}", "'love'", 0)),
    ('days_since("return") < 3', _msg("a counted event type in ['purchase', 'email_open'] (`activity.types`)",
                                      "'return'", 0)),
    ('count("purchase") > 1', _msg("count(type, days=N) with 0 < N <= 8 (`activity` buckets)", "no days", 0)),
    ('count("purchase", days=9) > 1', _msg("count(type, days=N) with 0 < N <= 8 (`activity` buckets)", "days=9", 0)),
    ('affinity("category", "chess") > 0', _msg("a value of facet 'category' in the catalog", "'chess'", 0)),
    ('segment("gold")', _msg("a named segment in ['north', 'vip']", "'gold'", 0)),
])
def test_names_resolve_at_compile_time_with_clear_errors(text: str, message: str) -> None:
    src, _, _ = _stores(2, 0)
    with pytest.raises(SchemaError, match=f"^{message}$"):
        compile_segment(text, src)


def test_named_segments_that_refer_to_themselves_are_refused() -> None:
    src, _, _ = _stores(2, 0)
    src.segments.update({"a": 'segment("b")', "b": 'ltv > 1 and segment("a")'})
    with pytest.raises(SchemaError, match="^" + _msg("segments that do not refer to themselves",
                                                    "the cycle a -> b -> a", 12) + re.escape(" (in segment 'b')")):
        compile_segment('segment("a")', src)


def test_config_checks_segment_syntax_and_names() -> None:
    base = {"identity": {"hash_key": "ab" * 16}}
    with pytest.raises(ConfigError, match=re.escape("Expected a value after '>', got end of input - at position 5 "
                                                    "of the segment `segments.vip`")):
        load_config_dict({**base, "segments": {"vip": "ltv >"}})
    with pytest.raises(ConfigError, match=re.escape("expected a segment in [], got 'vip' (placement 'home')")):
        load_config_dict({**base, "placements": [{"name": "home", "kind": "recommendation", "segment": "vip"}]})
    with pytest.raises(ConfigError, match=re.escape("expected no `rules` on a recommendation placement")):
        load_config_dict({**base, "segments": {"vip": "x > 1"}, "placements": [
            {"name": "home", "kind": "recommendation", "rules": [{"segment": "vip", "experience": "a"}]}]})
