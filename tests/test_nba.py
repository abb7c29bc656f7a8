"""Next-best actions that depend on the person: experience facets and affinity, segment
eligibility, contextual features, exact propensities (issue 14 item 2)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner._kernels.rng import seed_state
from decisioner.allocation import (
    UCB1,
    BernoulliThompson,
    EpsilonGreedy,
    GaussianThompson,
    Greedy,
    LinTS,
    LinUCB,
    Softmax,
)
from decisioner.catalog import Catalog
from decisioner.checks import check_engine
from decisioner.config import EpsilonGreedySpec, LinTSSpec, SoftmaxSpec, load_config_dict
from decisioner.errors import ConfigError

T0 = 1_700_000_000_000
KEY = "5e" * 16
CATEGORIES = ("shoes", "bags", "hats")
EXPERIENCES = [
    {"id": "shoes", "facets": {"category": "shoes"}},
    {"id": "bags", "facets": {"category": "bags"}},
    {"id": "hats", "facets": {"category": "hats"}},
]


def config(placement: dict[str, Any], **extra: Any) -> Any:
    base = {"name": "nba", "kind": "campaign", "channel": "phone", "experiences": EXPERIENCES}
    return load_config_dict({"identity": {"hash_key": KEY}, "placements": [{**base, **placement}], **extra})


def engine(placement: dict[str, Any], *, seed: int = 3, **extra: Any) -> Engine:
    cfg = config(placement, **extra)
    items = [{"id": f"i{j}", "category": CATEGORIES[j % 3], "inventory": 5} for j in range(30)]
    return Engine(cfg, Catalog(items, cfg.catalog), seed=seed)


def likes(e: Engine, who: str, category: str, t: int, n: int = 3) -> None:
    """``who`` views ``n`` items of ``category`` (and nothing else)."""
    j = CATEGORIES.index(category)
    for k in range(n):
        e.track({"type": "view", "time": t + k, "ids": {"email": who}, "item": f"i{j + 3 * k}"})


def ask(e: Engine, who: str, t: int) -> Any:
    """A service call for ``who`` (no item: the interests stay as they were)."""
    return e.decide({"type": "service_call", "time": t, "ids": {"email": who}, "channel": "phone"}, placement="nba")


# ---------------------------------------------------------------------- the person's affinity


@pytest.mark.parametrize("policy", [{"kind": "thompson"}, {"kind": "epsilon_greedy", "epsilon": 0.2},
                                    {"kind": "softmax", "temperature": 0.2}])
def test_a_shoe_lover_gets_the_shoes_experience_more_often(policy: dict[str, Any]) -> None:
    # 120 people who like shoes and 120 who like bags, one decision each, clicks never arrive.
    # Weight 1: each group gets its own experience in >= 70% of decisions (seeded; observed
    # 0.9 and above). Weight 0: what a person gets does not depend on the person (the shoes
    # share of both groups within 0.15 of each other).
    shoes = {}
    for w in (0.0, 1.0):
        e = engine({"policy": policy, "affinity_weight": w})
        got: dict[str, list[str]] = {"shoes": [], "bags": []}
        for p in range(240):
            who, cat = f"p{p}@x.org", ("shoes", "bags")[p % 2]
            t = T0 + 10 * p
            likes(e, who, cat, t)
            got[cat].append(ask(e, who, t + 5).slots[0].content)
        own = {c: sum(x == c for x in v) / len(v) for c, v in got.items()}
        if w:
            assert own["shoes"] >= 0.7 and own["bags"] >= 0.7, own
        shoes[w] = {c: sum(x == "shoes" for x in v) / len(v) for c, v in got.items()}
    assert abs(shoes[0.0]["shoes"] - shoes[0.0]["bags"]) <= 0.15
    assert shoes[1.0]["shoes"] - shoes[1.0]["bags"] >= 0.5


def test_the_reason_names_the_facet_value_and_the_decision_is_personalized() -> None:
    e = engine({"affinity_weight": 1.0})
    likes(e, "ada@x.org", "hats", T0)
    d = ask(e, "ada@x.org", T0 + 10)
    assert d.slots[0].content == "hats" and d.personalized and d.decision_id == "d-0"
    assert d.reasons[0].kind == "affinity" and d.reasons[0].detail == "category=hats"
    assert d.reasons[0].weight == pytest.approx(1.0)
    assert 0.0 < d.slots[0].propensity <= 1.0
    # without facets matched (a stranger) there is no affinity reason and no bonus
    d = ask(e, "new@x.org", T0 + 20)
    assert [r.kind for r in d.reasons] == ["policy"]


def test_affinity_is_the_share_of_interest_in_the_facet_values() -> None:
    e = engine({"affinity_weight": 1.0})
    likes(e, "ada@x.org", "shoes", T0, n=2)
    likes(e, "ada@x.org", "bags", T0 + 2, n=2)
    row = e.profile_row({"email": "ada@x.org"})
    pl = e.placement("nba")
    aff, _ = pl.affinities(*e.profiles.read(row, T0 + 10, e.half_lives_))
    interests = dict(e.interests({"email": "ada@x.org"}, now=T0 + 10))
    assert aff.tolist() == pytest.approx([interests["category=shoes"], interests["category=bags"], 0.0])
    assert aff.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("policy", [{"kind": "thompson"}, {"kind": "gaussian_thompson"},
                                    {"kind": "epsilon_greedy", "epsilon": 0.3}, {"kind": "softmax"},
                                    {"kind": "ucb1"}, {"kind": "greedy"},
                                    {"kind": "lin_ts", "features": ["affinity:shoes"]}])
def test_the_logged_propensity_is_the_policy_probability_with_the_bonus(policy: dict[str, Any]) -> None:
    e = engine({"policy": policy, "affinity_weight": 0.5})
    pl = e.placement("nba")
    assert pl.bandit is not None
    for p in range(12):
        who = f"p{p}@x.org"
        t = T0 + 100 * p
        likes(e, who, CATEGORIES[p % 3], t, n=1 + p % 3)
        row = e.profile_row({"email": who})
        aff = pl.affinities(*e.profiles.read(row, t + 50, e.half_lives_))
        ctx = pl.context({}, aff[0])
        dist = pl.bandit.action_distribution(None, context=ctx, bonus=0.5 * aff[0])
        d = ask(e, who, t + 50)
        arm = pl.contents.index(d.slots[0].content)
        assert d.slots[0].propensity == pytest.approx(dist[arm], rel=1e-12, abs=1e-15)
        if p % 2:  # some rewards, so the policies move away from their priors
            e.observe({"decision_id": d.decision_id, "kind": "click", "time": t + 60})


POLICIES = [
    lambda: BernoulliThompson(3, seed=0),
    lambda: GaussianThompson(3, seed=0),
    lambda: EpsilonGreedy(3, EpsilonGreedySpec(epsilon=0.3), seed=0),
    lambda: Softmax(3, SoftmaxSpec(temperature=0.3), seed=0),
    lambda: LinTS(3, 2, LinTSSpec(v=0.5), seed=0),
]


@pytest.mark.parametrize("make", POLICIES, ids=["thompson", "gaussian", "epsilon", "softmax", "lin_ts"])
def test_propensities_match_empirical_frequencies(make: Any) -> None:
    # 4,000 seeded selections with a fixed bonus: each arm's frequency within 4.5 binomial
    # standard deviations of its propensity, and every Choice's propensity is that probability
    pol = make()
    ctx = [1.0, 0.4] if isinstance(pol, LinTS) else None
    for arm, r in [(0, 1.0), (0, 0.0), (1, 1.0), (1, 1.0), (2, 0.0), (2, 0.0), (2, 1.0)]:
        pol.update_one(arm, r, context=ctx)
    bonus = np.array([0.0, 0.1, 0.8])
    dist = pol.action_distribution(None, context=ctx, bonus=bonus)
    assert dist.sum() == pytest.approx(1.0) and not np.allclose(dist, pol.action_distribution(None, context=ctx))
    n = 4000
    counts = np.zeros(3)
    for t in range(n):
        c = pol.select_one(state=seed_state(11, t), context=ctx, bonus=bonus)
        assert c.propensity == pytest.approx(dist[c.arm], rel=1e-12)
        counts[c.arm] += 1
    sd = np.sqrt(dist * (1 - dist) / n)
    assert np.all(np.abs(counts / n - dist) <= 4.5 * sd + 1e-9), (counts / n, dist)


def test_deterministic_policies_take_the_bonus_into_their_argmax() -> None:
    g, u, lin = Greedy(3), UCB1(3), LinUCB(3, 1)
    for arm, r in [(0, 1.0), (1, 0.5), (2, 0.0)]:
        g.update_one(arm, r)
        u.update_one(arm, r)
        lin.update_one(arm, r, context=[1.0])
    bonus = np.array([0.0, 0.0, 2.0])
    assert g.select_one().arm == 0 and g.select_one(bonus=bonus) == g.select_one(bonus=bonus)
    assert g.select_one(bonus=bonus).arm == 2 and g.select_one(bonus=bonus).propensity == 1.0
    assert u.select_one(bonus=bonus).arm == 2
    assert lin.select_one(context=[1.0]).arm == 0 and lin.select_one(context=[1.0], bonus=bonus).arm == 2
    assert lin.action_distribution(context=[1.0], bonus=bonus).tolist() == [0.0, 0.0, 1.0]


def test_a_bad_bonus_is_refused() -> None:
    with pytest.raises(ConfigError, match=re.escape("expected a finite bonus of shape (3,), got shape (2,) - at `bonus`")):
        Greedy(3).select_one(bonus=np.zeros(2))
    with pytest.raises(ConfigError, match=re.escape("expected a finite bonus of shape (3,), got shape (3,) - at `bonus`")):
        EpsilonGreedy(3).action_distribution(bonus=np.array([0.0, np.nan, 0.0]))


# ---------------------------------------------------------------------- eligibility by segment


def test_a_gated_experience_is_shown_only_to_members_of_its_segment() -> None:
    exps = [*EXPERIENCES, {"id": "vip", "segment": "buyers"}]
    e = engine({"experiences": exps, "policy": {"kind": "random"}},
               segments={"buyers": 'count("purchase", days=30) >= 1'}, activity={"types": ["purchase"]})
    e2 = engine({"experiences": exps, "policy": {"kind": "thompson"}},
                segments={"buyers": 'count("purchase", days=30) >= 1'}, activity={"types": ["purchase"]})
    for eng in (e, e2):
        outsider = [ask(eng, "out@x.org", T0 + k) for k in range(60)]
        assert all(d.slots[0].content != "vip" for d in outsider)
        assert all(d.candidates == 3 for d in outsider)
        eng.track({"type": "purchase", "time": T0 + 100, "ids": {"email": "in@x.org"}, "item": "i0"})
        member = [ask(eng, "in@x.org", T0 + 200 + k) for k in range(60)]
        shown = [d for d in member if d.slots[0].content == "vip"]
        assert shown and all(d.candidates == 4 for d in member)
        assert all(r in d.reasons for d in shown for r in [
            type(d.reasons[0])(kind="segment", detail="buyers: eligible for vip")])
        assert all("eligible" not in r.detail for d in member if d.slots[0].content != "vip" for r in d.reasons)
        if eng is e:  # a uniform policy over the 4 the member may see: propensity 1/4, over 3 for the outsider
            assert {d.slots[0].propensity for d in member} == {0.25}
            assert {d.slots[0].propensity for d in outsider} == {1 / 3}


def test_when_every_experience_is_gated_away_the_default_is_shown() -> None:
    exps = [{"id": "base"}, {"id": "vip", "segment": "buyers"}]
    e = engine({"experiences": exps, "default": "base"}, segments={"buyers": 'count("purchase", days=30) >= 1'},
               activity={"types": ["purchase"]})
    # "base" stays eligible; only "vip" is gated: one candidate, propensity 1
    d = ask(e, "out@x.org", T0)
    assert d.slots[0].content == "base" and d.candidates == 1 and d.slots[0].propensity == pytest.approx(1.0)


# ---------------------------------------------------------------------- contextual policies


def test_contextual_policies_read_the_affinities_as_features() -> None:
    feats = ["affinity:shoes", "affinity:bags", "affinity:hats"]
    e = engine({"policy": {"kind": "linucb", "alpha": 0.2, "features": feats}})
    pl = e.placement("nba")
    likes(e, "ada@x.org", "bags", T0)
    d = ask(e, "ada@x.org", T0 + 10)
    pend = e.pending_.get(d.decision_id)
    assert pend is not None and pend.context == pytest.approx([1.0, 0.0, 1.0, 0.0])
    assert pl.feature_exp == (0, 1, 2)
    # the model learns who clicks what: people click the experience of their interest
    wins = []
    for p in range(300):
        who, cat = f"p{p}@x.org", CATEGORIES[p % 3]
        t = T0 + 1000 + 10 * p
        likes(e, who, cat, t)
        d = ask(e, who, t + 5)
        hit = d.slots[0].content == cat
        if hit:
            e.observe({"decision_id": d.decision_id, "kind": "click", "time": t + 6})
        wins.append(hit)
    assert sum(wins[-90:]) / 90 >= 0.8  # seeded; a uniform policy gets a third


def test_without_personalization_consent_no_affinity_is_read() -> None:
    e = engine({"affinity_weight": 5.0, "policy": {"kind": "linucb", "features": ["affinity:shoes"]}},
               profiles={"default_consent": False})
    likes(e, "ada@x.org", "shoes", T0)
    d = ask(e, "ada@x.org", T0 + 10)
    assert not d.personalized and all(r.kind != "affinity" for r in d.reasons)
    pend = e.pending_.get(d.decision_id)
    assert pend is not None and pend.context == [1.0, 0.0]


# ---------------------------------------------------------------------- configuration


@pytest.mark.parametrize(("placement", "extra", "message"), [
    ({"experiences": [{"id": "a", "facets": {"category": "shoez"}}]}, {},
     "expected a value of facet `category` that a catalog item has, got 'shoez' - at "
     "`placements.nba.experiences[0].facets.category`"),
    ({"experiences": [{"id": "a"}, {"id": "b", "facets": {"size": "xl"}}]}, {},
     "expected a catalog facet in ['category', 'brand', 'colour', 'tags', 'price_band'], got 'size' - at "
     "`placements.nba.experiences[1].facets`"),
])
def test_unknown_facets_and_values_name_the_field(placement: dict[str, Any], extra: dict[str, Any],
                                                   message: str) -> None:
    cfg = config(placement, **extra)
    items = [{"id": "i0", "category": "shoes"}]
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        Engine(cfg, Catalog(items, cfg.catalog))


@pytest.mark.parametrize(("placement", "extra", "message"), [
    ({"experiences": [{"id": "a", "segment": "nobody"}]}, {},
     "Invalid config: expected a segment in [], got 'nobody' (experience 'a' of placement 'nba')"),
    ({"experiences": [{"id": "a", "segment": "s"}], "default": "a"}, {"segments": {"s": "tier == 'x'"}},
     "Invalid config: expected the `default` experience without a `segment`, got 's' (placement 'nba') - at "
     "`$.placements[0]`"),
    ({"policy": {"kind": "linucb", "features": ["affinity:socks"]}}, {},
     "Invalid config: expected `affinity:` and an experience id in ['shoes', 'bags', 'hats'], got 'affinity:socks' "
     "(placement 'nba') - at `$.placements[0]`"),
    ({"affinity_weight": -1.0}, {}, "Invalid config: Expected `float` >= 0.0 - at `$.placements[0].affinity_weight`"),
    ({"kind": "recommendation", "experiences": [], "affinity_weight": 1.0}, {},
     "Invalid config: expected no `affinity_weight` on a recommendation placement (`scoring.affinity_weight` weighs "
     "items), got 1.0 (placement 'nba') - at `$.placements[0]`"),
])
def test_config_errors(placement: dict[str, Any], extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        config(placement, **extra)


def test_a_variant_policy_with_an_unknown_affinity_feature_is_refused() -> None:
    cfg = config({}, experiments=[{"name": "x", "placement": "nba", "variants": [
        {"name": "a"}, {"name": "b", "policy": {"kind": "linucb", "features": ["affinity:socks"]}}]}])
    with pytest.raises(ConfigError, match="^" + re.escape(
        "expected `affinity:` and an experience id in ['shoes', 'bags', 'hats'], got 'affinity:socks' - at "
        "`placements.nba.policy.features`") + "$"):
        Engine(cfg, Catalog([{"id": "i0", "category": "shoes"}, {"id": "i1", "category": "bags"},
                             {"id": "i2", "category": "hats"}], cfg.catalog))


# ---------------------------------------------------------------------- old behaviour, round trips


@pytest.mark.parametrize("policy", [{"kind": "thompson"}, {"kind": "epsilon_greedy"}, {"kind": "softmax"},
                                    {"kind": "linucb", "features": ["age"]}, {"kind": "gaussian_thompson"}])
def test_weight_zero_decides_bit_identically_to_experiences_without_facets(policy: dict[str, Any]) -> None:
    plain = engine({"policy": policy, "experiences": [{"id": x["id"]} for x in EXPERIENCES]})
    faceted = engine({"policy": policy})
    for p in range(40):
        who, t = f"p{p % 7}@x.org", T0 + 10 * p
        outs = []
        for e in (plain, faceted):
            likes(e, who, CATEGORIES[p % 3], t, n=1)
            d = e.decide({"type": "service_call", "time": t + 5, "ids": {"email": who}, "channel": "phone",
                          "attrs": {"age": p % 5}}, placement="nba")
            if p % 3 == 0:
                e.observe({"decision_id": d.decision_id, "kind": "click", "time": t + 6})
            outs.append((d.decision_id, [(s.content, s.score, s.propensity) for s in d.slots], d.reasons,
                         d.personalized))
        assert outs[0] == outs[1]


def test_a_constant_bonus_leaves_thompson_as_it_is() -> None:
    a, b = BernoulliThompson(3, seed=0), BernoulliThompson(3, seed=0)
    for pol in (a, b):
        pol.update_one(1, 1.0)
    for t in range(20):
        ca = a.select_one(state=seed_state(2, t))
        cb = b.select_one(state=seed_state(2, t), bonus=np.full(3, 0.7))
        assert (ca.arm, ca.propensity, ca.score) == (cb.arm, cb.propensity, cb.score)


def test_snapshot_and_log_round_trip() -> None:
    exps = [*EXPERIENCES, {"id": "vip", "facets": {"category": "shoes"}, "segment": "buyers"}]
    feats = ["affinity:shoes", "affinity:vip", "age"]
    cfg_extra = {"segments": {"buyers": 'count("purchase", days=30) >= 1'}, "activity": {"types": ["purchase"]},
                 "experiments": [{"name": "x", "placement": "nba", "variants": [
                     {"name": "ts"}, {"name": "lin", "policy": {"kind": "lin_ts", "features": feats}}]}]}
    e = engine({"experiences": exps, "affinity_weight": 0.8, "policy": {"kind": "thompson", "batch_size": 3}},
               **cfg_extra)
    events: list[tuple[str | None, Any]] = []
    for p in range(30):
        who, t = {"email": f"p{p % 6}@x.org"}, T0 + 100 * p
        j = CATEGORIES.index(CATEGORIES[p % 3])
        kind = "purchase" if p % 5 == 0 else "view"
        events.append((None, {"type": kind, "time": t, "ids": who, "item": f"i{j}"}))
        events.append(("nba", {"type": "service_call", "time": t + 1, "ids": who, "channel": "phone",
                               "attrs": {"age": p}}))
    check_engine(e, events[:20])  # a fresh engine, then one with decisions and pending rewards behind it
    for placement, ev in events[20:40]:
        if placement is None:
            e.track(ev)
        else:
            d = e.decide(ev, placement=placement)
            e.observe({"decision_id": d.decision_id, "kind": "click", "time": ev["time"] + 1})
    check_engine(e, events[40:])


def test_the_event_log_replays_affinity_decisions(tmp_path: Any) -> None:
    # a durable engine's log, replayed on open, gives the same state: the next decisions agree
    spec = {"affinity_weight": 1.0, "policy": {"kind": "softmax", "temperature": 0.3}}
    e = engine(spec)
    e.durable(tmp_path / "d", flush="event")
    for p in range(20):
        who, t = f"p{p % 4}@x.org", T0 + 10 * p
        likes(e, who, CATEGORIES[p % 3], t, n=1)
        ask(e, who, t + 5)
    again = Engine.open(tmp_path / "d", hash_key=KEY, flush="off")
    for p in range(20, 30):
        who, t = f"p{p % 4}@x.org", T0 + 10 * p
        outs = []
        for eng in (e, again):
            likes(eng, who, CATEGORIES[p % 3], t, n=1)
            d = ask(eng, who, t + 5)
            outs.append((d.decision_id, d.slots, d.reasons))
        assert outs[0] == outs[1]
        assert any(r.kind == "affinity" for r in outs[0][2])


def test_recommend_previews_with_the_affinity_and_the_gates() -> None:
    # "vip" (first, about shoes too) is for buyers only: ties go to the first experience
    exps = [{"id": "vip", "facets": {"category": "shoes"}, "segment": "buyers"}, *EXPERIENCES]
    e = engine({"experiences": exps, "affinity_weight": 1.0}, segments={"buyers": 'count("purchase", days=30) >= 1'},
               activity={"types": ["purchase"]})
    likes(e, "ada@x.org", "hats", T0)
    d = e.recommend({"email": "ada@x.org"}, placement="nba", now=T0 + 10)
    assert d.slots[0].content == "hats" and d.personalized and d.decision_id == ""
    assert d.slots[0].score == pytest.approx(0.5 + 1.0)  # the prior mean and the affinity
    assert e.recommend({"email": "new@x.org"}, placement="nba", now=T0 + 10).slots[0].content == "shoes"
    likes(e, "cy@x.org", "shoes", T0)
    assert e.recommend({"email": "cy@x.org"}, placement="nba", now=T0 + 30).slots[0].content == "shoes"
    e.track({"type": "purchase", "time": T0 + 20, "ids": {"email": "bo@x.org"}, "item": "i0"})
    assert e.recommend({"email": "bo@x.org"}, placement="nba", now=T0 + 30).slots[0].content == "vip"
