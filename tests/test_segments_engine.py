"""Segments in decisions (targeting, rules, audiences, reasons) and audiences in bulk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from decisioner.catalog import Catalog
from decisioner.cli import main
from decisioner.config import load_config_dict
from decisioner.engine import Engine
from decisioner.errors import SchemaError

DAY = 86_400_000
T0 = 1_700_000_000_000


def _engine() -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": "ab" * 16},
        "attributes": {"region": {"type": "category"}, "zip": {"type": "category"},
                       "ltv": {"type": "number", "rule": "sum"}},
        "activity": {"types": ["purchase", "email_open", "email_click", "view"]},
        "segments": {"vip": "ltv > 5", "north": 'region == "north"', "buyer": 'days_since("purchase") <= 30'},
        "placements": [
            {"name": "home", "kind": "recommendation", "slots": 2, "segment": "buyer"},
            {"name": "offer", "kind": "campaign", "default": "plain",
             "experiences": [{"id": "gold"}, {"id": "silver"}, {"id": "plain"}],
             "rules": [{"segment": "vip", "experience": "gold"}]},
        ],
        "experiments": [{"name": "e", "placement": "offer", "variants": [{"name": "a"}, {"name": "b"}],
                         "audience": "north"}],
    })
    cat = Catalog([{"id": f"i{j}", "category": ["running", "tennis", "golf"][j % 3]} for j in range(6)])
    return Engine(cfg, cat, seed=3)


def _person(eng: Engine, k: int, *, region: str, ltv: float, purchase: bool) -> None:
    eng.set_attributes({"cookie": f"p{k}"}, {"region": region, "ltv": ltv, "zip": f"{100 + k % 3}{k:02d}"},
                       source="crm", time=T0)
    eng.track({"type": "purchase" if purchase else "view", "time": T0 + k, "ids": {"cookie": f"p{k}"},
               "item": f"i{k % 6}"})


def test_placement_segment_gives_outsiders_the_fallback_and_names_the_segment_for_members() -> None:
    eng = _engine()
    _person(eng, 0, region="north", ltv=1.0, purchase=True)
    _person(eng, 1, region="south", ltv=1.0, purchase=False)
    ev = {"type": "view", "time": T0 + DAY, "item": "i1"}
    member = eng.decide({**ev, "ids": {"cookie": "p0"}}, placement="home")
    outsider = eng.decide({**ev, "ids": {"cookie": "p1"}}, placement="home")
    assert ("segment", "buyer") in [(r.kind, r.detail) for r in member.reasons]
    assert [(r.kind, r.detail) for r in outsider.reasons] == [("segment", "not in buyer: fallback")]
    assert [s.propensity for s in outsider.slots] == [1.0, 1.0] and outsider.candidates == 0


def test_rules_come_before_the_policy_and_their_outcomes_reward_no_policy() -> None:
    eng = _engine()
    _person(eng, 0, region="north", ltv=9.0, purchase=True)
    bandit = eng.placement("offer").bandit
    assert bandit is not None
    before = bandit.to_state()
    d = eng.decide({"type": "view", "time": T0 + DAY, "ids": {"cookie": "p0"}}, placement="offer")
    assert [(s.content, s.propensity) for s in d.slots] == [("gold", 1.0)]
    assert [(r.kind, r.detail) for r in d.reasons] == [("segment", "vip: gold")] and d.variant is None
    eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0 + DAY + 1})
    after = bandit.to_state()
    assert all(np.array_equal(before[0][k], after[0][k]) for k in before[0])


def test_only_audience_members_are_enrolled_in_the_experiment() -> None:
    eng = _engine()
    for k in range(40):
        _person(eng, k, region="north" if k % 2 else "south", ltv=1.0, purchase=False)
    for k in range(40):
        d = eng.decide({"type": "view", "time": T0 + DAY, "ids": {"cookie": f"p{k}"}}, placement="offer")
        kinds = [(r.kind, r.detail) for r in d.reasons]
        if k % 2:
            assert d.variant in ("a", "b") and ("segment", "north") in kinds
        else:
            assert d.variant is None and not any(r.kind == "segment" for r in d.reasons)


def test_audience_breakdowns_sum_to_the_size_and_members_are_person_ids() -> None:
    eng = _engine()
    for k in range(30):
        _person(eng, k, region=["north", "south", "east"][k % 3], ltv=float(k % 10), purchase=k % 4 == 0)
    now = T0 + DAY
    out = eng.audience('ltv >= 3 and days_since("purchase") <= 30', now=now, by="region", by2="zip3")
    assert out["size"] == sum(1 for k in range(30) if k % 10 >= 3 and k % 4 == 0) > 0
    assert sum(out["breakdown"].values()) == out["size"] == sum(sum(v.values()) for v in out["crosstab"].values())
    assert set(out["crosstab"]["north"]) <= {"100", "101", "102"} and out["profiles"] == 30
    top = eng.audience("buyer", now=now, by="interest:category")
    assert sum(top["breakdown"].values()) == top["size"] == eng.audience_members("buyer", now=now).shape[0]
    people = {eng.person_id({"cookie": f"p{k}"}) for k in range(30) if k % 4 == 0}
    assert set(eng.audience_members('days_since("purchase") <= 30', now=now).tolist()) == people
    with pytest.raises(SchemaError, match=re.escape("Expected a breakdown the engine has, got unknown column tier: "
                                                    "no engagement tiers configured - at `by`")):
        eng.audience("ltv > 1", now=now, by="tier")
    with pytest.raises(SchemaError, match=re.escape("got unknown function/column tier: no engagement tiers "
                                                    "configured - at position 0 of the segment")):
        eng.audience('tier == "engaged"', now=now)


@pytest.mark.slow
def test_cli_audience_on_a_generated_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--people", "300", "--items", "60", "--out", str(tmp_path / "w"), "--json"]) == 0
    capsys.readouterr()
    seg = 'days_since("view") <= 60 or count("purchase", days=30) >= 1'
    assert main(["audience", "--world", str(tmp_path / "w"), "--segment", seg, "--by", "interest", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"segment", "size", "profiles", "breakdown", "seconds"} and out["segment"] == seg
    assert 0 < out["size"] <= out["profiles"] and sum(out["breakdown"].values()) == out["size"]
    assert main(["audience", "--world", str(tmp_path / "w"), "--segment", seg, "--by", "interest", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "value,count" and sum(int(x.rsplit(",", 1)[1]) for x in lines[1:]) == out["size"]
    assert main(["audience", "--world", str(tmp_path / "w"), "--segment", "x.y > 1"]) == 1
    assert capsys.readouterr().err.startswith("error: Expected an operator or a parenthesis (there is no attribute")
