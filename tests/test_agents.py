"""Agent context, next-best actions, feedback and explanations (decisioner.agents)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.errors import SchemaError, UnknownDecisionError, UnknownPlacementError

T0 = 1_700_000_000_000
DAY = 86_400_000
KEY = "3c" * 16


def engine() -> Engine:
    cfg = load_config_dict({
        "identity": {"hash_key": KEY},
        "attributes": {"region": {"type": "category"}},
        "engagement": {"enabled": True},
        "segments": {"shoppers": "count('add_to_cart', days=30) >= 1", "north": "region == 'north'"},
        "activity": {"types": ["add_to_cart"]},
        "placements": [
            {"name": "agent", "kind": "recommendation", "slots": 3, "channel": "phone",
             "policy": {"kind": "greedy"}},
            {"name": "offers", "kind": "campaign", "channel": "phone", "experiences": [{"id": "a"}, {"id": "b"}]},
        ],
    })
    items = [{"id": f"i{j}", "category": ["shoes", "bags", "hats"][j % 3], "inventory": 5} for j in range(30)]
    return Engine(cfg, Catalog(items, cfg.catalog), seed=2)


def history(e: Engine) -> None:
    ids = {"email": "ada@example.com"}
    e.track({"type": "view", "time": T0, "ids": ids, "channel": "web", "item": "i1", "attrs": {"region": "north"}})
    e.track({"type": "add_to_cart", "time": T0 + 20 * DAY, "ids": ids, "channel": "app", "item": "i0"})
    e.track({"type": "email_open", "time": T0 + 21 * DAY, "ids": ids, "channel": "email"})


def test_the_context_of_a_known_person() -> None:
    e = engine()
    history(e)
    now = T0 + 22 * DAY
    ctx = e.agent_context({"email": "ada@example.com"}, now=now)
    assert ctx.known and ctx.person == 0 and ctx.personalized and ctx.channel == "phone"
    by_value = {i.value: i for i in ctx.interests}
    assert by_value["shoes"].trend == "rising" and by_value["bags"].trend == "fading"
    assert by_value["shoes"].share > by_value["bags"].share
    assert sum(i.share for i in ctx.interests) == pytest.approx(1.0)
    assert [(t.event, t.channel, t.item) for t in ctx.journey] == [
        ("email_open", "email", None), ("add_to_cart", "app", "i0"), ("view", "web", "i1")]
    assert ctx.attributes == {"region": "north"}
    assert set(ctx.segments) == {"shoppers", "north"}
    assert ctx.tier is not None
    assert "phone" in ctx.consent["personalization"]
    text = ctx.to_text()
    assert "shoes" in text and "add_to_cart on app i0" in text and "segments: " in text
    json.dumps(ctx.to_dict())  # plain JSON


def test_an_opted_out_person_shows_nothing_personal() -> None:
    e = engine()
    history(e)
    e.track({"type": "consent", "time": T0 + 21 * DAY + 1, "ids": {"email": "ada@example.com"},
             "consent": {"personalization.phone": False}})
    ctx = e.agent_context({"email": "ada@example.com"}, now=T0 + 22 * DAY, placement="agent")
    assert ctx.known and not ctx.personalized
    assert (ctx.interests, ctx.journey, ctx.attributes, ctx.segments, ctx.tier) == ([], [], {}, [], None)
    assert "phone" not in ctx.consent["personalization"]
    assert ctx.next_best_actions is not None and not ctx.next_best_actions.personalized
    assert "no personal context" in ctx.to_text()
    # the same person seen from the web, where consent stands, has a context
    assert e.agent_context({"email": "ada@example.com"}, now=T0 + 22 * DAY, channel="web").interests


def test_an_unknown_person() -> None:
    e = engine()
    ctx = e.agent_context({"email": "nobody@example.com"}, now=T0)
    assert not ctx.known and ctx.person == -1 and ctx.interests == [] and ctx.journey == []


def test_next_best_actions_have_decision_ids_and_feedback_changes_the_next_decision() -> None:
    e, twin = engine(), engine()
    history(e)
    history(twin)
    ids = {"email": "ada@example.com"}
    now = T0 + 22 * DAY
    nba = e.agent_context(ids, now=now, placement="agent").next_best_actions
    assert nba is not None and nba.decision_id and len(nba.actions) == 3
    assert all(a.propensity == 1.0 for a in nba.actions) and nba.personalized
    twin.agent_context(ids, now=now, placement="agent")
    hat = next(f"i{j}" for j in range(2, 30, 3) if f"i{j}" not in {a.content for a in nba.actions})
    # an action the agent offered outside the slate is refused; one it showed is taken
    with pytest.raises(SchemaError):
        e.feedback(nba.decision_id, ids=ids, content=hat, reaction="accepted", time=now + 1)
    shown = nba.actions[2].content
    for k in range(3):
        out = e.feedback(nba.decision_id, ids=ids, content=shown, reaction="accepted" if k == 0 else "converted",
                         time=now + 1 + k, value=10.0 if k else None)
        assert out["rewarded"]
    after = e.agent_context(ids, now=now + 10, placement="agent").next_best_actions
    before = twin.agent_context(ids, now=now + 10, placement="agent").next_best_actions
    assert after is not None and before is not None
    # the purchase is excluded now and the shoes interest grew: the slate or its scores moved
    assert shown not in {a.content for a in after.actions} and shown in {a.content for a in nba.actions}
    assert [(a.content, a.score) for a in after.actions] != [(a.content, a.score) for a in before.actions]
    exp = e.explain(nba.decision_id)
    assert [s["content"] for s in exp["slots"]] == [a.content for a in nba.actions]
    assert exp["slots"][2]["reward"] > 0 and exp["person"] == 0 and exp["logged"]


def test_a_rejection_is_in_the_journey_and_rewards_nothing() -> None:
    e = engine()
    history(e)
    ids = {"email": "ada@example.com"}
    d = e.agent_context(ids, now=T0 + 22 * DAY, placement="offers").next_best_actions
    assert d is not None
    out = e.feedback(d.decision_id, ids=ids, content=d.actions[0].content, reaction="rejected", time=T0 + 22 * DAY + 5)
    assert not out["rewarded"] and out["event"] == "service_call"
    assert e.explain(d.decision_id)["slots"][0]["reward"] == 0.0
    assert e.agent_context(ids, now=T0 + 22 * DAY + 6).journey[0].event == "service_call"


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda e, d: e.feedback(d, ids={"email": "ada@example.com"}, content="i0", reaction="liked", time=T0),
     SchemaError, "Expected `reaction` in"),
    (lambda e, d: e.feedback("x-9", ids={"email": "ada@example.com"}, content="i0", reaction="accepted", time=T0),
     UnknownDecisionError, "Expected the id of a pending decision, got 'x-9'"),
    (lambda e, d: e.agent_context({"email": "ada@example.com"}, now=T0, channel="pigeon"),
     SchemaError, "Expected an agent channel in"),
    (lambda e, d: e.agent_context({"email": "ada@example.com"}, now=T0, placement="nope"),
     UnknownPlacementError, "Expected a configured placement"),
    (lambda e, d: e.agent_context({"email": "ada@example.com"}, now=T0, top=-1),
     SchemaError, "Expected `top` to be an int in [0, 100]"),
    (lambda e, d: e.explain("d-12345"), UnknownDecisionError, "Expected the id of a pending decision"),
])
def test_bad_arguments_are_refused_and_change_nothing(call: Any, error: type, message: str) -> None:
    e = engine()
    history(e)
    d = e.decide({"type": "view", "time": T0 + 22 * DAY, "ids": {"email": "ada@example.com"}}, placement="agent")
    before = (e.ops_, e.events_, e.seq_)
    with pytest.raises(error) as info:
        call(e, d.decision_id)
    assert message in str(info.value)
    assert (e.ops_, e.events_, e.seq_) == before


def test_the_journey_follows_merges_and_goes_with_erasure() -> None:
    e = engine()
    e.track({"type": "view", "time": T0, "ids": {"cookie": "c1"}, "item": "i3"})
    e.track({"type": "view", "time": T0 + 5, "ids": {"email": "ada@example.com"}, "item": "i4"})
    e.track({"type": "identify", "time": T0 + 9, "ids": {"cookie": "c1", "email": "ada@example.com"}})
    ctx = e.agent_context({"cookie": "c1"}, now=T0 + 10)
    assert [t.item for t in ctx.journey if t.item] == ["i4", "i3"]
    assert [t["item"] for t in e.export({"cookie": "c1"})["journey"] if t["item"]] == ["i4", "i3"]
    e.forget(row=e.profile_row({"cookie": "c1"}))
    assert e.agent_context({"cookie": "c1"}, now=T0 + 11).journey == []
