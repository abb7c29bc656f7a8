"""Consent by purpose and channel: the store, the signals (explicit map, GPC), merges with history,
malformed input, and decisions that obey it over the whole purpose x channel matrix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.config import ConsentSpec, load_config_dict
from decisioner.consent import CHANNELS, PURPOSES
from decisioner.consent.store import CHANNEL, PURPOSE, ConsentStore, cell
from decisioner.errors import ConfigError, SchemaError
from decisioner.schemas import decode_event
from statecheck import engine_state

T0 = 1_700_000_000_000
KEY = "c0" * 16
#: purposes a placement may require beyond personalization and analytics
EXTRA = ("marketing", "sale_share", "ad_profiling")


def full(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


def make_engine(**consent: Any) -> Engine:
    placements: list[dict[str, Any]] = []
    for ch in CHANNELS:
        placements.append({"name": f"rec-{ch}", "kind": "recommendation", "slots": 2, "channel": ch,
                           "policy": {"kind": "greedy"}})
        placements.append({"name": f"hero-{ch}", "kind": "campaign", "channel": ch,
                           "experiences": [{"id": "a"}, {"id": "b"}]})
        for p in EXTRA:
            placements.append({"name": f"{p}-{ch}", "kind": "campaign", "channel": ch, "purposes": [p],
                               "default": "a", "experiences": [{"id": "a"}, {"id": "b"}]})
    cfg = load_config_dict({"identity": {"hash_key": KEY}, "consent": consent, "placements": placements})
    cat = Catalog([{"id": f"{c}-{j}", "category": c, "brand": f"b{j}", "price": 10.0 + j}
                   for c in ("shoes", "bags", "hats") for j in range(4)])
    return Engine(cfg, cat, seed=11)


def ev(ids: dict[str, str], t: int, **kw: Any) -> dict[str, Any]:
    return {"type": "view", "time": t, "ids": ids, **kw}


# ---------------------------------------------------------------- the store


def test_a_new_store_follows_the_defaults() -> None:
    st = ConsentStore(ConsentSpec(defaults={"marketing": False}), default_consent=True, capacity=2)
    assert not st.allows(0, PURPOSE["marketing"], CHANNEL["email"]) and st.allows(0, PURPOSE["analytics"], 0)
    off = ConsentStore(ConsentSpec(defaults={"analytics": True}), default_consent=False)
    assert off.allows(0, PURPOSE["analytics"], CHANNEL["app"]) and not off.allows(0, PURPOSE["personalization"], 0)
    off.ensure(5000)
    assert (off.allow_ == off.default_).all()


def test_signals_apply_in_order_with_history() -> None:
    st = ConsentStore(ConsentSpec(), default_consent=True)
    e = decode_event(ev({"cookie": "c"}, T0, consent={"marketing": False, "marketing.email": True}, gpc=True))
    st.apply(0, 3, st.parse(e), T0, "cmp")
    grid = st.grid(0)
    assert grid["marketing"] == {c: c == "email" for c in CHANNELS}  # the channel key after the purpose key
    assert not any(grid["sale_share"].values()) and all(grid["personalization"].values())
    hist = st.history_of({3})
    assert {(h["purpose"], h["channel"], h["via"]) for h in hist} == {
        *(("marketing", c, "event") for c in CHANNELS if c != "email"),
        *(("sale_share", c, "gpc") for c in CHANNELS),
    }
    assert all(h["old"] and not h["new"] and h["source"] == "cmp" and h["time"] == T0 for h in hist)
    # a repeat changes nothing and writes no history; GPC false grants nothing back
    st.apply(0, 3, st.parse(decode_event(ev({"cookie": "c"}, T0 + 1, gpc=False))), T0 + 1, "cmp")
    assert len(st.history_of({3})) == len(hist) and not st.grid(0)["sale_share"]["web"]


def test_merge_is_most_restrictive_cell_by_cell_with_history() -> None:
    st = ConsentStore(ConsentSpec(), default_consent=True)
    st.ensure(2)
    st.apply(0, 1, [st.parse(decode_event(ev({"c": "x"}, T0, consent={"marketing.email": False})))][0], T0, "web")
    st.apply(1, 2, st.parse(decode_event(ev({"c": "y"}, T0, consent={"analytics.web": False}))), T0, "web")
    st.merge(0, 1, person=1, time=T0 + 5)
    assert not st.allows(0, PURPOSE["marketing"], CHANNEL["email"]) and not st.allows(0, PURPOSE["analytics"], 0)
    assert st.allow_[1] == st.default_
    merged = [h for h in st.history_of({1}) if h["via"] == "merge"]
    assert merged == [
        {"time": T0 + 5, "person": 1, "source": "merge", "purpose": p, "channel": c, "old": True, "new": False,
         "via": "merge"} for p, c in (("analytics", "web"), ("marketing", "email"))
    ]


def test_erase_removes_only_those_people_and_the_state_round_trips() -> None:
    st = ConsentStore(ConsentSpec(max_history=100), default_consent=True)
    st.ensure(3)
    for row, person in ((0, 10), (1, 11), (2, 12)):
        st.apply(row, person, st.parse(decode_event(ev({"c": "x"}, T0, consent={"marketing": False}))), T0, f"s{row}")
    assert st.erase({11}) == len(CHANNELS)
    assert {h["person"] for h in st.history_of({10, 11, 12})} == {10, 12}
    other = ConsentStore(ConsentSpec(max_history=100), default_consent=True)
    other.load_state(st.to_state())
    assert np.array_equal(other.allow_, st.allow_) and other.history_of({10, 12}) == st.history_of({10, 12})


def test_history_is_bounded_oldest_first() -> None:
    st = ConsentStore(ConsentSpec(max_history=10), default_consent=True)
    for k in range(4):
        st.apply(0, 1, st.parse(decode_event(ev({"c": "x"}, T0 + k, consent={"marketing": k % 2 == 1}))), T0 + k, "w")
    hist = st.history_of({1})
    assert len(hist) == 10 and st.history_dropped_ == 4 * len(CHANNELS) - 10
    assert hist[-1]["time"] == T0 + 3 and hist[0]["time"] == T0 + 2


@pytest.mark.parametrize(
    ("consent", "msg"),
    [
        ({"sale": False}, "Expected a consent purpose in ['personalization', 'analytics', 'marketing', 'sale_share', "
                          "'ad_profiling'] (optionally `.channel`), got 'sale' - at `$.consent.sale`"),
        ({"email": False}, "Expected a consent purpose in ['personalization', 'analytics', 'marketing', 'sale_share', "
                           "'ad_profiling'] (optionally `.channel`), got 'email' - at `$.consent.email`"),
        ({"marketing.fax": True}, "Expected a consent channel in ['web', 'app', 'email', 'sms', 'push', 'phone', "
                                  "'ads'], got 'fax' - at `$.consent.marketing.fax`"),
        ({"marketing": "yes"}, "Invalid event: Expected `bool`, got `str` - at `$.consent.marketing`"),
        ({"marketing": 1}, "Invalid event: Expected `bool`, got `int` - at `$.consent.marketing`"),
    ],
)
def test_malformed_consent_is_refused_and_changes_nothing(consent: dict[str, Any], msg: str, tmp_path: Path) -> None:
    eng = make_engine()
    eng.durable(tmp_path / "d")
    eng.decide(ev({"email": "ada@example.com"}, T0, item="shoes-1"), placement="rec-web")
    before = engine_state(eng)
    log = (tmp_path / "d" / "events.log").read_bytes()
    for call in (eng.track, lambda e: eng.decide(e, placement="marketing-email")):
        with pytest.raises(SchemaError, match=full(msg)):
            call(ev({"email": "ada@example.com"}, T0 + 1, item="shoes-2", consent=consent))
    after = engine_state(eng)
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    assert (tmp_path / "d" / "events.log").read_bytes() == log


def test_a_gpc_that_is_not_a_boolean_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"^Invalid event: .* - at `\$\.gpc`$"):
        decode_event(ev({"cookie": "c"}, T0, gpc=1))


def test_consent_config_names_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"expected a purpose in .* got 'ads' in `consent.defaults`"):
        ConsentSpec(defaults={"ads": False})
    with pytest.raises(ConfigError, match=r"expected a consent channel in .* got 'fax' in `consent.channels.x`"):
        ConsentSpec(channels={"x": "fax"})
    with pytest.raises(ConfigError, match=r"expected `purposes` from .* got 'analytics' \(placement 'p'\)"):
        load_config_dict({"identity": {"hash_key": KEY}, "placements": [
            {"name": "p", "kind": "campaign", "purposes": ["analytics"], "experiences": [{"id": "a"}]}]})
    with pytest.raises(ConfigError, match=r"expected a consent channel in .* got 'tv' \(placement 'p'\)"):
        load_config_dict({"identity": {"hash_key": KEY}, "placements": [
            {"name": "p", "kind": "campaign", "channel": "tv", "experiences": [{"id": "a"}]}]})


# ---------------------------------------------------------------- decisions obey it, purpose x channel

MATRIX = [(p, c) for p in PURPOSES for c in CHANNELS]


@pytest.mark.parametrize(("purpose", "channel"), MATRIX, ids=[f"{p}.{c}" for p, c in MATRIX])
def test_every_purpose_and_channel_is_obeyed(purpose: str, channel: str) -> None:
    eng = make_engine()
    other = CHANNELS[(CHANNELS.index(channel) + 1) % len(CHANNELS)]
    who, ref = {"email": "ada@example.com"}, {"email": "bob@example.com"}
    eng.track({"type": "consent", "time": T0, "ids": who, "consent": {f"{purpose}.{channel}": False}})
    eng.track({"type": "consent", "time": T0, "ids": ref, "consent": {}})
    row = eng.profile_row(who)
    assert not eng.consent.allows(row, PURPOSE[purpose], CHANNEL[channel])
    assert int(eng.consent.allow_[row]) == eng.consent.default_ & ~(1 << cell(PURPOSE[purpose], CHANNEL[channel]))
    pop = eng.scorer.popularity_.acc_.copy()
    n_log = len(eng.decision_log)
    d = eng.decide(ev(who, T0 + 1, item="shoes-1"), placement=f"rec-{channel}")
    logged = len(eng.decision_log) - n_log
    if purpose == "personalization":  # default content, reason consent, no profile update
        assert not d.personalized and d.slots
        assert any(r.kind == "consent" for r in d.reasons)
        assert eng.interests(who, now=T0 + 2) == [] and (eng.profiles.purchased_[row] == -1).all()
        hero = eng.decide(ev(who, T0 + 1), placement=f"marketing-{channel}")
        assert [s.content for s in hero.slots] == ["a"] and hero.reasons[0].kind == "consent"
    else:
        assert d.personalized and eng.interests(who, now=T0 + 2)
    if purpose == "analytics":  # no decision-log row, no popularity
        assert logged == 0 and np.array_equal(eng.scorer.popularity_.acc_, pop)
        # ... and a reward still joins (what joining needs is kept without a log row)
        eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0 + 2, "content": d.slots[1].content})
        assert eng.export(who)["decisions"] == []
    else:
        assert logged == len(d.slots) and not np.array_equal(eng.scorer.popularity_.acc_, pop)
    for p in EXTRA:  # content that needs a purpose: nothing without it
        dp = eng.decide(ev(who, T0 + 3), placement=f"{p}-{channel}")
        if p == purpose:
            assert dp.slots == [] and dp.reasons[0].kind == "consent" and f"no {p} consent on {channel}" in (
                dp.reasons[0].detail)
        else:
            assert dp.slots
        assert eng.decide(ev(who, T0 + 3), placement=f"{p}-{other}").slots  # other channels are untouched
        assert bool(eng.recommend(who, placement=f"{p}-{channel}", now=T0 + 4).slots) == (p != purpose)
    # the same decisions for a person who refused nothing
    assert eng.decide(ev(ref, T0 + 5, item="shoes-1"), placement=f"rec-{channel}").personalized
    assert all(eng.decide(ev(ref, T0 + 5), placement=f"{p}-{channel}").slots for p in EXTRA)
    rec = eng.recommend(who, placement=f"rec-{channel}", now=T0 + 6)
    assert rec.personalized == (purpose != "personalization")
    many = eng.recommend_many([who, ref], placement=f"rec-{channel}", now=T0 + 6)
    assert [m.personalized for m in many] == [purpose != "personalization", True]


def test_track_checks_the_events_own_channel() -> None:
    eng = make_engine(channels={"store": "phone"})
    who = {"email": "ada@example.com"}
    eng.track({"type": "consent", "time": T0, "ids": who, "consent": {"personalization.phone": False}})
    eng.track(ev(who, T0 + 1, item="shoes-1", channel="store"))  # a store visit counts as phone: no profiling
    assert eng.interests(who, now=T0 + 2) == []
    eng.track(ev(who, T0 + 2, item="bags-1", channel="kiosk"))  # unmapped: the default channel, web
    assert "category=bags" in [f for f, _ in eng.interests(who, now=T0 + 3)]


# ---------------------------------------------------------------- merges, GPC, export, persistence


def test_a_merge_of_consenting_and_refusing_profiles_is_restrictive_with_history() -> None:
    eng = make_engine()
    eng.track({"type": "consent", "time": T0, "ids": {"cookie": "c1"}, "consent": {"marketing": False}})
    eng.track({"type": "consent", "time": T0 + 1, "ids": {"email": "ada@example.com"},
               "consent": {"marketing": True, "ad_profiling.ads": False}})
    d0 = eng.decide(ev({"email": "ada@example.com"}, T0 + 2, item="shoes-1"), placement="rec-web")
    eng.track({"type": "identify", "time": T0 + 3, "ids": {"cookie": "c1", "email": "ada@example.com"}})
    out = eng.export({"email": "ada@example.com"})
    assert not any(out["consent"]["marketing"].values()) and all(out["consent"]["analytics"].values())
    assert not out["consent"]["ad_profiling"]["ads"] and out["consent"]["ad_profiling"]["web"]
    merged = [h for h in out["consent_history"] if h["via"] == "merge"]
    assert {(h["purpose"], h["old"], h["new"], h["time"]) for h in merged} == {
        ("marketing", True, False, T0 + 3), ("ad_profiling", True, False, T0 + 3)}
    assert len(merged) == len(CHANNELS) + 1
    # both sides' records: the cookie person's refusal and the email person's decision
    assert {h["person"] for h in out["consent_history"]} == {out["person"], *out["merged_people"]}
    assert [x["decision_id"] for x in out["decisions"]] == [d0.decision_id] * 2
    assert eng.decide(ev({"cookie": "c1"}, T0 + 4), placement="marketing-web").slots == []


def test_gpc_opts_out_of_sale_and_share_everywhere() -> None:
    eng = make_engine()
    who = {"cookie": "gpc-1"}
    eng.track({"type": "view", "time": T0, "ids": who, "item": "shoes-1", "gpc": True})
    out = eng.export(who)
    assert not any(out["consent"]["sale_share"].values()) and all(out["consent"]["marketing"].values())
    assert {h["via"] for h in out["consent_history"]} == {"gpc"}
    assert all(eng.decide(ev(who, T0 + 1), placement=f"sale_share-{c}").slots == [] for c in CHANNELS)


def test_consent_and_its_history_survive_a_snapshot_and_the_log(tmp_path: Path) -> None:
    eng = make_engine()
    eng.durable(tmp_path / "d")
    for k in range(20):
        who = {"cookie": f"c{k % 6}"}
        eng.decide(ev(who, T0 + k, item=f"shoes-{k % 4}", consent={"analytics.web": k % 3 == 0},
                      gpc=k % 5 == 0), placement="rec-web")
        if k == 10:
            eng.save(tmp_path / "d")
    eng.detach_log()
    recovered = Engine.open(tmp_path / "d", hash_key=KEY)  # the snapshot at 10, then the log
    a, b = engine_state(eng), engine_state(recovered)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    nxt = ev({"cookie": "c1"}, T0 + 50, item="bags-1")
    da, db = (e.decide(nxt, placement="rec-web") for e in (eng, recovered))
    assert [(s.content, s.propensity) for s in da.slots] == [(s.content, s.propensity) for s in db.slots]


def test_a_snapshot_with_other_consent_defaults_is_refused(tmp_path: Path) -> None:
    eng = make_engine()
    st = eng.consent.to_state()
    other = ConsentStore(ConsentSpec(defaults={"marketing": False}), default_consent=True)
    with pytest.raises(Exception, match="expected consent state with the default grid"):
        other.load_state(st)


# ---------------------------------------------------------------- TCF strings on the engine


def test_a_tcf_string_sets_our_purposes_on_the_tcf_channels_only() -> None:
    import msgspec

    from decisioner.consent.tcf import decode
    from test_consent_tcf import SPEC_EXAMPLE, encode

    eng = make_engine()
    who = {"cookie": "tcf-1"}
    # the specification's example: no purpose consented -> personalization, analytics and ad
    # profiling refused on web, app and ads; marketing and sale/share, which TCF does not cover, kept
    eng.track({"type": "consent", "time": T0, "ids": who, "tcf": SPEC_EXAMPLE})
    grid = eng.export(who)["consent"]
    for p in ("personalization", "analytics", "ad_profiling"):
        assert grid[p] == {c: c not in ("web", "app", "ads") for c in CHANNELS}, p
    assert all(grid["marketing"].values()) and all(grid["sale_share"].values())
    assert {h["via"] for h in eng.export(who)["consent_history"]} == {"tcf"}
    assert not eng.decide(ev(who, T0 + 1, item="shoes-1"), placement="rec-web").personalized
    assert eng.decide(ev(who, T0 + 1, item="shoes-1"), placement="rec-email").personalized
    # consent to purposes 1, 5 and 6 grants personalization back (analytics needs 8 too)
    grant = encode(msgspec.structs.replace(decode(SPEC_EXAMPLE), purposes_consent=(1, 5, 6)))
    eng.track({"type": "consent", "time": T0 + 2, "ids": who, "tcf": grant, "gpc": True})
    grid = eng.export(who)["consent"]
    assert grid["personalization"]["web"] and not grid["analytics"]["web"] and not grid["ad_profiling"]["ads"]
    assert not any(grid["sale_share"].values())  # GPC applies after the TCF string


@pytest.mark.parametrize(
    "bad", ["not base64!", "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA", "C" + "A" * 20000],
    ids=["alphabet", "version 1", "too long"],
)
def test_an_invalid_tcf_string_is_refused_and_changes_nothing(bad: str) -> None:
    eng = make_engine()
    eng.track(ev({"cookie": "c"}, T0, item="shoes-1"))
    before = engine_state(eng)
    with pytest.raises(SchemaError, match=r" - at `\$\.tcf`$|- at `\$\.consent\.tcf`$"):
        eng.decide(ev({"cookie": "c"}, T0 + 1, item="shoes-2", tcf=bad), placement="rec-web")
    after = engine_state(eng)
    assert all(np.array_equal(before[k], after[k]) for k in before) and eng.ops_ == 1


def test_reads_of_people_loaded_in_bulk_use_the_default_grid() -> None:
    eng = make_engine(defaults={"marketing": False})
    n = 1500  # past the stores' first 1,024 rows: no event has grown them yet
    keys = eng.identity.keys_many("email", [f"p{j}@example.com" for j in range(n)])
    eng.identity.link_many(keys, np.full(n, eng.identity.type_code("email"), np.int8), np.arange(n + 1))
    who = {"email": f"p{n - 1}@example.com"}
    assert eng.profile_row(who) >= eng.profiles.n_rows  # the stores have not grown to it: no event yet
    rec = eng.recommend(who, placement="rec-web", now=T0)  # nothing held: popular items, not personalised
    assert rec.slots and not rec.personalized and rec.profile == eng.profile_row(who)
    assert eng.recommend(who, placement="marketing-web", now=T0).slots == []  # the default refuses marketing
    many = eng.recommend_many([who, who], placement="rec-web", now=T0)
    assert [d.personalized for d in many] == [False, False] and [d.slots for d in many] == [rec.slots] * 2
    assert eng.interests(who, now=T0) == [] and eng.export(who)["interests"] == []
