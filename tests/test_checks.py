"""decisioner.checks over every policy family and an engine with every feature on."""

from __future__ import annotations

from typing import Any

import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.checks import POLICY_SPECS, CheckError, Outbound, check_batch, check_engine, check_policy
from decisioner.config import load_config_dict
from decisioner.engagement import NO_TIER

T0 = 1_700_000_000_000
KEY = "7a" * 16


@pytest.mark.parametrize("spec", POLICY_SPECS(), ids=lambda s: type(s).__name__)
def test_every_policy_family_passes_the_checks(spec: Any) -> None:
    check_policy(spec)


def test_a_broken_round_trip_is_caught() -> None:
    from decisioner.allocation import BernoulliThompson
    from decisioner.config import ThompsonSpec

    class Forgetful(BernoulliThompson):
        def _import(self, arrays: Any, meta: Any) -> None:  # restores nothing
            return None

    import decisioner.checks as C

    orig = C.make_policy
    C.make_policy = lambda spec, n, **kw: Forgetful(n, spec, seed=kw.get("seed"))  # type: ignore[assignment]
    try:
        with pytest.raises(CheckError, match="check `state-round-trip` failed"):
            check_policy(ThompsonSpec())
    finally:
        C.make_policy = orig


def full_engine() -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": KEY},
        "profiles": {"max_profiles": 40, "evict_fraction": 0.1},
        "decision_log": {"max_rows": 128, "chunk_rows": 128},  # the window drops chunks, exposures drop too
        "placements": [
            {"name": "home", "kind": "recommendation", "slots": 3, "policy": {"kind": "epsilon_greedy", "epsilon": 0.3}},
            {"name": "soft", "kind": "recommendation", "slots": 2, "policy": {"kind": "softmax"}},
            {"name": "hero", "kind": "campaign", "policy": {"kind": "thompson", "batch_size": 8},
             "experiences": [{"id": f"e{i}"} for i in range(4)]},
            {"name": "ctx", "kind": "campaign", "policy": {"kind": "linucb", "features": ["age"]},
             "experiences": [{"id": f"x{i}"} for i in range(3)]},
            {"name": "mail", "kind": "campaign", "channel": "email", "purposes": ["marketing"], "default": "m0",
             "experiences": [{"id": f"m{i}"} for i in range(3)], "segment": "north",
             "rules": [{"segment": "regular", "experience": "m2"}]},
        ],
        "experiments": [
            {"name": "hx", "placement": "hero", "variants": [{"name": "same"}, {"name": "ucb", "policy": {"kind": "ucb1"}}]},
            {"name": "homex", "placement": "home", "variants": [{"name": "base"}, {"name": "g", "policy": {"kind": "greedy"}}]},
        ],
        "holdout": {"fraction": 0.15},
        "outcomes": {"attribution_window_days": 0.002},  # about 3 minutes: decisions expire within the run
        "attributes": {  # "age" is also the contextual policy's feature: both read it
            "age": {"type": "number", "rule": "max"},
            "region": {"type": "category", "rule": "most_frequent", "slots": 2},
            "tier": {"type": "category", "rule": "source_priority", "sources": ["crm", "pos"], "from_events": False},
            "ltv": {"type": "number", "rule": "sum"},
            "since": {"type": "timestamp", "rule": "first_seen"},
        },
        "engagement": {"enabled": True, "frequency_half_life_days": 0.01, "tiers": [
            {"name": "active", "max_recency_days": 0.002}, {"name": "buyer", "min_value": 1.0}, {"name": "gone"}]},
        "pulse": {"enabled": True, "max_topics": 2, "min_count": 1},  # the third topic is dropped
        "activity": {"types": ["view", "purchase"]},
        "outbound": {"caps": {"email": {"max": 1, "days": 0.001}}},  # about 86 s: some capped, some not
        "segments": {"regular": 'count("view", days=1) >= 2 and engagement != "gone"',
                     "north": 'region == "r1" or segment("regular")'},
    })
    cat = Catalog([{"id": f"i{j}", "category": f"c{j % 4}", "inventory": 3} for j in range(30)], cfg.catalog)
    return Engine(cfg, cat, seed=5)


def events(start: int, n: int) -> list[tuple[str | None, Any]]:
    out: list[tuple[str | None, Any]] = []
    for t in range(start, start + n):
        ev: dict[str, Any] = {
            "type": "view", "time": T0 + t * 1000, "ids": {"cookie": f"p{t % 55}"}, "item": f"i{t % 30}",
            "attrs": {"age": t % 7, "region": f"r{t % 3}", "ltv": t % 4, "since": T0 + (t * 7919) % 5000},
        }
        if t % 7 == 0:  # consent changes: refusals and grants, GPC; decisions without analytics rows
            ev["consent"] = {"analytics": t % 2 == 0, "marketing.email": t % 3 == 0, "personalization.web": t % 5 != 0}
            ev["gpc"] = t % 4 == 0
        if t % 11 == 0:  # an opinion (tracked), on one of three topics
            ev = {"type": "opinion", "time": ev["time"], "ids": ev["ids"], "topic": f"t{t % 3}",
                  "sentiment": (t % 9 - 4) / 4, "channel": ("web", "email")[t % 2]}
            out.append((None, ev))
            continue
        if t % 13 == 0:  # a purchase with a value, or a return
            ev.update(type=("purchase", "return")[t % 2], value=float(t % 50))
        out.append(((None, "home", "soft", "hero", "ctx", "mail")[t % 6], ev))
    return out


def test_a_reopened_engine_continues_exactly_with_every_feature_on() -> None:
    eng = full_engine()
    for placement, ev in events(0, 300):
        if placement is None:
            eng.track(ev)
        else:
            d = eng.decide(ev, placement=placement)
            if d.slots and ev["time"] % 3000 == 0:
                eng.observe({"decision_id": d.decision_id, "kind": "click", "time": ev["time"] + 1})
                eng.observe({"decision_id": d.decision_id, "kind": "click", "time": ev["time"] + 2})  # a duplicate
    eng.forget({"cookie": "p3"})
    eng.set_inventory("i4", 0)
    eng.set_attributes_many([{"cookie": f"p{j}", "crm_id": f"C{j}"} for j in range(10)],
                            [{"tier": ("gold", "silver")[j % 2], "ltv": 100} for j in range(10)],
                            source="pos", time=T0 + 5)
    assert eng.attributes({"crm_id": "C1"})["tier"] == ("silver", "pos", T0 + 5)
    assert eng.evicted_ > 0 and eng.duplicate_outcomes_ > 0 and eng.pending_.expired_ > 0
    assert eng.decision_log.dropped_rows_ > 0
    assert eng.pulse_.dropped_ > 0 and eng.pulse_.opinions_ > 0
    assert {0, NO_TIER} <= set(eng.engagement_.tier_.tolist())  # active, and rows with no tier
    assert {0, 1, 2, NO_TIER} == set(eng.engagement_.tiers(T0 + 460_000).tolist())  # later, some lapsed
    eng.outbound('consent("analytics")', placement="hero", channel="email", now=T0 + 250_000)
    batches = [Outbound('consent("marketing")', "hero", "email", T0 + 300_000 + 40_000 * j) for j in range(5)]
    check_engine(eng, [*events(300, 100), *batches[:3], *events(400, 100), *batches[3:]])
    capped = eng.outbound('consent("marketing")', placement="hero", channel="email", now=T0 + 460_001)
    later = eng.outbound('consent("marketing")', placement="hero", channel="email", now=T0 + 520_000)
    assert capped.counts["cap"] > 0 and later.counts["sent"] > 0  # the batches sent, and caps counted them
    assert eng.experiments_.exposures.dropped_ > 0  # dropped by both engines while they went on


def batch_events(start: int, n: int) -> list[Any]:
    """``events``' dicts, and a few malformed ones (refused the same way in both paths)."""
    out: list[Any] = [ev for _, ev in events(start, n)]
    for j in range(0, n, 37):
        out.insert(j, {"type": "view", "time": "soon", "ids": {"cookie": "p1"}})
    return out


DECIDE_ON = {"view": "home", "email_open": "mail"}


def test_batches_decide_and_end_like_one_call_each_with_every_feature_on() -> None:
    eng = full_engine()
    for ev in batch_events(0, 120):
        if isinstance(ev.get("time"), int):
            eng.track(ev)
    check_batch(eng, batch_events(120, 200), decide_on=DECIDE_ON, batch=7)
    check_batch(eng, batch_events(320, 60), decide_on=DECIDE_ON, batch=4096)


def test_check_batch_catches_a_batch_path_that_reorders(monkeypatch: pytest.MonkeyPatch) -> None:
    from decisioner.engine import Engine

    real = Engine.ingest_many

    def reordered(self: Engine, evs: list[Any], **kw: Any) -> Any:
        return real(self, evs[::-1], **kw)

    monkeypatch.setattr(Engine, "ingest_many", reordered)
    with pytest.raises(CheckError, match=r"check `batch-equals-one-by-one` failed"):
        check_batch(full_engine(), batch_events(0, 40), decide_on=DECIDE_ON, batch=7)
