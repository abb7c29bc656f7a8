"""Outbound messages: consent, frequency caps across batches, quiet hours in the person's time
zone, decisions joined by outcomes, the send history through merges, erasure, snapshots and the
log, and bad input that changes nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner._kernels.rng import seed_state
from decisioner.catalog import Catalog
from decisioner.config import load_config_dict
from decisioner.engine import Engine
from decisioner.errors import ConfigError, SchemaError, UnknownPlacementError
from decisioner.outbound import NEVER, SendHistory, draw, uniforms

DAY = 86_400_000
HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % DAY + 12 * HOUR  # noon UTC
KEY = "ab" * 16
_M = (1 << 64) - 1
ALL = 'consent("analytics")'  # everyone here


def _config(**outbound: Any) -> dict[str, Any]:
    return {
        "identity": {"hash_key": KEY},
        "attributes": {"tz": {"type": "category"}},
        "placements": [
            {"name": "promo", "kind": "campaign", "channel": "email", "policy": {"kind": "thompson"},
             "experiences": [{"id": "a"}, {"id": "b"}, {"id": "c"}], "default": "a"},
            {"name": "home", "kind": "recommendation"},
        ],
        "outbound": outbound or {"caps": {"email": {"max": 2, "days": 7}, "sms": {"max": 1, "days": 1}},
                                 "quiet": {"sms": ["21:00", "08:00"]}, "timezone_attribute": "tz"},
    }


def _engine(cfg: dict[str, Any] | None = None, seed: int = 0) -> Engine:
    return Engine(load_config_dict(cfg or _config()), Catalog([{"id": "i0", "category": "c"}]), seed=seed)


def _people(eng: Engine, n: int, *, t: int = T0 - DAY, **extra: Any) -> list[int]:
    for j in range(n):
        eng.track({"type": "identify", "time": t, "ids": {"crm_id": f"p{j}"}, **extra})
    return [eng.person_id({"crm_id": f"p{j}"}) for j in range(n)]


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
    return z ^ (z >> 31)


def test_uniforms_are_the_first_draw_of_each_decision_stream() -> None:
    for seed in (0, 7, 2**40 + 3):
        seqs = np.array([0, 1, 2, 999, 10**9], dtype=np.int64)
        want = [(_mix((int(seed_state(seed, int(s))[0]) + 0x9E3779B97F4A7C15) & _M) >> 11) * 2.0**-53 for s in seqs]
        assert uniforms(seed, seqs).tolist() == want
    p = np.array([0.0, 0.25, 0.0, 0.75])
    assert draw(p, np.array([0.0, 0.2499, 0.25, 0.9999999])).tolist() == [1, 1, 3, 3]


def test_send_history_keeps_the_newest_sends_through_merges() -> None:
    h = SendHistory(load_config_dict(_config()).outbound, capacity=1)
    h.ensure(3)
    h.record(np.array([0, 1]), 0, 100)
    h.record(np.array([0]), 0, 300)
    h.record(np.array([1]), 0, 200)
    h.record(np.array([0]), 0, 50)  # older than both held: dropped
    assert h.sends_[0, 0].tolist() == [300, 100]
    h.merge(0, 1)
    assert h.sends_[0, 0].tolist() == [300, 200] and h.sends_[1, 0].tolist() == [NEVER, NEVER]
    assert h.counts(np.array([0, 1]), 0, 150).tolist() == [2, 0]
    assert h.export(0) == {"email": [300, 200]}


def test_consent_gates_marketing_and_personalization_gives_the_default() -> None:
    eng = _engine()
    _people(eng, 2)
    no_mkt = _people(eng, 1, consent={"marketing.email": False})  # p0 again: refuses marketing on email
    eng.track({"type": "identify", "time": T0 - DAY, "ids": {"crm_id": "q"}, "consent": {"personalization": False}})
    q = eng.person_id({"crm_id": "q"})
    batch = eng.outbound([*no_mkt, 1, q], placement="promo", channel="email", now=T0)
    assert [s.to_dict() for s in batch.skipped] == [{"person": no_mkt[0], "reason": "consent"}]
    by = {m.person: m for m in batch.sent}
    assert sorted(by) == [1, q]
    assert by[q].content == "a" and by[q].propensity == 1.0 and not by[q].personalized  # the default
    assert by[1].personalized and 0.0 < by[1].propensity <= 1.0
    assert batch.counts == {"audience": 3, "sent": 2, "consent": 1, "cap": 0, "quiet": 0, "no_content": 0}
    sms = eng.outbound([no_mkt[0]], placement="promo", channel="sms", now=T0)
    assert sms.counts["sent"] == 1  # marketing refused on email only


def test_caps_hold_across_batches_and_windows() -> None:
    eng = _engine()
    people = _people(eng, 5)
    assert eng.outbound(people, placement="promo", channel="email", now=T0).counts["sent"] == 5
    assert eng.outbound(people[:3], placement="promo", channel="email", now=T0 + DAY).counts["sent"] == 3
    third = eng.outbound(ALL, placement="promo", channel="email", now=T0 + 2 * DAY)
    assert {s.person: s.reason for s in third.skipped} == dict.fromkeys(people[:3], "cap")
    assert [m.person for m in third.sent] == people[3:]
    # 7 days after the first send it has left the window: one of two held sends counts
    later = eng.outbound(people[:1], placement="promo", channel="email", now=T0 + 7 * DAY + 1)
    assert later.counts["sent"] == 1
    assert eng.outbound(people[:1], placement="promo", channel="sms", now=T0).counts["sent"] == 1  # per channel
    assert eng.outbound(people[:1], placement="promo", channel="sms", now=T0 + DAY - 1).counts["cap"] == 1


def test_quiet_hours_follow_the_time_zone_attribute() -> None:
    eng = _engine()
    eng.set_attributes({"crm_id": "tokyo"}, {"tz": "Asia/Tokyo"}, source="crm", time=T0 - DAY)  # noon UTC: 21:00
    eng.set_attributes({"crm_id": "paris"}, {"tz": "Europe/Paris"}, source="crm", time=T0 - DAY)  # 13:00
    eng.set_attributes({"crm_id": "nowhere"}, {"tz": "Mars/Olympus"}, source="crm", time=T0 - DAY)  # default UTC
    ids = [eng.person_id({"crm_id": c}) for c in ("tokyo", "paris", "nowhere")]
    batch = eng.outbound(ids, placement="promo", channel="sms", now=T0)
    assert {s.person: s.reason for s in batch.skipped} == {ids[0]: "quiet"}
    assert eng.outbound(ids, placement="promo", channel="email", now=T0).counts["quiet"] == 0  # sms only
    cfg = _config(quiet={"push": ["09:00", "17:00"]}, default_timezone="America/New_York")
    eng2 = _engine(cfg)
    people = _people(eng2, 2)
    assert eng2.outbound(people, placement="promo", channel="push", now=T0).counts["sent"] == 2  # 07:00 there
    assert eng2.outbound(people, placement="promo", channel="push", now=T0 + 4 * HOUR).counts["quiet"] == 2  # 11:00


def test_messages_are_decisions_and_outcomes_join_them() -> None:
    eng = _engine()
    people = _people(eng, 40)
    batch = eng.outbound(people, placement="promo", channel="email", now=T0)
    assert [m.decision_id for m in batch.sent] == [f"d-{s}" for s in range(40)] and eng.seq_ == 40
    log = eng.decision_log
    assert log.column("person").tolist() == people and log.column("seq").tolist() == list(range(40))
    contents = {"a": 0, "b": 1, "c": 2}
    assert log.column("content").tolist() == [contents[m.content] for m in batch.sent]
    assert log.column("propensity").tolist() == [m.propensity for m in batch.sent]
    # the policy's distribution at the time of the batch, drawn with each decision's stream
    pl = eng.placement("promo")
    assert pl.bandit is not None and pl.bandit.counts.sum() == 40  # exposures counted
    m = batch.sent[7]
    eng.observe({"decision_id": m.decision_id, "kind": "click", "time": T0 + HOUR, "content": m.content})
    arm = contents[m.content]
    assert pl.bandit.stats_.sums_[arm] == 1.0
    assert log.column("reward").tolist()[7] == 1.0
    with pytest.raises(SchemaError, match=re.escape("Expected `content` to be one of")):
        eng.observe({"decision_id": batch.sent[8].decision_id, "kind": "click", "time": T0 + HOUR,
                     "content": next(c for c in contents if c != batch.sent[8].content)})
    d = eng.decide({"type": "view", "time": T0 + HOUR, "ids": {"crm_id": "p0"}}, placement="promo")
    assert d.decision_id == "d-40"  # one decision counter


def test_the_draws_follow_the_policy_distribution() -> None:
    eng = _engine(seed=3)
    pl = eng.placement("promo")
    assert pl.bandit is not None
    for arm, clicks in ((0, 2), (1, 30), (2, 5)):  # a posterior that prefers b
        for j in range(60):
            pl.bandit.update_one(arm, 1.0 if j < clicks else 0.0)
    people = _people(eng, 3000)
    p = pl.bandit.action_distribution(pl.eligible_experiences(T0))
    batch = eng.outbound(people, placement="promo", channel="email", now=T0)
    shares = np.bincount([ord(m.content) - ord("a") for m in batch.sent], minlength=3) / 3000
    assert np.abs(shares - p).max() < 0.03  # 3000 draws: sd <= 0.0092
    assert {m.content: m.propensity for m in batch.sent} == {c: float(p[i]) for i, c in enumerate("abc")
                                                              if c in {m.content for m in batch.sent}}


def test_merges_carry_the_send_history_and_erasure_clears_it() -> None:
    eng = _engine()
    for c in ("c0", "c1"):
        eng.track({"type": "view", "time": T0 - DAY, "ids": {"cookie": c}})
    a, b = (eng.person_id({"cookie": c}) for c in ("c0", "c1"))
    eng.outbound([a], placement="promo", channel="email", now=T0)
    eng.outbound([b], placement="promo", channel="email", now=T0 + HOUR)
    eng.track({"type": "identify", "time": T0 + 2 * HOUR, "ids": {"cookie": "c0", "email": "x@example.com"}})
    eng.track({"type": "identify", "time": T0 + 2 * HOUR, "ids": {"cookie": "c1", "email": "x@example.com"}})
    merged = eng.person_id({"cookie": "c0"})
    assert eng.person_id({"cookie": "c1"}) == merged
    assert eng.export({"cookie": "c0"})["sends"] == {"email": [T0 + HOUR, T0]}
    assert eng.outbound([a, b], placement="promo", channel="email", now=T0 + 3 * HOUR).counts == {
        "audience": 1, "sent": 0, "consent": 0, "cap": 1, "quiet": 0, "no_content": 0}
    row = eng.profile_row({"cookie": "c0"})
    eng.forget(row=row)
    assert (eng.sends_.sends_[row] == NEVER).all()
    with pytest.raises(SchemaError, match=re.escape(f"got {merged} (unknown, erased or evicted) - at `audience[0]`")):
        eng.outbound([merged], placement="promo", channel="email", now=T0 + 4 * HOUR)


def _choices(batch: Any) -> list[tuple[int, str, str, float]]:
    return [(m.person, m.decision_id, m.content, m.propensity) for m in batch.sent]


def test_snapshot_and_log_round_trips_give_identical_next_choices(tmp_path: Path) -> None:
    eng = _engine(seed=5)
    people = _people(eng, 300)
    eng.durable(tmp_path / "d")
    eng.outbound(people[:200], placement="promo", channel="email", now=T0)
    for m in eng.outbound(people[100:], placement="promo", channel="email", now=T0 + DAY).sent[::7]:
        eng.observe({"decision_id": m.decision_id, "kind": "click", "time": T0 + DAY + 1, "content": m.content})
    eng.detach_log()
    replayed = Engine.open(tmp_path / "d", hash_key=KEY, flush="off")  # the snapshot, then the log
    eng.save(tmp_path / "s")
    snap = Engine.open(tmp_path / "s", hash_key=KEY, flush="off")
    n = eng.identity.n_rows
    for other in (replayed, snap):
        assert (other.sends_.sends_[:n] == eng.sends_.sends_[:n]).all() and other.seq_ == eng.seq_
    want = _choices(eng.outbound(ALL, placement="promo", channel="email", now=T0 + 2 * DAY))
    assert len(want) == 200  # people 100..199 are at their cap
    for other in (replayed, snap):
        assert _choices(other.outbound(ALL, placement="promo", channel="email", now=T0 + 2 * DAY)) == want


def test_a_rejected_call_changes_nothing(tmp_path: Path) -> None:
    cfg = _config()
    cfg["segments"] = {"all": 'consent("analytics")'}
    cfg["placements"][0]["segment"] = "all"
    cfg["placements"].append({"name": "promo2", "kind": "campaign", "experiences": [{"id": "z"}]})
    eng = _engine(cfg)
    people = _people(eng, 3)
    eng.durable(tmp_path / "d")
    before = (eng.ops_, eng.seq_, len(eng.decision_log), len(eng.pending_), eng.sends_.sends_.copy())
    bad: list[tuple[Any, dict[str, Any], type[Exception], str]] = [
        (people, {"placement": "nope"}, UnknownPlacementError, "got 'nope' - at `placement`"),
        (people, {"placement": "home"}, SchemaError, "Expected a campaign placement, got 'home' (a recommendation)"),
        (people, {"placement": "promo"}, SchemaError, "Expected a campaign placement without a segment or segment "
                                                      "rules (outbound batches do not target them), got 'promo'"),
        (people, {"channel": "fax"}, SchemaError, "Expected a channel in ['email', 'sms', 'push'], got 'fax'"),
        (people, {"now": 5}, SchemaError, "Expected `now` in"),
        ([people[0], -1], {}, SchemaError, "Expected a person id >= 0, got -1 - at `audience[1]`"),
        ([people[0], 99], {}, SchemaError, "got 99 (unknown, erased or evicted) - at `audience[1]`"),
        ([people[0], "x"], {}, SchemaError, "Expected a person id (an int), got 'x' - at `audience[1]`"),
        (3, {}, SchemaError, "Expected a segment expression (a str) or a list of person ids, got `int`"),
        ("nonsense(", {}, SchemaError, "at position"),
    ]
    for audience, kw, exc, msg in bad:
        args = {"placement": "promo2", "channel": "email", "now": T0, **kw}
        with pytest.raises(exc, match=re.escape(msg)):
            eng.outbound(audience, **args)
    after = (eng.ops_, eng.seq_, len(eng.decision_log), len(eng.pending_), eng.sends_.sends_)
    assert after[:4] == before[:4] and (after[4] == before[4]).all()
    assert eng.outbound(people, placement="promo2", channel="email", now=T0).counts["sent"] == 3


def test_config_errors_say_what_and_where() -> None:
    for outbound, msg in (
        ({"caps": {"fax": {"max": 1, "days": 1}}}, "expected a channel in ['email', 'sms', 'push'], got 'fax' for "
                                                   "`outbound.caps`"),
        ({"quiet": {"sms": ["25:00", "08:00"]}}, "expected a local time \"HH:MM\", got '25:00' for "
                                                 "`outbound.quiet.sms`"),
        ({"default_timezone": "Mars/Base"}, "expected an IANA time zone name, got 'Mars/Base'"),
        ({"timezone_attribute": "zone"}, "expected `outbound.timezone_attribute` to name a declared `category` "
                                         "attribute, got 'zone'"),
    ):
        with pytest.raises(ConfigError, match=re.escape(msg)):
            load_config_dict(_config(**outbound))


def test_expose_many_is_expose_of_each() -> None:
    from decisioner.allocation import BernoulliThompson
    from decisioner.config import ThompsonSpec

    arms = np.array([2, 0, 2, 1, 2], dtype=np.int64)
    for spec in (ThompsonSpec(), ThompsonSpec(window=3)):
        one, many = BernoulliThompson(3, spec, seed=1), BernoulliThompson(3, spec, seed=1)
        for a in arms.tolist():
            one.expose(a)
        many.expose_many(arms)
        a1, m1 = one.to_state()
        a2, m2 = many.to_state()
        assert m1 == m2 and all((a1[k] == a2[k]).all() for k in a1)


def test_cli_outbound_on_a_generated_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from decisioner.cli import main

    assert main(["generate", "--people", "150", "--items", "40", "--out", str(tmp_path / "w"), "--json"]) == 0
    capsys.readouterr()
    args = ["outbound", "--world", str(tmp_path / "w"), "--segment", 'consent("marketing", "email")',
            "--placement", "email_hero", "--channel", "email"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    c = out["counts"]
    assert c["audience"] > 0 and c["sent"] == len(out["sent"]) and c["consent"] == 0  # the segment asks for it
    assert c["sent"] + c["cap"] + c["quiet"] + c["no_content"] == c["audience"]
    assert all(0.0 < m["propensity"] <= 1.0 and m["decision_id"].startswith("d-") for m in out["sent"])
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(f"outbound email from email_hero (thompson) at {out['time']}: "
                                              f"{c['sent']} of {c['audience']} sent; skipped: 0 consent")
    assert main([*args[:-4], "--placement", "home_recs", "--channel", "email"]) == 1
    assert capsys.readouterr().err.startswith("error: Expected a campaign placement, got 'home_recs'")


def test_experiments_and_the_holdout_allocate_like_decide() -> None:
    cfg = _config()
    cfg["holdout"] = {"fraction": 0.3}
    cfg["experiments"] = [{"name": "x", "placement": "promo",
                           "variants": [{"name": "same"}, {"name": "ucb", "policy": {"kind": "ucb1"}}]}]
    eng = _engine(cfg)
    people = _people(eng, 400)
    batch = eng.outbound(people, placement="promo", channel="email", now=T0)
    variants = [m.variant for m in batch.sent]
    assert set(variants) == {"holdout", "same", "ucb"} and 60 < variants.count("holdout") < 180
    assert all(m.content == "a" and m.propensity == 1.0 for m in batch.sent if m.variant == "holdout")
    log = eng.decision_log
    codes = {"holdout": -2, "same": 0, "ucb": 1}
    assert log.column("variant").tolist() == [codes[v] for v in variants]
    assert log.column("experiment").tolist() == [-1 if v == "holdout" else 0 for v in variants]
    pl = eng.placement("promo")
    assert pl.variants is not None and pl.variants[1].bandit is not None
    assert pl.variants[1].bandit.counts.sum() == variants.count("ucb")  # the variant's own policy learnt
    assert eng.experiments_.exposures.to_arrays()["variant"].tolist().count(-2) == variants.count("holdout")
    again = eng.outbound(people, placement="promo", channel="email", now=T0 + 3 * DAY)
    assert [m.variant for m in again.sent] == variants  # sticky
    d = eng.decide({"type": "view", "time": T0 + 4 * DAY, "ids": {"crm_id": "p5"}}, placement="promo")
    assert d.variant == variants[5]
    m = again.sent[3]
    eng.observe({"decision_id": m.decision_id, "kind": "click", "time": T0 + 3 * DAY + 1, "content": m.content})
