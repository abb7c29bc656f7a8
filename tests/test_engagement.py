"""Engagement tiers: the spec, the decayed inputs by event time, tiers at a time, merges,
erasure, eviction, consent, batch loads, the tier report and its state."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import EngagementSpec, TierSpec, load_config_dict
from decisioner.engagement import NO_TIER, EngagementStore
from decisioner.errors import ConfigError, NotReadyError, SchemaError

T0 = 1_700_000_000_000
DAY = 86_400_000
KEY = "3c" * 16


def engine(**sections: Any) -> Engine:
    cfg = load_config_dict({"identity": {"hash_key": KEY}, "engagement": {"enabled": True}, **sections})
    return Engine(cfg, Catalog([{"id": f"i{j}", "category": "c", "price": 10.0} for j in range(4)]), seed=1)


def view(who: str, t: int, **kw: Any) -> dict[str, Any]:
    return {"type": "view", "time": t, "ids": {"cookie": who}, "item": "i0", **kw}


def buy(who: str, t: int, value: float) -> dict[str, Any]:
    return {"type": "purchase", "time": t, "ids": {"cookie": who}, "item": "i1", "value": value}


# ---------------------------------------------------------------------- spec
@pytest.mark.parametrize(("kw", "msg"), [
    ({"tiers": (TierSpec(name="a", min_frequency=2.0), TierSpec(name="b", min_value=1.0))},
     "expected no bound on the last tier (it takes every profile no other tier matches), got 'b' with bounds "
     "for `engagement.tiers`"),
    ({"tiers": (TierSpec(name="a"),)}, "expected 2 to 16 tiers, got 1 for `engagement.tiers`"),
    ({"tiers": (TierSpec(name="a", min_value=1.0), TierSpec(name="a"))},
     "expected unique tier names, got ['a', 'a'] for `engagement.tiers`"),
    ({"exclude_types": ("consent", "visit")},
     "expected an event type in ['view', 'click', 'ad_click', 'email_open', 'email_click', 'add_to_cart', "
     "'purchase', 'return', 'service_call', 'coupon_redeem', 'download', 'identify', 'consent', 'opinion'], "
     "got 'visit' in `exclude_types`"),
])
def test_a_bad_spec_names_what_was_expected(kw: dict[str, Any], msg: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        EngagementSpec(enabled=True, **kw)


def test_a_tier_name_must_be_a_name() -> None:
    with pytest.raises(ConfigError, match=re.escape(
        "expected a tier name of a letter then up to 63 letters, digits or underscores, got '1st' for "
        "`engagement.tiers`"
    )):
        TierSpec(name="1st")


def test_tiers_load_from_a_config_document() -> None:
    cfg = load_config_dict({"engagement": {"enabled": True, "tiers": [
        {"name": "vip", "min_value": 500}, {"name": "active", "max_recency_days": 3}, {"name": "other"}]}})
    assert cfg.engagement.names == ["vip", "active", "other"]
    assert EngagementStore(cfg.engagement).names == ["vip", "active", "other"]


# ---------------------------------------------------------------------- inputs by event time
def test_frequency_and_value_decay_by_event_time_with_their_half_lives() -> None:
    spec = EngagementSpec(enabled=True, frequency_half_life_days=10.0, value_half_life_days=20.0)
    s = EngagementStore(spec, capacity=1)
    s.ensure(1)
    s.update(0, T0, value=40.0)
    s.update(0, T0 + 10 * DAY, value=0.0)
    assert s.last_[0] == T0 + 10 * DAY
    assert s.freq_[0] == pytest.approx(0.5 + 1.0)  # one half-life: the first event counts half
    assert s.value_[0] == pytest.approx(40.0 * 2 ** -0.5)
    assert s.spend_[0] == 40.0  # the plain sum does not decay
    rec, f, v = s.inputs_at(0, T0 + 30 * DAY) or (0, 0, 0)
    assert (rec, f, v) == (pytest.approx(20.0), pytest.approx(1.5 / 4), pytest.approx(40.0 * 2 ** -1.5))


def test_arrival_order_does_not_change_the_state(seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = (T0 + rng.integers(0, 40 * DAY, size=30)).tolist()
    values = rng.normal(20.0, 10.0, size=30).round(2).tolist()
    spec = EngagementSpec(enabled=True)
    states = []
    for order in (np.argsort(times), rng.permutation(30), rng.permutation(30)):
        s = EngagementStore(spec, capacity=1)
        s.ensure(1)
        for j in order.tolist():
            s.update(0, times[j], value=values[j])
        states.append((int(s.last_[0]), float(s.freq_[0]), float(s.value_[0]), float(s.spend_[0]), int(s.tier_[0])))
    for st in states[1:]:
        assert st[0] == states[0][0] and st[4] == states[0][4]
        assert np.allclose(st[1:4], states[0][1:4], rtol=1e-12)


def test_the_stored_tier_is_the_tier_at_the_last_event_and_a_read_moves_nothing() -> None:
    s = EngagementStore(EngagementSpec(enabled=True), capacity=2)
    s.ensure(2)
    for k in range(3):
        s.update(0, T0 + k * DAY)
    assert s.names[s.tier_[0]] == "indifferent"  # a decayed count of 2.90: not yet three
    s.update(0, T0 + 3 * DAY)
    assert s.names[s.tier_[0]] == "engaged"  # four events in four days, seen now
    assert s.names[s.tier_at(0, T0 + 3 * DAY + 8 * DAY)] == "indifferent"  # eight days quiet
    assert s.names[s.tier_at(0, T0 + 3 * DAY + 22 * DAY)] == "disengaged"
    assert s.names[s.tier_[0]] == "engaged"  # reading at a time changed nothing
    assert s.tier_at(1, T0) == NO_TIER and s.inputs_at(1, T0) is None and s.export(1, T0) is None


def test_the_vectorised_tiers_equal_one_row_at_a_time(seed: int) -> None:
    spec = EngagementSpec(enabled=True, tiers=(
        TierSpec(name="vip", min_value=60.0), TierSpec(name="engaged", max_recency_days=7.0, min_frequency=3.0),
        TierSpec(name="lapsing", max_recency_days=30.0, min_frequency=0.5), TierSpec(name="rest"),
    ))
    s = EngagementStore(spec, capacity=64)
    s.ensure(200)
    rng = np.random.default_rng(seed)
    for _ in range(1500):
        row = int(rng.integers(0, 180))  # rows 180..199 have no event
        s.update(row, T0 + int(rng.integers(0, 60 * DAY)), value=float(rng.choice([0.0, 0.0, 15.0, -5.0])))
    seen: set[int] = set()
    for now in (T0 + 60 * DAY, T0 + 75 * DAY, T0 + 200 * DAY):
        bulk = s.tiers(now)
        one = [s.tier_at(r, now) for r in range(s.n_rows)]
        assert bulk.tolist() == one
        seen |= set(one)
    assert seen == {0, 1, 2, 3, NO_TIER}  # the comparison met every tier


# ---------------------------------------------------------------------- through the engine
def test_merges_add_the_inputs_and_recompute_the_tier() -> None:
    e = engine()
    e.track(view("a", T0))
    e.track(view("a", T0 + DAY))
    e.track(buy("b", T0 + 2 * DAY, 30.0))
    row_b = e.profile_row({"cookie": "b"})
    e.track({"type": "identify", "time": T0 + 2 * DAY, "ids": {"cookie": "a", "email": "x@example.com"}})
    e.track({"type": "identify", "time": T0 + 2 * DAY, "ids": {"cookie": "b", "email": "x@example.com"}})
    row = e.profile_row({"cookie": "a"})
    assert row == e.profile_row({"cookie": "b"})
    s = e.engagement_
    h = 21.0
    expected = 2 ** (-2 / h) + 2 ** (-1 / h) + 1 + 1 + 1  # a's views, b's purchase, two identifies
    assert s.freq_[row] == pytest.approx(expected)
    assert s.spend_[row] == 30.0 and s.names[s.tier_[row]] == "engaged"
    gone = row_b if row_b != row else e.profile_row({"cookie": "a"})
    assert gone == row or s.last_[gone] == 0  # the absorbed row was cleared


def test_erasure_and_eviction_clear_the_row_and_export_shows_the_tier() -> None:
    e = engine(profiles={"max_profiles": 3, "evict_fraction": 0.34})
    e.track(buy("a", T0, 12.5))
    out = e.export({"cookie": "a"}, now=T0 + 9 * DAY)
    assert out["engagement"] == {
        "tier": "indifferent", "as_of": T0 + 9 * DAY, "recency_days": 9.0, "frequency": pytest.approx(2 ** (-9 / 21)),
        "value": pytest.approx(12.5 * 2 ** (-9 / 90)), "spend": 12.5, "last_event": T0,
    }
    row = e.profile_row({"cookie": "a"})
    e.forget({"cookie": "a"})
    assert e.engagement_.last_[row] == 0 and e.engagement_.tier_[row] == NO_TIER and e.engagement_.spend_[row] == 0
    for j in range(6):  # past the profile bound: the idle ones are evicted with their engagement
        e.track(view(f"p{j}", T0 + DAY + j))
    live = e.identity.rows_["root"][: e.identity.n_rows] >= 0
    held = e.engagement_.last_[: live.shape[0]] > 0
    assert not (held & ~live).any() and held.sum() == live.sum() <= 3


def test_only_events_with_personalization_consent_count_and_batch_loads_never() -> None:
    e = engine(attributes={"tier": {"type": "category", "from_events": False}})
    e.track(view("a", T0, consent={"personalization.web": False}))
    e.track(view("a", T0 + 1))
    row = e.profile_row({"cookie": "a"})
    assert e.engagement_.last_[row] == 0  # refused on the web: not counted
    e.track({"type": "email_open", "time": T0 + 2, "ids": {"cookie": "a"}, "channel": "email"})
    assert e.engagement_.last_[row] == T0 + 2 and e.engagement_.freq_[row] == 1.0
    e.set_attributes({"cookie": "a"}, {"tier": "gold"}, source="crm", time=T0 + 5)
    assert e.engagement_.last_[row] == T0 + 2 and e.engagement_.freq_[row] == 1.0
    e.track({"type": "consent", "time": T0 + 6, "ids": {"cookie": "a"}, "consent": {"analytics": True}})
    assert e.engagement_.last_[row] == T0 + 2  # consent events are excluded by default


def test_the_tier_report_compares_each_tiers_mean_value_with_the_average() -> None:
    e = engine()
    for k in range(4):  # engaged: four events this week, 100 spent
        e.track(view("eng", T0 + 20 * DAY + k * DAY))
    e.track(buy("eng", T0 + 24 * DAY, 100.0))
    e.track(buy("mid", T0 + 15 * DAY, 40.0))  # indifferent: 10 days quiet at the report
    e.track(view("mid2", T0 + 14 * DAY))
    e.track(buy("old", T0, 10.0))  # disengaged: 25 days quiet
    rep = e.tier_report(T0 + 25 * DAY)
    mean = (100 + 40 + 0 + 10) / 4
    assert rep["people"] == 4 and rep["mean_value"] == mean
    by = {t["tier"]: t for t in rep["tiers"]}
    assert [t["tier"] for t in rep["tiers"]] == ["engaged", "indifferent", "disengaged"]
    assert (by["engaged"]["people"], by["engaged"]["share"]) == (1, 0.25)
    assert by["engaged"]["value_index"] == pytest.approx(100 / mean - 1)  # +167%
    assert by["indifferent"]["mean_value"] == 20.0 and by["indifferent"]["value_index"] == pytest.approx(20 / mean - 1)
    assert by["disengaged"]["value_index"] == pytest.approx(10 / mean - 1)
    assert sum(t["people"] for t in rep["tiers"]) == rep["people"]
    assert math.isclose(sum(t["share"] for t in rep["tiers"]), 1.0)


def test_the_tier_report_refuses_a_bad_time_and_engagement_off() -> None:
    e = engine()
    with pytest.raises(SchemaError, match=re.escape(
        "Expected `now` to be epoch milliseconds (an int), got `str`")):
        e.tier_report("today")  # type: ignore[arg-type]
    off = Engine(load_config_dict({"identity": {"hash_key": KEY}}), Catalog([{"id": "i0"}]))
    with pytest.raises(NotReadyError, match="^" + re.escape(
        "Expected engagement tiers on (`[engagement] enabled = true`), got them off - at `engagement`") + "$"):
        off.tier_report(T0)
    off.track(view("a", T0))  # off: nothing is kept, nothing grows
    assert off.engagement_.n_rows == 1 and off.engagement_.nbytes_per_profile() == 0


def test_a_state_for_other_tiers_is_refused() -> None:
    a = EngagementStore(EngagementSpec(enabled=True))
    b = EngagementStore(EngagementSpec(enabled=True, value_half_life_days=30.0))
    with pytest.raises(NotReadyError, match=re.escape("expected engagement state for {") + ".* - at `engagement`$"):
        b.load_state(a.to_state())
    a.ensure(3)
    a.update(2, T0, value=5.0)
    c = EngagementStore(EngagementSpec(enabled=True))
    c.load_state(a.to_state())
    assert c.tier_at(2, T0 + DAY) == a.tier_at(2, T0 + DAY) and c.spend_[2] == 5.0


def test_segments_and_audiences_read_the_tier_at_their_time() -> None:
    eng = engine(segments={"keen": 'tier == "engaged"'},
                 placements=[{"name": "vip", "kind": "campaign", "segment": "keen", "default": "a",
                              "experiences": [{"id": "a"}, {"id": "b"}]}])
    for k in range(4):  # busy: engaged while it lasts
        eng.track(view("busy", T0 + k * DAY))
    eng.track(view("once", T0))
    now = T0 + 4 * DAY
    out = eng.audience('tier == "engaged"', now=now, by="tier")
    assert out["size"] == 1 and out["breakdown"] == {"engaged": 1}
    row = eng.profile_row({"cookie": "busy"})
    assert eng.engagement_.names[eng.engagement_.tier_at(row, now)] == "engaged"
    assert sum(eng.audience("tier != \"engaged\"", now=now, by="tier")["breakdown"].values()) == 1
    later = T0 + 60 * DAY  # recency moves with time: nobody is engaged two months later
    assert eng.audience('tier == "engaged"', now=later)["size"] == 0
    d = eng.decide(view("busy", now), placement="vip")
    assert any(r.kind == "segment" for r in d.reasons)
