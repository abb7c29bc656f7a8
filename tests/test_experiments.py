"""Experiments: bucketing test vectors, splits, ramps that never reshuffle, namespaces, the
global holdout, sticky assignment across identity merges, a bandit inside an experiment arm,
exposure logging, and the variant in decisions and the decision log."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import xxhash

from decisioner import Engine
from decisioner.allocation.experiments import HOLDOUT, NOT_ENROLLED, ExperimentRuntime, ExposureLog, bucket
from decisioner.catalog import Catalog
from decisioner.config import ExperimentSpec, HoldoutSpec, VariantSpec, load_config_dict
from decisioner.errors import ConfigError
from decisioner.evaluation.engine_log import engine_report

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
T0 = 1_700_000_000_000

#: published test vectors: (salt, unit) -> xxh3_64(key || salt || 0x1f || unit), position
VECTORS = [
    ("exp-hero", "user-1", 9964212156199127641, 0.5401610233428783),
    ("exp-hero", "user-2", 1073831714158625677, 0.05821253386873071),
    ("checkout", "0000000000000001", 16016085091216056692, 0.8682337125304573),
    ("global-holdout", "ada@example.com", 11521273216251512446, 0.6245694725429471),
    ("é-salt", "ünït", 11854401160264552189, 0.6426283745736755),
]


@pytest.mark.parametrize(("salt", "unit", "h", "pos"), VECTORS)
def test_bucketing_test_vectors(salt: str, unit: str, h: int, pos: float) -> None:
    raw = xxhash.xxh3_64_intdigest(KEY + salt.encode("utf-8") + b"\x1f" + unit.encode("utf-8"))
    assert raw == h
    assert bucket(KEY, salt, unit) == pos == (h >> 11) * 2.0**-53


def spec(name: str = "e", placement: str = "hero", weights: tuple[float, ...] = (1.0, 1.0), **kw: Any) -> ExperimentSpec:
    return ExperimentSpec(
        name=name, placement=placement,
        variants=[VariantSpec(name=f"v{i}", weight=w) for i, w in enumerate(weights)], **kw,
    )


def assign_all(rt: ExperimentRuntime, n: int, placement: int = 0) -> np.ndarray:
    return np.array([rt.assign(placement, r, f"unit-{r}") for r in range(n)])


def test_split_follows_the_weights() -> None:
    """100k units on a 20/30/50 split: each share within 4 binomial SEs of its weight."""
    rt = ExperimentRuntime(KEY, [spec(weights=(2.0, 3.0, 5.0))], None, ["hero"])
    codes = assign_all(rt, 100_000)
    for v, w in enumerate((0.2, 0.3, 0.5)):
        assert abs((codes == v).mean() - w) <= 4 * np.sqrt(w * (1 - w) / 100_000)


def test_ramps_and_new_weights_never_reshuffle_assigned_units() -> None:
    n = 20_000
    rt1 = ExperimentRuntime(KEY, [spec(traffic=0.2)], None, ["hero"])
    first = assign_all(rt1, n)
    assert abs((first != NOT_ENROLLED).mean() - 0.2) < 0.015
    # ramp to 60% and change the split to 10/90: assigned units keep their variant
    rt2 = ExperimentRuntime(KEY, [spec(traffic=0.6, weights=(1.0, 9.0))], None, ["hero"])
    rt2.adopt(rt1)
    second = assign_all(rt2, n)
    kept = first != NOT_ENROLLED
    assert (second[kept] == first[kept]).all()
    assert abs((second != NOT_ENROLLED).mean() - 0.6) < 0.015
    new = (~kept) & (second != NOT_ENROLLED)
    assert abs((second[new] == 1).mean() - 0.9) < 0.02  # new units follow the new weights
    # ramping down never drops units already assigned
    rt3 = ExperimentRuntime(KEY, [spec(traffic=0.1)], None, ["hero"])
    rt3.adopt(rt2)
    third = assign_all(rt3, n)
    assert (third[second != NOT_ENROLLED] == second[second != NOT_ENROLLED]).all()


def test_namespaces_make_experiments_mutually_exclusive() -> None:
    exps = [
        spec("a", "hero", namespace="ns", segment=(0.0, 0.5)),
        spec("b", "home", namespace="ns", segment=(0.5, 1.0)),
        spec("c", "side"),  # its own namespace: overlaps both freely
    ]
    rt = ExperimentRuntime(KEY, exps, None, ["hero", "home", "side"])
    a, b, c = (assign_all(rt, 20_000, p) for p in range(3))
    in_a, in_b, in_c = a != NOT_ENROLLED, b != NOT_ENROLLED, c != NOT_ENROLLED
    assert not (in_a & in_b).any()
    assert abs(in_a.mean() - 0.5) < 0.02 and abs(in_b.mean() - 0.5) < 0.02
    assert in_c.all() and (in_a & in_c).any() and (in_b & in_c).any()


def test_global_holdout() -> None:
    rt = ExperimentRuntime(KEY, [spec()], HoldoutSpec(fraction=0.1), ["hero", "home"])
    codes = assign_all(rt, 20_000)
    assert abs((codes == HOLDOUT).mean() - 0.1) < 0.01
    # held out everywhere, consistently: also on a placement without experiment
    other = assign_all(rt, 20_000, 1)
    assert ((other == HOLDOUT) == (codes == HOLDOUT)).all()
    assert set(np.unique(other).tolist()) == {HOLDOUT, NOT_ENROLLED}


@pytest.mark.parametrize(("kw", "msg"), [
    ({"experiments": [{"name": "a", "placement": "nope", "variants": [{"name": "x"}]}]},
     "expected a configured placement in ['hero', 'home'], got 'nope' (experiment 'a')"),
    ({"experiments": [{"name": "a", "placement": "hero", "variants": [{"name": "x"}]},
                      {"name": "b", "placement": "hero", "variants": [{"name": "x"}]}]},
     "expected at most one experiment per placement, got 'a' and 'b' on 'hero'"),
    ({"experiments": [{"name": "a", "placement": "hero", "namespace": "n", "segment": [0.0, 0.6], "variants": [{"name": "x"}]},
                      {"name": "b", "placement": "home", "namespace": "n", "segment": [0.5, 1.0], "variants": [{"name": "x"}]}]},
     "expected disjoint segments in namespace 'n', got [0.5, 1.0] ('b') overlapping [0.0, 0.6] ('a')"),
    ({"experiments": [{"name": "a", "placement": "home", "variants": [{"name": "x", "policy": {"kind": "thompson"}}]}]},
     "expected a ranking policy for a recommendation placement, got `thompson` (experiment 'a', variant 'x')"),
    ({"experiments": [{"name": "a", "placement": "hero", "variants": [{"name": "x"}, {"name": "x"}]}]},
     "expected unique variant names, got ['x', 'x'] (experiment 'a')"),
    ({"experiments": [{"name": "a", "placement": "hero", "traffic": 1.5, "variants": [{"name": "x"}]}]},
     "`traffic` must be in [0, 1], got 1.5 (experiment 'a')"),
    ({"holdout": {"fraction": 1.0}}, "`fraction` must be in [0, 1), got 1.0 - at `holdout`"),
])
def test_experiment_config_errors(kw: dict[str, Any], msg: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(msg)):
        load_config_dict({"identity": {"hash_key": KEY.hex()}, "placements": PLACEMENTS, **kw})


# ---------------------------------------------------------------- in the engine

PLACEMENTS: list[dict[str, Any]] = [
    {"name": "hero", "kind": "campaign", "default": "b",
     "experiences": [{"id": "a"}, {"id": "b"}, {"id": "c"}]},
    {"name": "home", "kind": "recommendation", "slots": 2},
]
ITEMS = [{"id": f"i{j}", "category": f"c{j % 3}"} for j in range(12)]


def engine(**config: Any) -> Engine:
    cfg = load_config_dict({"identity": {"hash_key": KEY.hex()}, "placements": PLACEMENTS, **config})
    return Engine(cfg, Catalog(ITEMS, cfg.catalog), seed=3)


def view(who: str, t: int) -> dict[str, Any]:
    return {"type": "view", "time": T0 + t, "ids": {"cookie": who}, "item": "i0"}


BANDIT_EXPERIMENT = {
    "name": "hero-test", "placement": "hero",
    "variants": [{"name": "control", "policy": {"kind": "random"}}, {"name": "bandit", "policy": {"kind": "thompson"}}],
}


def test_bandit_inside_an_experiment_arm_and_logging() -> None:
    """Control gets uniform random experiences, treatment a Thompson sampler that learns from
    its own outcomes only; the variant is in the decision, its reasons, the decision log and
    the exposure log."""
    eng = engine(experiments=[BANDIT_EXPERIMENT])
    rates = {"a": 0.05, "b": 0.1, "c": 0.4}
    rng = np.random.default_rng(1)
    seen: dict[str, set[str]] = {"control": set(), "bandit": set()}
    for t in range(1500):
        d = eng.decide(view(f"p{t % 400}", t), placement="hero")
        assert d.variant in ("control", "bandit")
        assert d.policy == ("random" if d.variant == "control" else "thompson")
        assert any(r.kind == "experiment" and r.detail == f"hero-test:{d.variant}" for r in d.reasons)
        seen[d.variant].add(d.slots[0].content)
        if rng.random() < rates[d.slots[0].content]:
            eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0 + t + 1})
    log = eng.decision_log
    variants = log.column("variant")
    assert set(np.unique(variants).tolist()) == {0, 1} and (log.column("experiment") == 0).all()
    assert len(eng.experiments_.exposures) == 1500
    assert eng.experiments_.exposures.column("variant").tolist() == variants.tolist()
    bandit = eng.placement("hero").variants[1].bandit  # type: ignore[index]
    assert bandit is not None and bandit.counts.sum() == (variants == 1).sum()
    assert int(np.argmax(bandit.means())) == 2
    # the bandit exploits; control stays uniform, so the bandit's variant earns more
    rep = engine_report(eng, "hero-test")
    names = [v.name for v in rep.variants]
    assert names == ["control", "bandit"] and sum(v.units for v in rep.variants) == 400
    assert rep.variants[1].value_per_unit > rep.variants[0].value_per_unit
    prop = log.column("propensity")
    assert np.allclose(prop[variants == 0], 1 / 3)


def test_holdout_gets_default_content() -> None:
    eng = engine(experiments=[BANDIT_EXPERIMENT], holdout={"fraction": 0.2})
    held = 0
    for t in range(300):
        d = eng.decide(view(f"q{t}", t), placement="hero")
        r = eng.decide(view(f"q{t}", t), placement="home")
        if d.variant == "holdout":
            held += 1
            assert d.slots[0].content == "b" and d.slots[0].propensity == 1.0 and d.policy == "holdout"
            assert r.variant == "holdout" and r.policy == "holdout" and all(s.propensity == 1.0 for s in r.slots)
        else:
            assert r.variant is None
    assert 30 <= held <= 90
    log = eng.decision_log
    assert ((log.column("variant") == HOLDOUT) & (log.column("slot") == 0)).sum() == 2 * held


def test_assignment_is_sticky_across_identity_merges() -> None:
    """Anonymous cookies exposed to the experiment, then one login links two of them: the
    surviving profile keeps its own variant, and a profile never exposed inherits the variant
    of the one merged into it."""
    eng = engine(experiments=[{"name": "e", "placement": "hero", "variants": [{"name": "x"}, {"name": "y"}]}])
    variant = {}
    for i in range(40):
        variant[f"c{i}"] = eng.decide(view(f"c{i}", i), placement="hero").variant
    a, b = next((f"c{i}", f"c{j}") for i in range(40) for j in range(i + 1, 40) if variant[f"c{i}"] != variant[f"c{j}"])
    row_a, row_b = eng.profile_row({"cookie": a}), eng.profile_row({"cookie": b})
    eng.track({"type": "identify", "time": T0 + 100, "ids": {"cookie": a, "email": "ada@x.io"}})
    eng.track({"type": "identify", "time": T0 + 101, "ids": {"cookie": b, "email": "ada@x.io"}})
    row = eng.profile_row({"cookie": b})
    assert row == eng.profile_row({"cookie": a}) and row in (row_a, row_b)
    survivor_variant = variant[a] if row == row_a else variant[b]
    for t in range(5):
        assert eng.decide(view(a, 200 + t), placement="hero").variant == survivor_variant
        assert eng.decide(view(b, 300 + t), placement="hero").variant == survivor_variant
    # a profile never exposed inherits from the one merged into it
    eng.track(view("fresh", 400))
    eng.track({"type": "identify", "time": T0 + 401, "ids": {"cookie": "fresh", "user_id": "u1"}})
    for k in range(3):
        eng.track({"type": "view", "time": T0 + 402 + k, "ids": {"user_id": "u1"}, "item": "i1"})
    eng.track({"type": "identify", "time": T0 + 410, "ids": {"cookie": "c0", "user_id": "u1"}})
    assert eng.decide(view("fresh", 500), placement="hero").variant == variant["c0"]


def test_exposures_are_bounded_and_keep_the_newest() -> None:
    log = ExposureLog(capacity=2, max_rows=8)
    for s in range(21):
        log.append(s, 1_700_000_000_000 + s, 0, s % 2, s)
    assert 6 <= len(log) <= 8 and log._cols["seq"].shape[0] == 8  # never allocated past max_rows
    assert log.column("seq").tolist() == list(range(21 - len(log), 21)) and log.dropped_ == 21 - len(log)
    copy = ExposureLog(max_rows=8)
    copy.load_arrays(log.to_arrays())
    assert copy.column("seq").tolist() == log.column("seq").tolist() and copy.dropped_ == log.dropped_
    for lg in (log, copy):
        lg.append(21, 0, 0, 0, 21)
    assert copy.column("seq").tolist() == log.column("seq").tolist()
