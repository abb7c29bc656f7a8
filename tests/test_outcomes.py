"""Outcomes: idempotent per (decision, slot, kind), dated within the attribution window, and
pending decisions that expire with it - the same after a log replay and a snapshot."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import DAY_MS, OutcomesSpec, load_config_dict
from decisioner.errors import ConfigError, SchemaError, UnknownDecisionError
from decisioner.journal import ObserveOp, read_records
from decisioner.outcomes import NEVER, PendingOutcomes
from statecheck import assert_same, engine_state

T0 = 1_700_000_000_000
KEY = "0c" * 16
WEEK = 7 * DAY_MS

PLACEMENTS: list[dict[str, Any]] = [
    {"name": "top", "kind": "recommendation", "slots": 3, "policy": {"kind": "greedy"}},
    {"name": "hero", "kind": "campaign", "policy": {"kind": "thompson"}, "experiences": [{"id": "a"}, {"id": "b"}]},
    # one arm: every decision shows it, so its mean is the mean revenue per decision
    {"name": "rev", "kind": "campaign", "policy": {"kind": "gaussian_thompson"}, "experiences": [{"id": "offer"}]},
]


def make_engine(**config: Any) -> Engine:
    cfg = load_config_dict({"identity": {"hash_key": KEY}, "placements": PLACEMENTS, **config})
    cat = Catalog([{"id": f"i{j}", "category": f"c{j % 3}", "inventory": 9} for j in range(12)], cfg.catalog)
    return Engine(cfg, cat, seed=4)


def view(who: str, t: int) -> dict[str, Any]:
    return {"type": "view", "time": t, "ids": {"cookie": who}, "item": "i1"}


def click(decision_id: str, t: int, content: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"decision_id": decision_id, "kind": "click", "time": t}
    if content is not None:
        out["content"] = content
    return out


def full_state(eng: Engine) -> dict[str, Any]:
    """statecheck's arrays plus the pending table's own metadata (entries and counters)."""
    return {**engine_state(eng), "pending_meta": repr(eng.pending_.to_state()[1])}


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.pop("pending_meta") == b.pop("pending_meta")
    assert_same(a, b)


# ---------------------------------------------------------------- idempotency

def test_five_identical_clicks_reward_once_and_count_four_duplicates() -> None:
    eng = make_engine()
    d = eng.decide(view("ada", T0), placement="top")
    slot = d.slots[1].content
    for _ in range(5):
        eng.observe(click(d.decision_id, T0 + 1, slot))
    assert eng.decision_log.column("reward").tolist() == [0.0, 1.0, 0.0]
    assert eng.duplicate_outcomes_ == 4
    pl = eng.placement("top")
    assert pl.state is not None and pl.state.clicks[eng.catalog.index[slot]] == 1.0
    h = eng.decide(view("bo", T0), placement="hero")
    for _ in range(5):
        eng.observe(click(h.decision_id, T0 + 1))
    bandit = eng.placement("hero").bandit
    assert bandit is not None and bandit.successes_.sum() == 1.0 and bandit.trials_.sum() == 1.0
    assert eng.duplicate_outcomes_ == 8


def test_five_identical_conversions_leave_a_revenue_arm_at_its_true_mean() -> None:
    eng = make_engine()
    bought = eng.decide(view("ada", T0), placement="rev")
    eng.decide(view("bo", T0), placement="rev")  # shown, never bought
    for _ in range(5):
        eng.observe({"decision_id": bought.decision_id, "kind": "conversion", "time": T0 + 5, "value": 100.0})
    stats = eng.placement("rev").bandit.stats_  # type: ignore[union-attr]
    assert stats.counts_.tolist() == [2.0] and stats.sums_.tolist() == [100.0]
    assert stats.sums_[0] / stats.counts_[0] == 50.0
    assert eng.decision_log.column("reward").tolist() == [100.0, 0.0]
    assert eng.duplicate_outcomes_ == 4


def test_a_repeat_with_another_value_is_still_a_duplicate() -> None:
    eng = make_engine()
    d = eng.decide(view("ada", T0), placement="rev")
    eng.observe({"decision_id": d.decision_id, "kind": "conversion", "time": T0 + 5, "value": 100.0})
    eng.observe({"decision_id": d.decision_id, "kind": "conversion", "time": T0 + 6, "value": 40.0})
    assert eng.decision_log.column("reward").tolist() == [100.0] and eng.duplicate_outcomes_ == 1


def test_distinct_kinds_and_slots_each_count_once() -> None:
    eng = make_engine()
    d = eng.decide(view("ada", T0), placement="top")
    names = [s.content for s in d.slots]
    eng.observe(click(d.decision_id, T0 + 1, names[0]))
    eng.observe(click(d.decision_id, T0 + 1, names[2]))
    eng.observe({"decision_id": d.decision_id, "kind": "conversion", "time": T0 + 2, "content": names[0], "value": 7.0})
    assert eng.decision_log.column("reward").tolist() == [8.0, 0.0, 1.0] and eng.duplicate_outcomes_ == 0
    eng.observe(click(d.decision_id, T0 + 3))  # no content: the first slot, clicked already
    eng.observe({"decision_id": d.decision_id, "kind": "conversion", "time": T0 + 4, "value": 3.0})  # likewise
    assert eng.decision_log.column("reward").tolist() == [8.0, 0.0, 1.0] and eng.duplicate_outcomes_ == 2
    other = eng.decide(view("ada", T0 + 10), placement="top")  # same slot of another decision: counts
    eng.observe(click(other.decision_id, T0 + 11))
    assert eng.decision_log.column("reward").tolist()[3:] == [1.0, 0.0, 0.0] and eng.duplicate_outcomes_ == 2


def test_a_duplicate_changes_nothing_but_its_counter_and_is_logged(tmp_path: Path) -> None:
    eng = make_engine()
    eng.attach_log(tmp_path / "events.log")
    d = eng.decide(view("ada", T0), placement="top")
    eng.observe(click(d.decision_id, T0 + 1))
    before = full_state(eng)
    eng.observe(click(d.decision_id, T0 + 2))
    after = full_state(eng)
    changed = {k for k, v in before.items() if isinstance(v, np.ndarray) and not np.array_equal(v, after[k])}
    assert changed == {"counters", "outcomes"}  # ops_ and duplicates: the clock did not move
    assert after["outcomes"].tolist() == [1, 0, T0 + 1, 1]
    eng.detach_log()
    assert [type(r.op) for r in read_records(tmp_path / "events.log")][-2:] == [ObserveOp, ObserveOp]


# ---------------------------------------------------------------- dates and the window

def test_an_outcome_before_its_decision_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    eng = make_engine()
    log = tmp_path / "events.log"
    eng.attach_log(log)
    d = eng.decide(view("ada", T0), placement="top")
    before = full_state(eng)
    msg = f"Expected `time` at or after the decision's time {T0}, got {T0 - 1} - at `$.time`"
    with pytest.raises(SchemaError, match="^" + re.escape(msg) + "$"):
        eng.observe(click(d.decision_id, T0 - 1))
    same(before, full_state(eng))
    eng.detach_log()
    assert len(read_records(log)) == 1  # the decision only


def test_an_outcome_after_the_window_is_refused_and_the_boundary_is_inside() -> None:
    eng = make_engine(outcomes={"attribution_window_days": 2})
    d = eng.decide(view("ada", T0), placement="top")
    before = full_state(eng)
    end = T0 + 2 * DAY_MS
    msg = (f"Expected `time` at most {end} (the decision's time {T0} + the attribution window of 2 days), "
           f"got {end + 1} - at `$.time`")
    with pytest.raises(SchemaError, match="^" + re.escape(msg) + "$"):
        eng.observe(click(d.decision_id, end + 1))
    same(before, full_state(eng))
    eng.observe(click(d.decision_id, end))
    assert eng.decision_log.column("reward").tolist() == [1.0, 0.0, 0.0]


def test_decisions_past_the_window_expire_and_say_so() -> None:
    eng = make_engine()
    old = eng.decide(view("ada", T0), placement="top")
    kept = eng.decide(view("bo", T0 + DAY_MS), placement="top")
    assert len(eng.pending_) == 2 and eng.pending_.expired_ == 0
    eng.decide(view("cy", T0 + WEEK + 1), placement="top")  # the clock passes the first decision's window
    assert len(eng.pending_) == 2 and eng.pending_.expired_ == 1 and eng.pending_.get(old.decision_id) is None
    msg = ("Expected a pending decision id, got 'd-0', a decision past its attribution window of 7 days "
           "(`outcomes.attribution_window_days`) - at `$.decision_id`")
    with pytest.raises(UnknownDecisionError, match="^" + re.escape(msg) + "$"):
        eng.observe(click(old.decision_id, T0 + 5))
    eng.observe(click(kept.decision_id, T0 + WEEK + 2))  # within its own window
    # an accepted outcome moves the clock too
    eng.observe(click(kept.decision_id, T0 + DAY_MS + WEEK, kept.slots[1].content))
    assert eng.pending_.now_ == T0 + DAY_MS + WEEK and len(eng.pending_) == 2
    eng.observe(click("d-2", T0 + DAY_MS + WEEK + 1))
    assert eng.pending_.get(kept.decision_id) is None and eng.pending_.expired_ == 2


def test_a_late_decision_behind_newer_ones_is_expired_though_still_held() -> None:
    eng = make_engine()
    eng.decide(view("ada", T0 + 2 * WEEK), placement="top")
    late = eng.decide(view("bo", T0), placement="top")  # an old event arriving after newer ones
    assert eng.pending_.get(late.decision_id) is not None  # not at the front: dropped later
    with pytest.raises(UnknownDecisionError, match=re.escape("got 'd-1', a decision past its attribution window")):
        eng.observe(click(late.decision_id, T0 + 1))


def test_the_capacity_bound_and_the_window_are_told_apart() -> None:
    eng = make_engine(limits={"max_pending_decisions": 2})
    for k in range(3):
        eng.decide(view("ada", T0 + k), placement="top")
    bound = ("Expected a pending decision id, got 'd-0', a decision dropped for the bound of 2 "
             "(`limits.max_pending_decisions`) - at `$.decision_id`")
    with pytest.raises(UnknownDecisionError, match="^" + re.escape(bound) + "$"):
        eng.observe(click("d-0", T0 + 9))
    eng.decide(view("ada", T0 + WEEK + 3), placement="top")  # d-1 and d-2 pass the window
    assert eng.pending_.expired_ == 2
    with pytest.raises(UnknownDecisionError, match=re.escape("got 'd-1', a decision past its attribution window")):
        eng.observe(click("d-1", T0 + 9))
    with pytest.raises(UnknownDecisionError, match=re.escape("got 'd-0', a decision past its attribution window of "
                                                             "7 days (`outcomes.attribution_window_days`) or dropped")):
        eng.observe(click("d-0", T0 + 9))  # older than the last drop of each kind
    for unknown in ("d-99", "x-1", "nope"):
        with pytest.raises(UnknownDecisionError, match="^" + re.escape(
                f"Expected a pending decision id, got {unknown!r} - at `$.decision_id`") + "$"):
            eng.observe(click(unknown, T0 + 9))


def test_pending_outcomes_alone() -> None:
    p = PendingOutcomes(capacity=10, window_ms=100)
    assert p.now_ == NEVER and p.dropped("d-0") is None
    from decisioner.outcomes import Pending

    for k in range(5):
        p.add(f"d-{k}", Pending(0, k, 1, -1, 0.0, None, 1000 + 60 * k))
    assert len(p) == 2 and p.expired_ == 3 and p.now_ == 1240  # 1240 - 100 > 1120: d-0..d-2 gone
    assert [p.dropped(f"d-{k}") for k in range(5)] == ["expired"] * 3 + [None] * 2


# ---------------------------------------------------------------- replay and snapshots

def workload(eng: Engine) -> None:
    """Decisions over three weeks with outcomes, duplicates and refused outcomes."""
    for k in range(60):
        t = T0 + k * 9 * 3_600_000  # every 9 hours: decisions expire along the way
        d = eng.decide(view(f"p{k % 7}", t), placement=("top", "hero", "rev")[k % 3])
        if k % 2 == 0 and d.slots:
            eng.observe(click(d.decision_id, t + 1))
            eng.observe(click(d.decision_id, t + 2))  # a duplicate
            eng.observe({"decision_id": d.decision_id, "kind": "conversion", "time": t + 3, "value": 10.0 + k})
        expired = f"d-{k - 25}" if k >= 25 else "zz-1"  # 25 x 9 hours: past the window
        for bad in (click(d.decision_id, t - 1), click(d.decision_id, t + WEEK + 1), click(expired, t)):
            with contextlib.suppress(SchemaError, UnknownDecisionError):
                eng.observe(bad)


def test_a_log_replay_with_duplicates_and_refusals_gives_identical_state(tmp_path: Path) -> None:
    live = make_engine()
    live.attach_log(tmp_path / "events.log")
    workload(live)
    live.detach_log()
    assert live.duplicate_outcomes_ == 30 and live.pending_.expired_ > 0
    again = make_engine()
    again.replay_records(read_records(tmp_path / "events.log"))
    same(full_state(live), full_state(again))
    for eng in (live, again):  # and they continue alike: the duplicates are recognised in both
        eng.observe(click("d-58", T0 + 58 * 9 * 3_600_000 + 5))
        assert eng.duplicate_outcomes_ == 31
    same(full_state(live), full_state(again))


def test_a_snapshot_round_trip_keeps_the_pending_outcomes(tmp_path: Path) -> None:
    live = make_engine(outcomes={"attribution_window_days": 3})
    workload(live)
    live.save(tmp_path / "snap")
    back = Engine.open(tmp_path / "snap", hash_key=KEY, flush="off")
    assert back.config.outcomes.attribution_window_days == 3.0 and back.pending_.window_ms == 3 * DAY_MS
    same(full_state(live), full_state(back))
    t = T0 + 60 * 9 * 3_600_000
    for eng in (live, back):
        eng.observe(click("d-58", t - 9 * 3_600_000 * 2 + 5))  # clicked before the snapshot: a duplicate
        d = eng.decide(view("ada", t), placement="top")
        eng.observe(click(d.decision_id, t + 1))
    same(full_state(live), full_state(back))


def test_a_snapshot_written_before_the_window_is_read_with_times_from_the_decision_log() -> None:
    live = make_engine()
    ids = [live.decide(view("ada", T0 + k * DAY_MS), placement=("top", "hero")[k % 2]).decision_id for k in range(4)]
    live.observe(click(ids[1], T0 + DAY_MS + 1))
    states = live.to_state()
    meta = states["pending"][1]
    assert [x[1:] for x in meta["items"]] == [list(e[:6]) for e in live.pending_.values()]  # the old layout
    states["pending"] = ({}, {"items": meta["items"]})  # what a snapshot before issue 10 held
    old = Engine(live.config, live.catalog, seed=4, identity=live.identity)
    old.load_state(states)
    assert [e.time for e in old.pending_.values()] == [T0 + k * DAY_MS for k in range(4)]
    assert old.pending_.now_ == T0 + 3 * DAY_MS and old.duplicate_outcomes_ == 0
    with pytest.raises(SchemaError, match=re.escape("Expected `time` at or after the decision's time")):
        old.observe(click(ids[2], T0))
    old.observe(click(ids[2], T0 + 2 * DAY_MS + 1))
    assert old.decision_log.column("reward").tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]


# ---------------------------------------------------------------- configuration

def test_the_window_is_configuration_with_a_default_of_seven_days() -> None:
    assert OutcomesSpec().attribution_window_days == 7.0 and OutcomesSpec().window_ms == WEEK
    assert make_engine().pending_.window_ms == WEEK
    assert make_engine(outcomes={"attribution_window_days": 0.5}).pending_.window_ms == DAY_MS // 2
    for bad in (0, -1, 40_000, float("inf"), float("nan")):
        msg = f"`attribution_window_days` must be in (0, 36500], got {float(bad)!r}"
        with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
            OutcomesSpec(attribution_window_days=float(bad))
    with pytest.raises(ConfigError, match="^" + re.escape(
            "Invalid config: `attribution_window_days` must be in (0, 36500], got 0.0 - at `$.outcomes`") + "$"):
        load_config_dict({"outcomes": {"attribution_window_days": 0}})
    with pytest.raises(ConfigError, match=re.escape("attribution_window")):
        load_config_dict({"outcomes": {"attribution_window": 3}})
