"""The regional pulse: opinion events, aggregates by region x topic against a reference, the
interval, consent, the region at the time of the opinion, bounds, the CLI over a world."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from scipy import stats

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.cli import main
from decisioner.config import load_config_dict
from decisioner.errors import ConfigError, NotReadyError, SchemaError
from decisioner.schemas import Opinion, decode_event
from wording import Wrapped, full_match

T0 = 1_700_000_000_000
KEY = "4d" * 16


def engine(**pulse: Any) -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": KEY}, "attributes": {"region": {"type": "category"}},
        "pulse": {"enabled": True, **pulse},
    })
    return Engine(cfg, Catalog([{"id": "i0"}]), seed=1)


def opinion(who: str, t: int, topic: str, s: float, **kw: Any) -> dict[str, Any]:
    return {"type": "opinion", "time": t, "ids": {"cookie": who}, "topic": topic, "sentiment": s, **kw}


def test_an_opinion_needs_a_topic_and_a_sentiment_in_range() -> None:
    with pytest.raises(SchemaError, match=full_match("Expected a finite number in [-1, 1], got 1.5 - at `$.sentiment`")):
        Opinion(time=T0, ids={"cookie": "a"}, topic="prices", sentiment=1.5)
    with pytest.raises(SchemaError, match=full_match(Wrapped("Invalid event", at="$.sentiment"))):
        decode_event(opinion("a", T0, "prices", -1.01))
    with pytest.raises(SchemaError, match=full_match(Wrapped("Invalid event", at=None, mentions=("topic",)))):
        decode_event({"type": "opinion", "time": T0, "ids": {"cookie": "a"}, "sentiment": 0.1})
    assert decode_event(opinion("a", T0, "prices", -1)).sentiment == -1.0


def test_pulse_needs_a_declared_category_region() -> None:
    with pytest.raises(ConfigError, match=re.escape(
        "expected `pulse.region_attribute` to name a declared `category` attribute, got 'area' for `pulse`")):
        load_config_dict({"attributes": {"area": {"type": "number"}}, "pulse": {"enabled": True, "region_attribute": "area"}})


def test_the_cells_equal_a_reference_with_student_t_intervals(seed: int) -> None:
    e = engine(min_count=3, confidence=0.9)
    rng = np.random.default_rng(seed)
    truth: dict[tuple[str, str], list[float]] = {}
    for k in range(600):
        who = f"p{k % 90}"
        region = ("north", "south", "east")[k % 90 % 3] if k % 90 < 80 else None  # ten people without one
        topic = ("prices", "delivery", "quality", "service")[int(rng.integers(0, 4))]
        s = float(np.clip(rng.normal(0.3 if region == "north" else -0.2, 0.4), -1, 1))
        ev = opinion(who, T0 + k, topic, s)
        if region is not None:
            ev["attrs"] = {"region": region}
        e.track(ev)
        truth.setdefault((region or "", topic), []).append(s)
    cells = e.pulse()
    assert [(c["region"], c["topic"]) for c in cells] == sorted(truth)
    for c in cells:
        xs = np.array(truth[(c["region"], c["topic"])])
        assert c["count"] == xs.shape[0] >= 3
        assert c["mean"] == pytest.approx(xs.mean(), abs=1e-12)
        lo, hi = stats.t.interval(0.9, xs.shape[0] - 1, loc=xs.mean(), scale=stats.sem(xs))
        assert (c["low"], c["high"]) == (pytest.approx(max(-1, lo), abs=1e-9), pytest.approx(min(1, hi), abs=1e-9))
    assert e.pulse_.opinions_ == 600


def test_opinions_need_analytics_consent_on_their_channel() -> None:
    e = engine(min_count=1)
    e.track(opinion("a", T0, "prices", 0.5, channel="email", consent={"analytics.email": False}))
    e.track(opinion("a", T0 + 1, "prices", 0.1, channel="survey"))  # survey counts as web: allowed
    e.track(opinion("b", T0 + 2, "prices", -0.5, consent={"analytics": False}))
    assert [(c["count"], c["mean"]) for c in e.pulse()] == [(1, 0.1)]


def test_an_opinion_stays_in_the_region_it_was_given_from_and_erasure_keeps_the_sums() -> None:
    e = engine(min_count=1)
    e.track(opinion("a", T0, "prices", 0.5, attrs={"region": "north"}))
    e.track({"type": "view", "time": T0 + 1, "ids": {"cookie": "a"}, "attrs": {"region": "south"}})
    e.track(opinion("a", T0 + 2, "prices", -0.5))
    before = [(c["region"], c["count"], c["mean"]) for c in e.pulse()]
    assert before == [("north", 1, 0.5), ("south", 1, -0.5)]
    e.forget({"cookie": "a"})  # anonymous sums with no person id: unchanged
    assert [(c["region"], c["count"], c["mean"]) for c in e.pulse()] == before


def test_small_cells_hide_their_mean_and_topics_past_the_bound_are_dropped() -> None:
    e = engine(min_count=2, max_topics=2)
    for j, topic in enumerate(("a", "a", "b", "c", "c")):
        e.track(opinion(f"p{j}", T0 + j, topic, 0.2))
    cells = {c["topic"]: c for c in e.pulse()}
    assert cells["a"] == {"region": "", "topic": "a", "count": 2, "mean": pytest.approx(0.2), "low": pytest.approx(0.2),
                          "high": pytest.approx(0.2)}
    assert cells["b"]["mean"] is None and cells["b"]["low"] is None and set(cells) == {"a", "b"}
    assert e.pulse_.dropped_ == 2


def test_pulse_off_is_an_error() -> None:
    off = Engine(load_config_dict({"identity": {"hash_key": KEY}}), Catalog([{"id": "i0"}]))
    off.track(opinion("a", T0, "prices", 0.5))  # accepted, not counted
    with pytest.raises(NotReadyError, match=full_match(
        "Expected the regional pulse on (`[pulse] enabled = true`), got it off - at `pulse`")):
        off.pulse()


def test_the_cli_reports_tiers_and_the_pulse_of_a_world(small_world: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tiers", "--world", small_world, "--json"]) == 0
    tiers = json.loads(capsys.readouterr().out)
    assert [t["tier"] for t in tiers["tiers"]] == ["engaged", "indifferent", "disengaged"]
    assert sum(t["people"] for t in tiers["tiers"]) == tiers["people"] > 0
    assert all(t["people"] > 0 for t in tiers["tiers"])
    engaged = tiers["tiers"][0]
    assert engaged["value_index"] > 0 > tiers["tiers"][2]["value_index"]  # the engaged spend more than average
    assert main(["pulse", "--world", small_world, "--json"]) == 0
    pulse = json.loads(capsys.readouterr().out)
    with open(f"{small_world}/events.jsonl", "rb") as f:
        n_opinions = sum(b'"type":"opinion"' in line for line in f)
    assert sum(c["count"] for c in pulse["cells"]) == n_opinions > 0  # every synthetic person allows analytics
    assert {c["region"] for c in pulse["cells"]} >= {"northeast", "pacific"}
    assert main(["tiers", "--world", small_world]) == 0
    assert "vs average" in capsys.readouterr().out
