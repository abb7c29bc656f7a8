"""Engine: the whole decision pipeline, its learning, its rules, and its refusal to change
state on bad input."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.errors import (
    DecisionerError,
    SchemaError,
    UnknownDecisionError,
    UnknownItemError,
    UnknownPlacementError,
)
from decisioner.schemas import Decision, View
from wording import Wrapped, full_match

T0 = 1_700_000_000_000
MIN = 60_000
CATS = ("shoes", "bags", "hats", "coats")
KEY = "5e" * 16



def items() -> list[dict[str, Any]]:
    out = []
    for c in CATS:
        for j in range(12):
            rec: dict[str, Any] = {
                "id": f"{c}-{j}", "category": c, "brand": f"b{j % 4}", "colour": ("red", "blue", "black")[j % 3],
                "price": 10.0 + 15.0 * j, "tags": [f"t{j % 2}", f"u{j % 3}"],
            }
            if j == 11:
                rec["inventory"] = 0  # out of stock from the start
            elif j == 10:
                rec["inventory"] = 4
            out.append(rec)
    return out


PLACEMENTS: list[dict[str, Any]] = [
    {"name": "home", "kind": "recommendation", "slots": 4, "policy": {"kind": "epsilon_greedy", "epsilon": 0.1}},
    {"name": "top", "kind": "recommendation", "slots": 4, "policy": {"kind": "greedy"}},
    {"name": "popular", "kind": "recommendation", "slots": 3, "policy": {"kind": "popular"}},
    {"name": "hero", "kind": "campaign", "experiences": [{"id": "spring"}, {"id": "summer"}, {"id": "autumn"}]},
]


def make_engine(seed: int = 7, **config: Any) -> Engine:
    cfg = load_config_dict({"identity": {"hash_key": KEY}, "placements": PLACEMENTS, **config})
    return Engine(cfg, Catalog(items(), cfg.catalog), seed=seed)


def view(who: str, item: str, t: int, **kw: Any) -> dict[str, Any]:
    return {"type": "view", "time": t, "ids": {"cookie": who}, "item": item, **kw}


def category(item_id: str) -> str:
    return item_id.split("-")[0]


# ---------------------------------------------------------------- snapshots

def snapshot(eng: Engine) -> dict[str, Any]:
    """Every piece of mutable engine state, copied: each component's own export."""
    s: dict[str, Any] = {"identity.types": eng.identity.types}
    for comp, (arrays, meta) in eng.to_state().items():
        for name, arr in arrays.items():
            s[f"{comp}.{name}"] = np.array(arr, copy=True)
        s[f"{comp}.meta"] = repr(meta)
    s["log.len"] = len(eng.decision_log)
    s["seq_"] = eng.seq_
    return s


def assert_same_state(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            assert v.dtype == after[k].dtype and np.array_equal(v, after[k]), k
        else:
            assert v == after[k], k


def busy_engine() -> Engine:
    """An engine with people, a merge, purchases, decisions and outcomes behind it (and a
    1 KiB payload limit)."""
    eng = make_engine(limits={"max_payload_bytes": 1024})
    for p in range(6):
        for j in range(5):
            eng.track(view(f"p{p}", f"{CATS[p % 4]}-{j}", T0 + (p * 10 + j) * MIN))
    eng.track({"type": "identify", "time": T0 + 100 * MIN, "ids": {"cookie": "p0", "email": "p0@x.io"}})
    eng.track({"type": "identify", "time": T0 + 101 * MIN, "ids": {"cookie": "p1", "email": "p0@x.io"}})  # merge
    eng.track({"type": "purchase", "time": T0 + 102 * MIN, "ids": {"cookie": "p2"}, "items": ["hats-1", "hats-2"], "value": 40.0})
    d = eng.decide(view("p3", "coats-3", T0 + 103 * MIN), placement="home")
    eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0 + 104 * MIN, "content": d.slots[1].content})
    h = eng.decide({"type": "identify", "time": T0 + 105 * MIN, "ids": {"cookie": "p4"}}, placement="hero")
    eng.observe({"decision_id": h.decision_id, "kind": "click", "time": T0 + 106 * MIN})
    return eng


# ---------------------------------------------------------------- the decision

def test_decide_returns_a_full_decision() -> None:
    eng = make_engine()
    for j in range(8):
        eng.track(view("ada", f"hats-{j}", T0 + j * MIN))
    d = eng.decide(view("ada", "hats-8", T0 + 10 * MIN), placement="home")
    assert isinstance(d, Decision)
    assert d.decision_id == "d-0" and d.placement == "home" and d.time == T0 + 10 * MIN
    assert d.policy == "epsilon_greedy" and d.policy_version == 1
    assert d.profile == eng.profile_row({"cookie": "ada"}) == 0
    assert len(d.slots) == 4 and len({s.content for s in d.slots}) == 4
    assert all(0.0 < s.propensity <= 1.0 for s in d.slots)
    assert all(np.isfinite(s.score) for s in d.slots)
    assert d.candidates == 44  # 48 items minus 4 out of stock
    assert d.personalized and d.latency_us > 0
    kinds = [r.kind for r in d.reasons]
    assert kinds[:3] == ["affinity"] * 3 and kinds[-1] == "policy"
    assert d.reasons[0].detail == "category=hats" and 0 < d.reasons[0].weight <= 1
    assert d.reasons[-1].detail == "epsilon_greedy"
    # the decision is logged with its propensities
    log = eng.decision_log.to_dict()
    assert log["seq"].tolist() == [0] * 4
    assert log["propensity"].tolist() == [s.propensity for s in d.slots]
    assert [eng.catalog.ids[c] for c in log["content"]] == [s.content for s in d.slots]
    assert eng.seq_ == 1 and eng.events_ == 9
    # and the decision encodes as JSON
    assert msgspec.json.decode(msgspec.json.encode(d), type=Decision) == d


def test_decide_accepts_json_bytes_and_structs() -> None:
    eng = make_engine()
    a = eng.decide(msgspec.json.encode(view("ada", "hats-1", T0)), placement="top")
    b = eng.decide(View(time=T0 + 1, ids={"cookie": "ada"}, item="hats-1"), placement="top")
    assert a.profile == b.profile == 0 and len(a.slots) == len(b.slots) == 4


def strip(d: Decision) -> Decision:
    return msgspec.structs.replace(d, latency_us=0.0)


def scripted_run(eng: Engine) -> list[Decision]:
    rng = np.random.default_rng(99)
    out = []
    for k in range(120):
        who = f"u{int(rng.integers(0, 15))}"
        t = T0 + k * MIN
        item = f"{CATS[int(rng.integers(0, 4))]}-{int(rng.integers(0, 11))}"
        if k % 17 == 5:
            eng.track({"type": "identify", "time": t, "ids": {"cookie": who, "email": f"{who[:2]}@x.io"}})
        if k % 11 == 3:
            eng.track({"type": "purchase", "time": t, "ids": {"cookie": who}, "items": [item]})
        placement = ("home", "top", "hero", "popular")[k % 4]
        d = eng.decide(view(who, item, t), placement=placement)
        out.append(d)
        if rng.random() < 0.3 and d.slots:
            eng.observe({"decision_id": d.decision_id, "kind": "click", "time": t + 1, "content": d.slots[-1].content})
    return out


def test_equal_seeds_and_events_give_identical_decisions() -> None:
    a = [strip(d) for d in scripted_run(make_engine(seed=3))]
    b = [strip(d) for d in scripted_run(make_engine(seed=3))]
    assert a == b
    c = [strip(d) for d in scripted_run(make_engine(seed=4))]
    assert a != c  # the seed does drive exploration


def test_unknown_placement() -> None:
    eng = make_engine()
    msg = "Expected a configured placement in ['hero', 'home', 'popular', 'top'], got 'nope' - at `placement`"
    with pytest.raises(UnknownPlacementError, match="^" + re.escape(msg) + "$"):
        eng.decide(view("ada", "hats-1", T0), placement="nope")
    assert eng.placements == ["home", "top", "popular", "hero"]


# ---------------------------------------------------------------- learning and rules

def test_views_of_one_category_dominate_recommendations() -> None:
    eng = make_engine()
    hits = total = 0
    for p in range(24):
        who, cat = f"person-{p}", CATS[p % 4]
        for j in range(10):
            eng.track(view(who, f"{cat}-{j}", T0 + (p * 20 + j) * MIN))
        for placement in ("home", "top"):
            d = eng.decide(view(who, f"{cat}-{p % 10}", T0 + (p * 20 + 15) * MIN), placement=placement)
            hits += sum(category(s.content) == cat for s in d.slots)
            total += len(d.slots)
            assert d.reasons[0].detail == f"category={cat}"
    # greedy is always on-category; epsilon-greedy explores one slot in ~10%: at least 90%
    assert hits / total >= 0.9
    assert eng.interests({"cookie": "person-2"}, now=T0 + 60 * MIN)[0][0] == "category=hats"


def test_recent_interest_beats_old_interest() -> None:
    eng = make_engine(profiles={"half_life_days": 1.0})
    for j in range(10):
        eng.track(view("ada", f"bags-{j}", T0 + j * MIN))
    for j in range(4):
        eng.track(view("ada", f"coats-{j}", T0 + 10 * 86_400_000 + j * MIN))  # 10 half-lives later
    d = eng.decide(view("ada", "coats-4", T0 + 10 * 86_400_000 + 5 * MIN), placement="top")
    assert all(category(s.content) == "coats" for s in d.slots)


def test_already_purchased_items_are_excluded() -> None:
    eng = make_engine()
    for j in range(5):
        eng.track(view("ada", f"hats-{j}", T0 + j * MIN))
    first = eng.decide(view("ada", "hats-0", T0 + 6 * MIN), placement="top")
    bought = [s.content for s in first.slots[:2]]
    eng.track({"type": "purchase", "time": T0 + 7 * MIN, "ids": {"cookie": "ada"}, "items": bought})
    eng.track({"type": "purchase", "time": T0 + 8 * MIN, "ids": {"cookie": "ada"}, "item": first.slots[2].content})
    bought.append(first.slots[2].content)
    for k in range(30):
        for placement in ("top", "home"):
            d = eng.decide(view("ada", "hats-5", T0 + (10 + k) * MIN), placement=placement)
            assert not set(bought) & {s.content for s in d.slots}


def test_out_of_stock_items_are_never_recommended() -> None:
    eng = make_engine()
    for j in range(11):
        eng.track(view("ada", f"shoes-{j}", T0 + j * MIN))
    eng.track(view("ada", "shoes-11", T0 + 12 * MIN))  # viewing it is fine; showing it is not
    shown: set[str] = set()
    for k in range(40):
        d = eng.decide(view("ada", "shoes-0", T0 + (20 + k) * MIN), placement="home")
        shown |= {s.content for s in d.slots}
    assert not shown & {f"{c}-11" for c in CATS}
    # runtime stock change: the current top item goes out of stock, and comes back
    top = eng.decide(view("ada", "shoes-0", T0 + 70 * MIN), placement="top").slots[0].content
    eng.set_inventory(top, 0)
    for k in range(40):
        d = eng.decide(view("ada", "shoes-0", T0 + (80 + k) * MIN), placement="home")
        assert top not in {s.content for s in d.slots}
        assert d.candidates == 43
    eng.set_inventory(top, 3)
    assert eng.placement("top").mask[eng.catalog.index[top]] == 1
    with pytest.raises(UnknownItemError, match="^" + re.escape("Expected an item id in the catalog, got 'zz' - at `inventory`") + "$"):
        eng.set_inventory("zz", 1)


def test_withdrawn_consent_means_default_content_and_no_profiling() -> None:
    eng = make_engine()
    for j in range(6):
        eng.track(view("ada", f"bags-{j}", T0 + j * MIN))
    row = eng.profile_row({"cookie": "ada"})
    before = (eng.profiles.fid_[row].copy(), eng.profiles.score_[row].copy(), int(eng.profiles.t_[row]))
    d = eng.decide(view("ada", "coats-1", T0 + 10 * MIN, consent={"personalization": False}), placement="home")
    assert not d.personalized
    assert not [r for r in d.reasons if r.kind == "affinity"]
    assert [r.detail for r in d.reasons if r.kind == "consent"] == ["no personalization consent: default content"]
    d2 = eng.decide(view("ada", "coats-2", T0 + 11 * MIN), placement="top")  # withdrawal persists
    assert not d2.personalized
    after = (eng.profiles.fid_[row], eng.profiles.score_[row], int(eng.profiles.t_[row]))
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]
    # granting it again personalises again, from the interests kept before
    d3 = eng.decide(view("ada", "bags-1", T0 + 12 * MIN, consent={"personalization": True}), placement="top")
    assert d3.personalized and d3.reasons[0].detail == "category=bags"


def test_popular_policy_is_not_personalised() -> None:
    eng = make_engine()
    for k in range(30):
        eng.track(view(f"u{k}", "coats-3" if k % 3 else "bags-2", T0 + k * MIN))
    for j in range(6):
        eng.track(view("ada", f"hats-{j}", T0 + (40 + j) * MIN))
    d = eng.decide(view("ada", "hats-0", T0 + 50 * MIN), placement="popular")
    assert not d.personalized and d.policy == "popular"
    assert [s.content for s in d.slots][:2] == ["coats-3", "bags-2"]


# ---------------------------------------------------------------- campaigns and outcomes

def test_campaign_thompson_learns_the_best_experience_from_clicks() -> None:
    eng = make_engine(seed=11)
    rates = {"spring": 0.04, "summer": 0.25, "autumn": 0.08}
    rng = np.random.default_rng(5)
    picks = []
    for k in range(2500):
        d = eng.decide({"type": "identify", "time": T0 + k * MIN, "ids": {"cookie": f"v{k % 300}"}}, placement="hero")
        assert d.policy == "thompson" and len(d.slots) == 1 and 0 < d.slots[0].propensity <= 1
        assert not d.personalized and d.candidates == 3
        picks.append(d.slots[0].content)
        if rng.random() < rates[d.slots[0].content]:
            eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0 + k * MIN + 1})
    last = picks[-800:]
    # summer (0.25 vs <= 0.08) wins >= 85% of the last 800 decisions
    assert last.count("summer") / len(last) >= 0.85
    bandit = eng.placement("hero").bandit
    assert bandit is not None and int(np.argmax(bandit.means())) == 1
    assert (bandit.successes_ <= bandit.trials_).all()


def test_campaign_dates_limit_eligibility() -> None:
    placements = [{"name": "hero", "kind": "campaign", "experiences": [
        {"id": "old", "end": T0}, {"id": "now", "start": T0, "end": T0 + 10 * MIN}, {"id": "later", "start": T0 + 10 * MIN}]}]
    eng = make_engine(placements=placements)  # type: ignore[arg-type]
    for k in range(20):
        d = eng.decide({"type": "identify", "time": T0 + k % 10 * MIN, "ids": {"cookie": "a"}}, placement="hero")
        assert [s.content for s in d.slots] == ["now"] and d.slots[0].propensity == 1.0 and d.candidates == 1
    d = eng.decide({"type": "identify", "time": T0 + 20 * MIN, "ids": {"cookie": "a"}}, placement="hero")
    assert [s.content for s in d.slots] == ["later"]


def test_observe_rewards_the_clicked_slot() -> None:
    eng = make_engine()
    d = eng.decide(view("ada", "hats-1", T0), placement="top")
    pl = eng.placement("top")
    clicked = d.slots[2].content
    i = eng.catalog.index[clicked]
    extra_before = pl.state.extra[i]
    eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0 + 1, "content": clicked})
    assert pl.state.clicks[i] == 1.0 and pl.state.trials[i] == 1.0 and pl.state.extra[i] > extra_before
    eng.observe({"decision_id": d.decision_id, "kind": "conversion", "time": T0 + 2, "content": clicked, "value": 30.0})
    assert eng.decision_log.column("reward").tolist() == [0.0, 0.0, 31.0, 0.0]
    eng.observe(msgspec.json.encode({"decision_id": d.decision_id, "kind": "click", "time": T0 + 3}))  # first slot
    assert eng.decision_log.column("reward").tolist() == [1.0, 0.0, 31.0, 0.0]
    assert pl.state.clicks[i] == 1.0  # clicks never exceed exposures


def test_observe_errors_change_nothing() -> None:
    eng = busy_engine()
    d = eng.decide(view("ada", "hats-1", T0 + 200 * MIN), placement="top")
    before = snapshot(eng)
    with pytest.raises(UnknownDecisionError, match="^" + re.escape("Expected a pending decision id, got 'd-999' - at `$.decision_id`") + "$"):
        eng.observe({"decision_id": "d-999", "kind": "click", "time": T0})
    names = [s.content for s in d.slots]
    msg = f"Expected `content` to be one of {names!r}, got 'coats-0' - at `$.content`"
    with pytest.raises(SchemaError, match="^" + re.escape(msg) + "$"):
        eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0, "content": "coats-0"})
    with pytest.raises(SchemaError, match=full_match(Wrapped("Invalid outcome", at="$.kind", mentions=("like",)))):
        eng.observe({"decision_id": d.decision_id, "kind": "like", "time": T0})
    with pytest.raises(SchemaError, match=full_match(Wrapped("Invalid outcome", at="$.value"))):
        eng.observe({"decision_id": d.decision_id, "kind": "conversion", "time": T0, "value": float("nan")})
    assert_same_state(before, snapshot(eng))


def test_pending_decisions_are_bounded() -> None:
    eng = make_engine(limits={"max_pending_decisions": 2})
    ids = [eng.decide(view("ada", "hats-1", T0 + k), placement="top").decision_id for k in range(3)]
    with pytest.raises(UnknownDecisionError, match=re.escape("got 'd-0'")):
        eng.observe({"decision_id": ids[0], "kind": "click", "time": T0 + 9})
    eng.observe({"decision_id": ids[2], "kind": "click", "time": T0 + 9})


# ---------------------------------------------------------------- identity through the engine

def test_anonymous_browsing_merges_into_the_known_person_at_login() -> None:
    eng = make_engine()
    # the known person: a purchase of bags earlier, on another device
    eng.track({"type": "purchase", "time": T0, "ids": {"email": "ada@example.com", "device": "phone-1"}, "item": "bags-3"})
    known = eng.profile_row({"email": "ada@example.com"})
    # anonymous browsing of coats on a laptop cookie
    for j in range(8):
        eng.track(view("laptop", f"coats-{j}", T0 + (1 + j) * MIN))
    anon = eng.profile_row({"cookie": "laptop"})
    assert anon != known and anon >= 0
    row = eng.track({"type": "identify", "time": T0 + 20 * MIN, "ids": {"cookie": "laptop", "email": " ADA@example.com"}})
    assert row == known  # the known person's component is larger (2 identifiers): it survives
    for ids in ({"cookie": "laptop"}, {"email": "ada@example.com"}, {"device": "phone-1"}):
        assert eng.profile_row(ids) == known
    interests = dict(eng.interests({"email": "ada@example.com"}, now=T0 + 20 * MIN))
    assert "category=coats" in interests and "category=bags" in interests
    assert interests["category=coats"] > interests["category=bags"]  # 8 views vs 1 purchase x 8 weight, decayed
    # the purchase follows the person: never recommended on the laptop either
    for k in range(10):
        d = eng.decide(view("laptop", "coats-1", T0 + (30 + k) * MIN), placement="home")
        assert "bags-3" not in {s.content for s in d.slots}
        assert d.profile == known
    # the absorbed row was cleared and is recycled for the next new person
    assert eng.profiles.events_[anon] == 0 and (eng.profiles.fid_[anon] == -1).all()
    assert eng.track(view("newcomer", "hats-1", T0 + 50 * MIN)) == anon
    fresh = dict(eng.interests({"cookie": "newcomer"}, now=T0 + 50 * MIN))
    assert "category=hats" in fresh and not any(k.startswith("category=") and k != "category=hats" for k in fresh)


def test_merge_of_consent_is_most_restrictive() -> None:
    eng = make_engine()
    eng.track({"type": "identify", "time": T0, "ids": {"email": "bo@x.io", "user_id": "bo"}, "consent": {"personalization": False}})
    eng.track(view("bo-cookie", "hats-1", T0 + MIN))
    d = eng.decide({"type": "identify", "time": T0 + 2 * MIN, "ids": {"cookie": "bo-cookie", "email": "bo@x.io"}}, placement="home")
    assert not d.personalized


def test_track_returns_rows_and_track_many() -> None:
    eng = make_engine()
    rows = eng.track_many([view("a", "hats-1", T0), view("b", "hats-1", T0 + 1), view("a", "hats-2", T0 + 2)])
    assert rows.dtype == np.int32 and rows.tolist() == [0, 1, 0]
    assert eng.profile_row({"cookie": "zz"}) == -1 and eng.interests({"cookie": "zz"}, now=T0) == []


def test_engine_from_files(tmp_path: Any) -> None:
    cfg = tmp_path / "t3_config.toml"
    cfg.write_text(f'[identity]\nhash_key = "{KEY}"\n\n[[placements]]\nname = "home"\nkind = "recommendation"\nslots = 2\n')
    cat = tmp_path / "t3_catalog.jsonl"
    cat.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in items()))
    eng = Engine.from_files(cfg, cat, seed=1)
    assert eng.catalog.n_items == 48 and eng.placements == ["home"]
    assert len(eng.decide(view("a", "hats-1", T0), placement="home").slots) == 2


# ---------------------------------------------------------------- malformed events change nothing

GOOD = view("p3", "bags-2", T0 + 300 * MIN)

MALFORMED: list[tuple[str, Any, str, type[DecisionerError], str | Wrapped]] = [
    ("wrong type", {**GOOD, "time": "noon"}, "home", SchemaError,
     Wrapped("Invalid event", at="$.time")),
    ("missing field", {"type": "view", "time": T0, "item": "bags-2"}, "home", SchemaError,
     Wrapped("Invalid event", mentions=("ids",))),
    ("unknown field", {**GOOD, "colour": "red"}, "home", SchemaError,
     Wrapped("Invalid event", mentions=("colour",))),
    ("unknown event type", {**GOOD, "type": "teleport"}, "home", SchemaError,
     Wrapped("Invalid event", at="$.type", mentions=("teleport",))),
    ("NaN value", {**GOOD, "value": float("nan")}, "home", SchemaError,
     Wrapped("Invalid event", at="$.value")),
    ("NaN attr", {**GOOD, "attrs": {"dwell": float("nan")}}, "home", SchemaError,
     "Invalid event: Expected a finite number, got nan - at `$.attrs.dwell`"),
    ("absurd timestamp (seconds)", {**GOOD, "time": 1_700_000_000}, "home", SchemaError,
     Wrapped("Invalid event", at="$.time", mentions=("946684800000",))),
    ("absurd timestamp (year 9999)", {**GOOD, "time": 253_402_300_799_000}, "home", SchemaError,
     Wrapped("Invalid event", at="$.time", mentions=("4102444800000",))),
    ("absurd timestamp in JSON", msgspec.json.encode({**GOOD, "time": -62_135_596_800_000}), "home", SchemaError,
     Wrapped("Invalid event", at="$.time", mentions=("946684800000",))),
    ("invalid UTF-8", b'{"type":"view","time":1700000000000,"ids":{"cookie":"\xfe"}}', "home", SchemaError,
     "Invalid event: expected UTF-8 text, got an invalid byte b'\\xfe' at position 53 - at `$`"),
    ("oversized", msgspec.json.encode({**GOOD, "attrs": {f"k{i}": "v" * 100 for i in range(20)}}), "home", SchemaError,
     "Expected an event payload of at most 1024 bytes, got {size} - at `$`"),
    ("unknown placement", GOOD, "sidebar", UnknownPlacementError,
     "Expected a configured placement in ['hero', 'home', 'popular', 'top'], got 'sidebar' - at `placement`"),
    ("unknown item", {**GOOD, "item": "bags-99"}, "home", UnknownItemError,
     "Expected an item id in the catalog, got 'bags-99' - at `$.item`"),
    ("unknown purchase item", {**GOOD, "type": "purchase", "item": None, "items": ["bags-1", "nope"]}, "home", UnknownItemError,
     "Expected an item id in the catalog, got 'nope' - at `$.items[1]`"),
    ("bad email", {**GOOD, "ids": {"cookie": "p3", "email": "p3-at-x.io"}}, "home", SchemaError,
     "Expected an email address, got 'p3-at-x.io' - at `$.ids.email`"),
    ("control character", {**GOOD, "ids": {"cookie": "p3\x00"}}, "home", SchemaError,
     "Expected an identifier without control characters, got 'p3\\x00' - at `$.ids.cookie`"),
    ("new id type before a bad one", {**GOOD, "ids": {"loyalty": "L-1", "phone": "12"}}, "home", SchemaError,
     "Expected a valid phone number (with +country code, or national in region 'US'), got '12' - at `$.ids.phone`"),
    ("blank identifier", {**GOOD, "ids": {"cookie": "  "}}, "home", SchemaError,
     "Expected a non-empty identifier, got '  ' - at `$.ids.cookie`"),
    ("too many identifiers", {**GOOD, "ids": {f"t{i}": "v" for i in range(40)}}, "home", SchemaError,
     Wrapped("Invalid event", at="$.ids", mentions=("32",))),
    ("not an event", ["view"], "home", SchemaError,
     "Expected a `dict`, JSON `bytes` or an event Struct, got `list` - at `$`"),
]


CASES = [(call, *m[1:]) for m in MALFORMED for call in ("decide", "track") if call == "decide" or m[3] is not UnknownPlacementError]


@pytest.mark.parametrize(
    ("call", "payload", "placement", "error", "msg"),
    CASES,
    ids=[f"{call}-{m[0]}" for m in MALFORMED for call in ("decide", "track") if call == "decide" or m[3] is not UnknownPlacementError],
)
def test_malformed_event_raises_and_changes_nothing(
    call: str, payload: Any, placement: str, error: type[DecisionerError], msg: str | Wrapped
) -> None:
    eng = busy_engine()
    if isinstance(payload, bytes) and isinstance(msg, str):
        msg = msg.replace("{size}", str(len(payload)))
    run: Callable[[], Any] = (
        (lambda: eng.decide(payload, placement=placement)) if call == "decide" else (lambda: eng.track(payload))
    )
    before = snapshot(eng)
    with pytest.raises(error, match=full_match(msg)):
        run()
    assert_same_state(before, snapshot(eng))
    # the engine still serves a good event
    d = eng.decide(GOOD, placement="home")
    assert len(d.slots) == 4 and len({s.content for s in d.slots}) == 4
    assert d.decision_id == f"d-{before['seq_']}" and d.personalized
    assert eng.seq_ == before["seq_"] + 1
